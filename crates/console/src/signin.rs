//! The console's sign-in, through the provider like any relying party, as the wallet's:
//! [`oidc_core::first_party`] (PKCE, nonce, a state bound to the browser by the short-lived
//! cookie `caducee_console_login`, the code redeemed in process). Then a console session:
//! server-side, its cookie a random handle, bound to the SSO session's `sid`, closed after
//! [`IDLE`] without a request.

use std::time::Duration;

use admin_api::Actor;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use cookie::{Cookie, SameSite};
use oidc_core::first_party::{Callback, FirstParty, SignInError, SignInRequest};
use oidc_core::util::{constant_time_eq, random_token, sha256_b64};
use oidc_core::{Locale, ProviderConfig};
use serde::{Deserialize, Serialize};

use crate::store_keys::{CONSOLE_LOGIN, CONSOLE_SESSION};
use crate::texts::console_texts;
use crate::{ConsoleState, cookie_named, message, see_other};

/// The console's client id, registered by the server at start-up.
pub const CONSOLE_CLIENT_ID: &str = "caducee-console";
const COOKIE: &str = "caducee_console";
const LOGIN_COOKIE: &str = "caducee_console_login";
/// A console session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(900);
/// A destructive act needs an authentication at most this old (seconds).
pub const RECENT: i64 = 300;
/// The console asks the login for at least this level: two factors of distinct kinds.
const MIN_ACR: &str = "eidas1";
const LOGIN_TTL: Duration = Duration::from_secs(900);

/// The console as a relying party of the provider.
const CONSOLE: FirstParty = FirstParty {
    client_id: CONSOLE_CLIENT_ID,
    callback_path: "/admin/callback",
    pending: CONSOLE_LOGIN,
    login_ttl: LOGIN_TTL,
};

pub fn console_redirect_uri(issuer: &str) -> String {
    CONSOLE.redirect_uri(issuer)
}

/// An administrator's console session (server-side).
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct ConsoleSession {
    pub(crate) sid: String,
    pub(crate) subject: String,
    pub(crate) national_id: String,
    pub(crate) given_name: String,
    pub(crate) family_name: String,
    pub(crate) auth_time: i64,
    pub(crate) csrf: String,
    pub(crate) locale: Locale,
    pub(crate) source_ip: Option<String>,
    /// The time of its last request: past [`IDLE`] without one, it is over. Checked on the
    /// provider's clock, besides the store's expiry, so that every backend ends it alike.
    #[serde(default)]
    pub(crate) last_seen: i64,
}

impl ConsoleSession {
    /// The administrator as the audit log names them.
    pub(crate) fn actor(&self) -> Actor {
        Actor { id: format!("console:{}", self.national_id), source_ip: self.source_ip.clone() }
    }

    pub(crate) fn recently_authenticated(&self, now: i64) -> bool {
        now - self.auth_time <= RECENT
    }
}

fn session_key(handle: &str) -> String {
    CONSOLE_SESSION.key(sha256_b64(handle.as_bytes()))
}

fn build_cookie(
    config: &ProviderConfig,
    name: &'static str,
    value: &str,
    same_site: SameSite,
    remove: bool,
) -> HeaderValue {
    let mut c = Cookie::build((name, value.to_owned()))
        .path(config.path("/admin"))
        .http_only(true)
        .same_site(same_site)
        .secure(config.secure_cookies)
        .build();
    if remove {
        c.make_removal();
    }
    HeaderValue::from_str(&c.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// Only the console's own pages are places to come back to after signing in.
fn safe_then(st: &ConsoleState, then: Option<&str>) -> String {
    let home = st.path("/admin");
    match then {
        Some(t) if is_console_page(&home, t) => t.to_owned(),
        _ => home,
    }
}

/// A path under the console's home, on this origin (never `//host` nor a backslash, which
/// browsers read as another origin).
fn is_console_page(home: &str, then: &str) -> bool {
    then.starts_with(&format!("{home}/")) && !then.contains("//") && !then.contains('\\')
}

/// Why a request has no console session it may use.
pub(crate) enum NoSession {
    /// Nobody is signed in (or the session ended): sign in.
    SignIn,
    /// An answer to give as is (refused, unavailable).
    Answer(Response),
}

/// The console session of this request: alive, its SSO session alive, its holder still an
/// administrator. Each request pushes its idle deadline back.
pub(crate) async fn current(st: &ConsoleState, headers: &HeaderMap) -> Result<(String, ConsoleSession), NoSession> {
    let Some(handle) = cookie_named(headers, COOKIE) else {
        return Err(NoSession::SignIn);
    };
    let key = session_key(&handle);
    let unavailable = |locale| {
        let t = console_texts(locale);
        NoSession::Answer(message(st, locale, StatusCode::SERVICE_UNAVAILABLE, t.title, t.unavailable.into(), None))
    };
    let bytes = st.store.get(&key).await.map_err(|_| unavailable(Locale::default()))?;
    let Some(mut session) = bytes.and_then(|b| serde_json::from_slice::<ConsoleSession>(&b).ok()) else {
        return Err(NoSession::SignIn);
    };
    let now = st.now();
    if now - session.last_seen > IDLE.as_secs() as i64 {
        let _ = st.store.delete(&key).await;
        return Err(NoSession::SignIn);
    }
    session.last_seen = now;
    match st.admin.provider.sessions().is_alive(&session.sid, now).await {
        Ok(true) => {}
        Ok(false) => {
            let _ = st.store.delete(&key).await;
            return Err(NoSession::SignIn);
        }
        Err(_) => return Err(unavailable(session.locale)),
    }
    match st.admin.is_admin(&session.subject).await {
        Ok(true) => {}
        Ok(false) => {
            let _ = st.store.delete(&key).await;
            return Err(NoSession::Answer(refused(st, session.locale)));
        }
        Err(_) => return Err(unavailable(session.locale)),
    }
    let Ok(bytes) = serde_json::to_vec(&session) else {
        return Err(unavailable(session.locale));
    };
    if st.store.put(&key, &bytes, IDLE).await.is_err() {
        return Err(unavailable(session.locale));
    }
    Ok((handle, session))
}

pub(crate) fn refused(st: &ConsoleState, locale: Locale) -> Response {
    let t = console_texts(locale);
    message(st, locale, StatusCode::FORBIDDEN, t.refused_title, t.refused_not_admin.into(), None)
}

/// Sends the administrator to sign in; `again`: a fresh login whatever their session (before
/// a destructive act), `then`: the console page to come back to.
pub(crate) async fn sign_in(st: &ConsoleState, locale: Locale, again: bool, then: Option<&str>) -> Response {
    let request = SignInRequest {
        locale,
        max_age: if again { RECENT } else { IDLE.as_secs() as i64 },
        acr_values: Some(MIN_ACR),
        prompt_login: again,
        then: Some(safe_then(st, then)),
    };
    let provider = &st.admin.provider;
    let Ok(started) = CONSOLE.start(provider, st.store.as_ref(), request).await else {
        let t = console_texts(locale);
        return message(st, locale, StatusCode::SERVICE_UNAVAILABLE, t.title, t.unavailable.into(), None);
    };
    let mut r = see_other(&format!("{}?{}", st.path("/authorize"), started.query));
    r.headers_mut().append(
        header::SET_COOKIE,
        build_cookie(provider.config(), LOGIN_COOKIE, &started.binding, SameSite::Lax, false),
    );
    r
}

pub(crate) async fn callback(
    State(st): State<ConsoleState>,
    origin: oidc_core::RequestOrigin,
    Query(q): Query<Callback>,
    headers: HeaderMap,
) -> Response {
    let mut r = finish_sign_in(&st, q, &headers, origin.source_ip).await;
    // Spent whatever happened: a pending sign-in is taken at its first callback.
    let config = st.admin.provider.config();
    r.headers_mut().append(header::SET_COOKIE, build_cookie(config, LOGIN_COOKIE, "", SameSite::Lax, true));
    r
}

async fn finish_sign_in(st: &ConsoleState, q: Callback, headers: &HeaderMap, source_ip: Option<String>) -> Response {
    let now = st.now();
    let provider = &st.admin.provider;
    let binding = cookie_named(headers, LOGIN_COOKIE);
    let signed_in = match CONSOLE.finish(provider, st.store.as_ref(), q, binding.as_deref(), now).await {
        Ok(s) => s,
        Err(SignInError::Unavailable(_)) => {
            let t = console_texts(Locale::default());
            return message(
                st,
                Locale::default(),
                StatusCode::SERVICE_UNAVAILABLE,
                t.title,
                t.unavailable.into(),
                None,
            );
        }
        Err(SignInError::Abandoned(_)) => return see_other(&st.path("/admin")),
    };
    let text = |k: &str| signed_in.text(k);
    // The login must have reached the console's level (the request asked; the answer says).
    let config = provider.config();
    let strong = match (config.acr_rank(&text("acr")), config.acr_rank(MIN_ACR)) {
        (Some(got), Some(needed)) => got >= needed,
        _ => false,
    };
    let subject = text("sub");
    match st.admin.is_admin(&subject).await {
        Ok(true) if strong => {}
        Ok(_) => {
            tracing::warn!("console sign-in refused: not an administrator, or too weak a login");
            return crate::signin::refused(st, signed_in.locale);
        }
        Err(e) => return crate::failure(st, signed_in.locale, e),
    }
    let session = ConsoleSession {
        sid: text("sid"),
        subject,
        national_id: text("preferred_username"),
        given_name: text("given_name"),
        family_name: text("family_name"),
        auth_time: signed_in.auth_time(now),
        csrf: random_token(),
        locale: signed_in.locale,
        source_ip,
        last_seen: now,
    };
    let handle = random_token();
    let stored = match serde_json::to_vec(&session) {
        Ok(bytes) => st.store.put(&session_key(&handle), &bytes, IDLE).await.is_ok(),
        Err(_) => false,
    };
    if !stored {
        let t = console_texts(signed_in.locale);
        return message(st, signed_in.locale, StatusCode::SERVICE_UNAVAILABLE, t.title, t.unavailable.into(), None);
    }
    // Checked as a console page when the sign-in started.
    let then = signed_in.then.clone().unwrap_or_else(|| st.path("/admin"));
    let mut r = see_other(&then);
    r.headers_mut().append(header::SET_COOKIE, build_cookie(config, COOKIE, &handle, SameSite::Strict, false));
    r
}

#[derive(Deserialize, Default)]
pub(crate) struct ReauthQuery {
    then: Option<String>,
    lang: Option<String>,
}

/// A fresh login before a destructive act; back to `then` afterwards.
pub(crate) async fn reauth(
    State(st): State<ConsoleState>,
    Query(q): Query<ReauthQuery>,
    headers: HeaderMap,
) -> Response {
    let locale = match current(&st, &headers).await {
        Ok((_, s)) => s.locale,
        Err(NoSession::Answer(r)) => return r,
        Err(NoSession::SignIn) => q.lang.as_deref().and_then(Locale::from_tag).unwrap_or_default(),
    };
    sign_in(&st, locale, true, q.then.as_deref()).await
}

#[derive(Deserialize, Default)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf_token: String,
}

/// The console session a form's post acts in: the administrator signed in, with this request's
/// address (the audit records where each act came from, not where the sign-in did), once the
/// form's anti-forgery token matched. Without a session the post goes to `back`, which asks for
/// a sign-in.
pub(crate) async fn acting(
    st: &ConsoleState,
    headers: &HeaderMap,
    origin: oidc_core::RequestOrigin,
    csrf_token: &str,
    back: &str,
) -> Result<ConsoleSession, Response> {
    let session = match current(st, headers).await {
        Ok((_, s)) => ConsoleSession { source_ip: origin.source_ip, ..s },
        Err(NoSession::Answer(r)) => return Err(r),
        Err(NoSession::SignIn) => return Err(see_other(&st.path(back))),
    };
    if !constant_time_eq(csrf_token.as_bytes(), session.csrf.as_bytes()) {
        return Err(forged(st, session.locale));
    }
    Ok(session)
}

/// Signs out of the console (the SSO session stays: the wallet and relying parties keep theirs).
pub(crate) async fn logout(
    State(st): State<ConsoleState>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let (handle, session) = match current(&st, &headers).await {
        Ok(v) => v,
        Err(NoSession::Answer(r)) => return r,
        Err(NoSession::SignIn) => return see_other(&st.path("/admin")),
    };
    if !constant_time_eq(form.csrf_token.as_bytes(), session.csrf.as_bytes()) {
        return forged(&st, session.locale);
    }
    let _ = st.store.delete(&session_key(&handle)).await;
    let t = console_texts(session.locale);
    let mut r = message(
        &st,
        session.locale,
        StatusCode::OK,
        t.title,
        t.signed_out.into(),
        Some((st.path("/admin"), t.sign_in_again)),
    );
    let config = st.admin.provider.config();
    r.headers_mut().append(header::SET_COOKIE, build_cookie(config, COOKIE, "", SameSite::Strict, true));
    r
}

/// A form without the session's anti-forgery token: nothing happens.
pub(crate) fn forged(st: &ConsoleState, locale: Locale) -> Response {
    let t = console_texts(locale);
    tracing::warn!("console form without its anti-forgery token refused");
    message(
        st,
        locale,
        StatusCode::FORBIDDEN,
        t.refused_title,
        t.refused_forgery.into(),
        Some((st.path("/admin"), t.back_to_search)),
    )
}

/// A fresh login first, coming back to `then` (a console page: the act's confirmation).
pub(crate) fn reauthenticate(st: &ConsoleState, then: &str) -> Response {
    let q = serde_urlencoded::to_string([("then", then)]).unwrap_or_default();
    see_other(&format!("{}?{q}", st.path("/admin/reauth")))
}

/// «English» / «Français»: the console session speaks `locale` from now on.
pub(crate) async fn switch_locale(
    st: &ConsoleState,
    headers: &HeaderMap,
    mut session: ConsoleSession,
    locale: Locale,
) -> ConsoleSession {
    session.locale = locale;
    if let (Some(handle), Ok(bytes)) = (cookie_named(headers, COOKIE), serde_json::to_vec(&session)) {
        // Not kept if the store fails: the page is still shown in the language asked for.
        let _ = st.store.put(&session_key(&handle), &bytes, IDLE).await;
    }
    session
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_console_pages_are_places_to_come_back_to() {
        let ok = |then: &str| super::is_console_page("/realm/admin", then);
        assert!(ok("/realm/admin/confirm?nid=1&act=block"));
        assert!(!ok("/realm/admin"), "the home is the default anyway");
        assert!(!ok("https://evil.example/realm/admin/x"));
        assert!(!ok("//evil.example/realm/admin/x"));
        assert!(!ok("/realm/admin//evil.example"));
        assert!(!ok("/realm/admin/\\evil"));
        assert!(!ok("/realm/wallet"));
        assert!(!ok("/realm/administrator/x"));
    }
}
