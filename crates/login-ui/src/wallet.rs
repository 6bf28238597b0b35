//! The professional's own page («portefeuille», `/wallet`): who they are signed in as, and their
//! authenticators (enrol a TOTP app with a QR code, remove one).
//!
//! The wallet is a first-party relying party of the provider, as Pro Santé Connect's wallet is:
//! it signs people in through `/authorize` (client `caducee-wallet`, public, PKCE, a recent
//! authentication required), redeems the code in process, and keeps a short wallet session
//! bound to the SSO session's `sid`: when that session ends, the wallet is closed too.
//!
//! Its own sign-in is [`oidc_core::first_party`]'s, bound to the browser that started it by the
//! short-lived cookie `caducee_wallet_login`.

use std::time::Duration;

use askama::Template;
use authn_methods::enrolment::AuthenticatorView;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cookie::{Cookie, SameSite};
use oidc_core::first_party::{Callback, FirstParty, SignInError, SignInRequest};
use oidc_core::session::SsoSession;
use oidc_core::util::{constant_time_eq, random_token, sha256_b64};
use oidc_core::{Locale, ProviderConfig};
use serde::{Deserialize, Serialize};

use crate::i18n::texts;
use crate::pages::render_or_fallback;
use crate::wallet_sessions::{ActivityRow, SessionRow, activity_row, browser_name, method_label, when};
use crate::wallet_texts::{WalletTexts, wallet_texts};
use crate::{LoginState, cookie_named, page};

/// The wallet's client id, registered by the server at start-up.
pub const WALLET_CLIENT_ID: &str = "caducee-wallet";
const COOKIE: &str = "caducee_wallet";
/// Binds a wallet sign-in in progress to the browser that started it.
const LOGIN_COOKIE: &str = "caducee_wallet_login";
/// The wallet asks for an authentication at most this old, and its session lasts as long.
pub const WALLET_MAX_AGE: i64 = 900;
const LOGIN_TTL: Duration = Duration::from_secs(900);

/// The redirect URI of the wallet under `issuer`.
pub fn wallet_redirect_uri(issuer: &str) -> String {
    WALLET.redirect_uri(issuer)
}

pub fn router(state: LoginState) -> Router {
    Router::new()
        .route("/wallet", get(home))
        .route("/wallet/callback", get(callback))
        .route("/wallet/totp", post(crate::wallet_totp::start))
        .route("/wallet/totp/{id}/activate", post(crate::wallet_totp::activate))
        .route("/wallet/authenticators/{id}/remove", post(remove))
        .route("/wallet/authenticators/{id}/rename", post(crate::wallet_passkeys::rename))
        .route("/wallet/webauthn", post(crate::wallet_passkeys::start))
        .route("/wallet/webauthn/finish", post(crate::wallet_passkeys::finish))
        .route("/wallet/reauth", get(reauth))
        .route("/wallet/logout", post(logout))
        .route("/wallet/sessions/{sid}/end", post(end_one))
        .route("/wallet/sessions/end-all", post(end_all))
        .route("/wallet/push", post(crate::wallet_push::start))
        .route("/wallet/push/block", post(crate::wallet_push::block))
        .route("/wallet/push/unblock", post(crate::wallet_push::unblock))
        .with_state(state)
}

/// The wallet as a relying party of the provider.
const WALLET: FirstParty = FirstParty {
    client_id: WALLET_CLIENT_ID,
    callback_path: "/wallet/callback",
    pending: crate::store_keys::WALLET_LOGIN,
    login_ttl: LOGIN_TTL,
};

/// A wallet session (server-side; the cookie holds only a random handle).
#[derive(Serialize, Deserialize, Clone)]
pub(crate) struct WalletSession {
    pub(crate) sid: String,
    pub(crate) subject: String,
    pub(crate) national_id: String,
    pub(crate) given_name: String,
    pub(crate) family_name: String,
    pub(crate) auth_time: i64,
    /// The level of the sign-in (empty for a session kept from before it was recorded).
    #[serde(default)]
    pub(crate) acr: String,
    pub(crate) csrf: String,
    pub(crate) locale: Locale,
}

fn session_key(handle: &str) -> String {
    crate::store_keys::WALLET_SESSION.key(sha256_b64(handle.as_bytes()))
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, COOKIE)
}

/// The sign-in binding cookie: `SameSite=Lax`, since the callback is a top-level navigation
/// coming back from the login pages; it lives as long as the pending sign-in.
fn login_cookie(config: &ProviderConfig, value: &str, remove: bool) -> HeaderValue {
    let secure = config.secure_cookies;
    let mut c = Cookie::build((LOGIN_COOKIE, value.to_owned()))
        .path(config.path("/wallet"))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(LOGIN_TTL.as_secs().try_into().unwrap_or(i64::MAX)))
        .build();
    if remove {
        c.make_removal();
    }
    HeaderValue::from_str(&c.to_string()).unwrap_or(HeaderValue::from_static(""))
}

fn wallet_cookie(config: &ProviderConfig, value: &str, remove: bool) -> HeaderValue {
    let secure = config.secure_cookies;
    let mut c = Cookie::build((COOKIE, value.to_owned()))
        .path(config.path("/wallet"))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build();
    if remove {
        c.make_removal();
    }
    HeaderValue::from_str(&c.to_string()).unwrap_or(HeaderValue::from_static(""))
}

#[derive(Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

/// The wallet session of this request, if it exists and its SSO session is still alive.
async fn current(st: &LoginState, headers: &HeaderMap) -> Result<Option<(String, WalletSession)>, Response> {
    let Some(handle) = cookie_value(headers) else {
        return Ok(None);
    };
    let now = (st.clock)();
    let bytes = st.store.get(&session_key(&handle)).await.map_err(|_| st.unavailable(Locale::default()))?;
    let Some(session) = bytes.and_then(|b| serde_json::from_slice::<WalletSession>(&b).ok()) else {
        return Ok(None);
    };
    match st.provider.sessions().is_alive(&session.sid, now).await {
        Ok(true) => Ok(Some((handle, session))),
        Ok(false) => {
            let _ = st.store.delete(&session_key(&handle)).await;
            Ok(None)
        }
        Err(_) => Err(st.unavailable(session.locale)),
    }
}

impl LoginState {
    pub(crate) fn unavailable(&self, locale: Locale) -> Response {
        page(
            StatusCode::SERVICE_UNAVAILABLE,
            self.pages().render_error(locale, oidc_core::authorize::PageError::Unavailable),
        )
    }

    /// Back to the wallet's home page.
    pub(crate) fn wallet_home(&self) -> Response {
        see_other(&self.path("/wallet"))
    }
}

/// Sends the person to sign in (through the provider, as any relying party would); `again`:
/// even if their session is alive (a fresh sign-in, before adding a key).
async fn sign_in(st: &LoginState, locale: Locale, again: bool) -> Response {
    let request = SignInRequest { locale, max_age: WALLET_MAX_AGE, prompt_login: again, ..SignInRequest::default() };
    let Ok(started) = WALLET.start(&st.provider, st.store.as_ref(), request).await else {
        return st.unavailable(locale);
    };
    let mut r = see_other(&format!("{}?{}", st.path("/authorize"), started.query));
    r.headers_mut().append(header::SET_COOKIE, login_cookie(st.provider.config(), &started.binding, false));
    r
}

fn see_other(location: &str) -> Response {
    let mut r = Redirect::to(location).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn callback(State(st): State<LoginState>, Query(q): Query<Callback>, headers: HeaderMap) -> Response {
    let mut r = finish_sign_in(&st, q, &headers).await;
    // Spent whatever happened: a pending sign-in is taken at its first callback.
    r.headers_mut().append(header::SET_COOKIE, login_cookie(st.provider.config(), "", true));
    r
}

async fn finish_sign_in(st: &LoginState, q: Callback, headers: &HeaderMap) -> Response {
    let now = (st.clock)();
    let binding = cookie_named(headers, LOGIN_COOKIE);
    let signed_in = match WALLET.finish(&st.provider, st.store.as_ref(), q, binding.as_deref(), now).await {
        Ok(s) => s,
        Err(SignInError::Unavailable(_)) => return st.unavailable(Locale::default()),
        // Cancelled, another browser, a spent state: back to a fresh start.
        Err(SignInError::Abandoned(_)) => return st.wallet_home(),
    };
    let session = WalletSession {
        sid: signed_in.text("sid"),
        subject: signed_in.text("sub"),
        national_id: signed_in.text("preferred_username"),
        given_name: signed_in.text("given_name"),
        family_name: signed_in.text("family_name"),
        auth_time: signed_in.auth_time(now),
        acr: signed_in.text("acr"),
        csrf: random_token(),
        locale: signed_in.locale,
    };
    let handle = random_token();
    let Ok(bytes) = serde_json::to_vec(&session) else {
        return st.unavailable(signed_in.locale);
    };
    if st.store.put(&session_key(&handle), &bytes, Duration::from_secs(WALLET_MAX_AGE as u64)).await.is_err() {
        return st.unavailable(signed_in.locale);
    }
    let mut r = st.wallet_home();
    r.headers_mut().append(header::SET_COOKIE, wallet_cookie(st.provider.config(), &handle, false));
    r
}

#[derive(Template)]
#[template(path = "wallet.html")]
struct WalletPage<'a> {
    t: &'static crate::i18n::Texts,
    base: &'a str,
    w: &'static WalletTexts,
    session: &'a WalletSession,
    authenticators: Vec<AuthenticatorRow>,
    push: Option<crate::wallet_push::PushPanel>,
    pk: &'static crate::passkey_texts::PasskeyTexts,
    passkeys: Option<crate::wallet_passkeys::PasskeyPanel>,
    sessions: Vec<SessionRow>,
    activity: Vec<ActivityRow>,
    notice: Option<String>,
    error: Option<String>,
}

struct AuthenticatorRow {
    id: String,
    kind: &'static str,
    label: String,
    active: bool,
    created: String,
    last_used: String,
}

fn rows(w: &'static WalletTexts, list: Vec<AuthenticatorView>) -> Vec<AuthenticatorRow> {
    list.into_iter()
        .map(|a| AuthenticatorRow {
            kind: w.kind_name(&a.kind),
            label: match &a.serial {
                // A phone's serial is its offline ID (QR-code sign-in without network).
                Some(serial) if a.kind == authn_methods::push::KIND => {
                    match serial.strip_prefix(authn_methods::push::qr::OFFLINE_SERIAL_PREFIX) {
                        Some(id) => format!("{} ({} {id})", a.label, w.offline_id),
                        None => a.label.clone(),
                    }
                }
                // A credential id tells the professional nothing: the name they gave says it.
                Some(_) if a.kind == authn_methods::webauthn::KIND => a.label.clone(),
                Some(serial) => format!("{} ({serial})", a.label),
                None => a.label.clone(),
            },
            active: a.active,
            created: when(Some(a.created_at)),
            last_used: when(a.last_used_at),
            id: a.id,
        })
        .collect()
}

pub(crate) async fn render_home(
    st: &LoginState,
    session: &WalletSession,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let w = wallet_texts(session.locale);
    let list = match st.enrolment.list(&session.subject).await {
        Ok(l) => l,
        Err(_) => return st.unavailable(session.locale),
    };
    let Ok(sessions) = session_rows(st, session, w).await else {
        return st.unavailable(session.locale);
    };
    let Ok(history) = st.wallet_data.recent_activity(&session.subject, 40).await else {
        return st.unavailable(session.locale);
    };
    let activity = history.iter().filter_map(|e| activity_row(w, e)).take(20).collect();
    let Ok(push) = crate::wallet_push::panel(st, session, w).await else {
        return st.unavailable(session.locale);
    };
    let Ok(passkeys) = crate::wallet_passkeys::panel(st, session).await else {
        return st.unavailable(session.locale);
    };
    let page_data = WalletPage {
        t: texts(session.locale),
        base: st.provider.config().base_path(),
        w,
        session,
        authenticators: rows(w, list),
        push,
        pk: crate::passkey_texts::passkey_texts(session.locale),
        passkeys,
        sessions,
        activity,
        notice,
        error,
    };
    page(StatusCode::OK, render_or_fallback(page_data.render()))
}

async fn session_rows(
    st: &LoginState,
    current: &WalletSession,
    w: &'static WalletTexts,
) -> Result<Vec<SessionRow>, ()> {
    let now = (st.clock)();
    let live = st.provider.sessions().list_for_subject(&current.subject, now).await.map_err(|_| ())?;
    let mut rows = Vec::with_capacity(live.len());
    for s in live {
        let mut services = Vec::new();
        for c in s.clients.iter().filter(|c| c.client_id != WALLET_CLIENT_ID) {
            services.push(st.provider.client_display_name(&c.client_id).await.unwrap_or_else(|| c.client_id.clone()));
        }
        let mut methods: Vec<&str> = s.methods.iter().map(|m| method_label(w, m)).collect();
        methods.dedup();
        rows.push(SessionRow {
            current: s.sid == current.sid,
            started: when(Some(s.created_at)),
            methods: methods.join(" + "),
            source_ip: s.source_ip.clone().unwrap_or_else(|| "—".into()),
            browser: browser_name(s.user_agent.as_deref()),
            services: if services.is_empty() { "—".into() } else { services.join(", ") },
            sid: s.sid,
        });
    }
    Ok(rows)
}

async fn home(State(st): State<LoginState>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let locale = q.lang.as_deref().and_then(Locale::from_tag).unwrap_or_default();
    match current(&st, &headers).await {
        Err(r) => r,
        Ok(None) => sign_in(&st, locale, false).await,
        Ok(Some((_, session))) => render_home(&st, &session, None, None).await,
    }
}

/// «Me reconnecter»: a fresh sign-in, whatever the session (a key is added right after one).
async fn reauth(State(st): State<LoginState>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let locale = match current(&st, &headers).await {
        Ok(Some((_, session))) => session.locale,
        _ => q.lang.as_deref().and_then(Locale::from_tag).unwrap_or_default(),
    };
    sign_in(&st, locale, true).await
}

#[derive(Deserialize, Default)]
pub(crate) struct WalletForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    pub(crate) code: String,
    /// A passkey's name (enrolment, renaming).
    #[serde(default)]
    pub(crate) name: String,
    /// The enrolment under way, and the authenticator's answer (JSON), as the page's script posts it.
    #[serde(default)]
    pub(crate) ceremony: String,
    #[serde(default)]
    pub(crate) webauthn_response: String,
}

/// Every wallet form: a live wallet session and its anti-forgery token, or nothing happens.
pub(crate) async fn checked(
    st: &LoginState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, WalletSession, WalletForm), Response> {
    let form: WalletForm = serde_urlencoded::from_bytes(body).unwrap_or_default();
    match current(st, headers).await? {
        None => Err(st.wallet_home()),
        Some((handle, session)) => {
            if !constant_time_eq(form.csrf_token.as_bytes(), session.csrf.as_bytes()) {
                return Err(page(
                    StatusCode::FORBIDDEN,
                    st.pages().render_error(session.locale, oidc_core::authorize::PageError::Forbidden),
                ));
            }
            Ok((handle, session, form))
        }
    }
}

pub(crate) fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build(),
        Err(_) => String::new(),
    }
}

async fn remove(State(st): State<LoginState>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, session, _) = match checked(&st, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let w = wallet_texts(session.locale);
    match st.enrolment.remove_own(&session.subject, &id, (st.clock)()).await {
        Ok(true) => render_home(&st, &session, Some(w.removed.to_owned()), None).await,
        Ok(false) => render_home(&st, &session, None, Some(w.not_found.to_owned())).await,
        Err(_) => st.unavailable(session.locale),
    }
}

/// «Déconnecter cette session»: ends one of the professional's sessions (never someone else's).
async fn end_one(State(st): State<LoginState>, Path(sid): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let (handle, session, _) = match checked(&st, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = (st.clock)();
    let owned = match st.provider.sessions().get(&sid, now).await {
        Ok(found) => found.is_some_and(|s| s.subject == session.subject),
        Err(_) => return st.unavailable(session.locale),
    };
    let w = wallet_texts(session.locale);
    if !owned {
        return render_home(&st, &session, None, Some(w.not_found.to_owned())).await;
    }
    let Ok(ended) = st.provider.end_session(&sid, "wallet", now).await else {
        return st.unavailable(session.locale);
    };
    if sid == session.sid {
        return signed_out(&st, &handle, session.locale, ended.as_ref()).await;
    }
    render_home(&st, &session, Some(w.session_ended.to_owned()), None).await
}

/// «Me déconnecter partout»: every session of the professional ends, this one included.
async fn end_all(State(st): State<LoginState>, headers: HeaderMap, body: Bytes) -> Response {
    let (handle, session, _) = match checked(&st, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = (st.clock)();
    let Ok(ended) = st.provider.end_every_session(&session.subject, "wallet_everywhere", now).await else {
        return st.unavailable(session.locale);
    };
    let this_one = ended.into_iter().find(|s| s.sid == session.sid);
    signed_out(&st, &handle, session.locale, this_one.as_ref()).await
}

/// Closes the wallet session and shows the signed-out page; this browser's relying parties that
/// asked for Front-Channel Logout get their logout pages loaded (the others, in other browsers,
/// have the back-channel).
async fn signed_out(st: &LoginState, handle: &str, locale: Locale, ended: Option<&SsoSession>) -> Response {
    let _ = st.store.delete(&session_key(handle)).await;
    let frames = match ended {
        Some(s) => st.provider.frontchannel_frames(s).await,
        None => Vec::new(),
    };
    let mut r = if frames.is_empty() {
        page(StatusCode::OK, oidc_core::http::Pages::logged_out(&st.pages(), locale))
    } else {
        oidc_core::http::frontchannel_page(&st.pages(), locale, &frames, None)
    };
    r.headers_mut().append(header::SET_COOKIE, wallet_cookie(st.provider.config(), "", true));
    oidc_core::http::cookies::set(
        r.headers_mut(),
        &oidc_core::http::cookies::clear_session_cookie(st.provider.config()),
    );
    r
}

/// Signs out: the SSO session ends (and with it every token issued under it).
async fn logout(State(st): State<LoginState>, headers: HeaderMap, body: Bytes) -> Response {
    let (handle, session, _) = match checked(&st, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = (st.clock)();
    let Ok(ended) = st.provider.end_session(&session.sid, "wallet", now).await else {
        return st.unavailable(session.locale);
    };
    signed_out(&st, &handle, session.locale, ended.as_ref()).await
}
