//! The pages a person sees at Caducée: the login form, error pages, logout confirmation.
//!
//! Owns the HTML (askama templates, French first, English second, accessible, working without
//! JavaScript) and the login handlers, which run the authentication engine (`authn-methods`)
//! and hand the result to the protocol (`oidc-core`) to finish the interaction. The form
//! contract (field names) is documented in docs/login-ui.md. The phones' JSON API, which
//! completes push logins, is the `device-api` crate's.
//!
//! Must not reach into the directory's internals: accounts are only seen through the engine.

mod i18n;
mod pages;
pub mod store_keys;
pub mod wallet;
mod wallet_push;
pub mod wallet_sessions;
mod wallet_texts;

use std::sync::Arc;

use authn_methods::device::{DEVICE_COOKIE, DEVICE_COOKIE_MAX_AGE_SECS};
use authn_methods::enrolment::Enrolment;
use authn_methods::mail_otp::SendOutcome;
use authn_methods::push::PushSend;
use authn_methods::{AuthContext, AuthEngine, Login, LoginAttempt, MailOtpAttempt, PushAttempt, PushLogin, Refusal};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use oidc_core::flow::{INTERACTION_PATH, Interaction, InteractionError};
use oidc_core::http::Clock;
use oidc_core::http::cookies::{self, CookieJar};
use oidc_core::{Locale, LoginResult, Provider, RequestOrigin};
use serde::Deserialize;
use session_store::SessionStore;

pub use pages::HtmlPages;

use crate::i18n::{Texts, texts};
use crate::pages::{LoginPage, PushWaitPage, render_error};

/// What the login handlers share.
#[derive(Clone)]
pub struct LoginState {
    pub provider: Arc<Provider>,
    pub engine: Arc<AuthEngine>,
    pub enrolment: Arc<Enrolment>,
    pub store: Arc<dyn SessionStore>,
    pub wallet_data: Arc<dyn wallet_sessions::WalletData>,
    pub clock: Clock,
}

/// The login pages, the wallet and their static assets.
pub fn router(state: LoginState) -> Router {
    Router::new()
        .route(&format!("{INTERACTION_PATH}/{{id}}"), get(show_login).post(submit_login))
        .route(&format!("{INTERACTION_PATH}/{{id}}/push/state"), get(push_state))
        .route("/assets/caducee.css", get(stylesheet))
        .route("/assets/push-wait.js", get(push_script))
        .with_state(state.clone())
        .merge(wallet::router(state))
}

const STYLESHEET: &str = include_str!("../assets/caducee.css");
const PUSH_SCRIPT: &str = include_str!("../assets/push-wait.js");

async fn push_script() -> Response {
    let mut r = PUSH_SCRIPT.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

async fn stylesheet() -> Response {
    let mut r = STYLESHEET.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

#[derive(Debug, Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

/// The login form's fields (docs/login-ui.md).
#[derive(Deserialize, Default)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    otp: String,
    #[serde(default)]
    csrf_token: String,
    action: Option<String>,
    lang: Option<String>,
}

/// Pages are never cached, never framed, and send no referrer (the URL names the interaction).
pub(crate) fn page(status: StatusCode, body: String) -> Response {
    oidc_core::http::security::page(status, body, oidc_core::http::security::PageAllows::Nothing)
}

fn locale_for(lang: Option<&str>, interaction: Option<&Interaction>) -> Locale {
    lang.and_then(Locale::from_tag).or_else(|| interaction.map(|i| i.request.locale)).unwrap_or_default()
}

fn interaction_error(locale: Locale, e: InteractionError) -> Response {
    use oidc_core::authorize::PageError;
    let (status, error) = match e {
        InteractionError::Expired => (StatusCode::BAD_REQUEST, PageError::InteractionExpired),
        InteractionError::WrongBrowser => (StatusCode::FORBIDDEN, PageError::Forbidden),
        InteractionError::Provider(p) if p.is_unavailable() => {
            tracing::error!(error = %p, "login unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, PageError::Unavailable)
        }
        InteractionError::Provider(p) => {
            tracing::error!(error = %p, "login failed");
            (StatusCode::INTERNAL_SERVER_ERROR, PageError::Internal)
        }
    };
    page(status, render_error(locale, error))
}

async fn client_name(st: &LoginState, interaction: &Interaction) -> String {
    st.provider
        .client_display_name(&interaction.request.client_id)
        .await
        .unwrap_or_else(|| interaction.request.client_id.clone())
}

async fn show_login(
    State(st): State<LoginState>,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
    jar: CookieJar,
) -> Response {
    let now = (st.clock)();
    let browser = jar.browser_cookies().browser;
    let interaction = match st.provider.interaction(&id, browser.as_deref(), now).await {
        Ok(i) => i,
        Err(e) => return interaction_error(locale_for(q.lang.as_deref(), None), e),
    };
    let locale = locale_for(q.lang.as_deref(), Some(&interaction));
    let form = LoginPage {
        t: texts(locale),
        action: format!("{INTERACTION_PATH}/{id}"),
        client_name: client_name(&st, &interaction).await,
        csrf_token: interaction.csrf_token.clone(),
        username: interaction.request.login_hint.clone().unwrap_or_default(),
        error: None,
        notice: None,
        mail_otp: st.engine.mail_otp_enabled(),
        push: st.engine.push().is_some(),
    };
    page(StatusCode::OK, form.render_page())
}

async fn submit_login(
    State(st): State<LoginState>,
    Path(id): Path<String>,
    jar: CookieJar,
    origin: RequestOrigin,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = (st.clock)();
    let cookies = jar.browser_cookies();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form: LoginForm = match (is_form, serde_urlencoded::from_bytes(&body)) {
        (true, Ok(f)) => f,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                render_error(Locale::default(), oidc_core::authorize::PageError::MalformedRequest),
            );
        }
    };
    let interaction = match st.provider.interaction(&id, cookies.browser.as_deref(), now).await {
        Ok(i) => i,
        Err(e) => return interaction_error(locale_for(form.lang.as_deref(), None), e),
    };
    let locale = locale_for(form.lang.as_deref(), Some(&interaction));
    if !interaction.csrf_matches(&form.csrf_token) {
        return page(StatusCode::FORBIDDEN, render_error(locale, oidc_core::authorize::PageError::Forbidden));
    }

    if form.action.as_deref() == Some("cancel") {
        return match st.provider.abort_interaction(&id, cookies.browser.as_deref(), now).await {
            Ok(location) => redirect(&location, None, false),
            Err(e) => interaction_error(locale, e),
        };
    }

    let cx = AuthContext {
        now,
        source_ip: origin.source_ip.clone(),
        interaction: id.clone(),
        device_cookie: device_cookie(&headers),
        user_agent: origin.user_agent.clone(),
    };
    if form.action.as_deref() == Some("send_mail_otp") {
        return send_mail_otp(&st, &interaction, &id, locale, &cx, &form).await;
    }
    if form.action.as_deref() == Some("send_push") {
        return send_push(&st, &interaction, &id, locale, &cx, &form).await;
    }
    if form.action.as_deref() == Some("check_push") {
        return check_push(&st, &interaction, &id, locale, &cx, &cookies, &origin).await;
    }
    let attempt = st.engine.password_and_otp(&cx, &form.username, &form.password, &form.otp).await;
    let t = texts(locale);
    let refusal = match attempt {
        Ok(LoginAttempt::Success(login)) => {
            return complete_login(&st, &id, &cookies, &origin, login, locale).await;
        }
        Ok(LoginAttempt::Refused(r)) => r,
        Err(e) => {
            let status = failure_status(&e, "authentication failed to run");
            let error = if e.is_unavailable() { t.unavailable.to_owned() } else { t.error_title.to_owned() };
            return page(
                status,
                login_again(&st, &interaction, &id, locale, &form.username, Message::Error(error)).await,
            );
        }
    };
    let (status, message, retry) = match refusal {
        Refusal::Invalid => (StatusCode::OK, t.invalid_credentials.to_owned(), None),
        Refusal::Locked { retry_after } => {
            (StatusCode::TOO_MANY_REQUESTS, locked_message(t, retry_after), Some(retry_after))
        }
    };
    let mut r =
        page(status, login_again(&st, &interaction, &id, locale, &form.username, Message::Error(message)).await);
    with_retry_after(&mut r, retry);
    r
}

/// The browser's device cookie ([`authn_methods::device`]), if it sent one.
fn device_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v).flatten())
        .find(|c| c.name() == DEVICE_COOKIE)
        .map(|c| c.value().to_owned())
}

/// The device cookie to set after a sign-in: sent back to the login pages only, never readable
/// by scripts, kept half a year.
fn set_device_cookie(r: &mut Response, value: String, secure: bool) {
    let c = cookie::Cookie::build((DEVICE_COOKIE, value))
        .path(INTERACTION_PATH)
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(DEVICE_COOKIE_MAX_AGE_SECS))
        .build();
    cookies::set(r.headers_mut(), &c);
}

/// Hands a successful authentication to the protocol, which redirects to the relying party, and
/// remembers the browser.
async fn complete_login(
    st: &LoginState,
    id: &str,
    cookies: &oidc_core::flow::BrowserCookies,
    origin: &RequestOrigin,
    Login { result, device_cookie }: Login,
    locale: Locale,
) -> Response {
    let login = LoginResult {
        subject: result.subject,
        acr: result.acr,
        amr: result.amr,
        auth_time: result.auth_time,
        methods: result.factors.iter().map(|f| f.method.clone()).collect(),
    };
    // `now` is read again: the engine may have taken a while (argon2, padding).
    let secure = st.provider.config().secure_cookies;
    match st.provider.finish_interaction(id, cookies, &login, origin, (st.clock)()).await {
        Ok(outcome) => {
            let mut r = redirect(&outcome.location, outcome.session_cookie.as_deref(), secure);
            set_device_cookie(&mut r, device_cookie, secure);
            r
        }
        Err(e) => interaction_error(locale, e),
    }
}

/// What the page says besides the form: an error (`role=alert`) or a notice (`role=status`).
enum Message {
    Error(String),
    Notice(String),
}

async fn login_again(
    st: &LoginState,
    interaction: &Interaction,
    id: &str,
    locale: Locale,
    username: &str,
    message: Message,
) -> String {
    let (error, notice) = match message {
        Message::Error(e) => (Some(e), None),
        Message::Notice(n) => (None, Some(n)),
    };
    LoginPage {
        t: texts(locale),
        action: format!("{INTERACTION_PATH}/{id}"),
        client_name: client_name(st, interaction).await,
        csrf_token: interaction.csrf_token.clone(),
        username: username.chars().take(64).collect(),
        error,
        notice,
        mail_otp: st.engine.mail_otp_enabled(),
        push: st.engine.push().is_some(),
    }
    .render_page()
}

/// Logs why the engine could not run and says how to answer: 503 when a dependency is down
/// (the person may try again), 500 otherwise.
fn failure_status(e: &authn_methods::AuthError, what: &str) -> StatusCode {
    tracing::error!(error = %e, "{what}");
    if e.is_unavailable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::INTERNAL_SERVER_ERROR }
}

/// RFC 6585: a 429 says when to come back.
fn with_retry_after(r: &mut Response, seconds: Option<u64>) {
    if let Some(v) = seconds.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

fn locked_message(t: &Texts, retry_after: u64) -> String {
    let minutes = retry_after.div_ceil(60).max(1);
    format!("{} {minutes} {}", t.locked_prefix, t.locked_suffix)
}

/// «Envoyer OTP par courriel»: the password is checked, then a code is mailed.
async fn send_mail_otp(
    st: &LoginState,
    interaction: &Interaction,
    id: &str,
    locale: Locale,
    cx: &AuthContext,
    form: &LoginForm,
) -> Response {
    let t = texts(locale);
    if !st.engine.mail_otp_enabled() {
        let message = Message::Error(t.mail_disabled.to_owned());
        return page(StatusCode::BAD_REQUEST, login_again(st, interaction, id, locale, &form.username, message).await);
    }
    let mut retry = None;
    let (status, message) = match st.engine.send_mail_otp(cx, &form.username, &form.password).await {
        Ok(MailOtpAttempt::Sent(SendOutcome::Sent { masked_address, time, date, .. })) => (
            StatusCode::OK,
            Message::Notice(format!(
                "{} {masked_address}. {} {time} {} {date}. {}",
                t.mail_sent_to, t.mail_valid_until, t.mail_date_joiner, t.mail_retype
            )),
        ),
        Ok(MailOtpAttempt::Sent(SendOutcome::NoAddress)) => {
            (StatusCode::OK, Message::Error(t.mail_no_address.to_owned()))
        }
        Ok(MailOtpAttempt::Sent(SendOutcome::Throttled { retry_after })) => (
            {
                retry = Some(retry_after);
                StatusCode::TOO_MANY_REQUESTS
            },
            Message::Error(format!("{} {retry_after} {}", t.mail_throttled_prefix, t.mail_throttled_suffix)),
        ),
        Ok(MailOtpAttempt::Refused(Refusal::Invalid)) => (StatusCode::OK, Message::Error(t.mail_invalid.to_owned())),
        Ok(MailOtpAttempt::Refused(Refusal::Locked { retry_after })) => {
            retry = Some(retry_after);
            (StatusCode::TOO_MANY_REQUESTS, Message::Error(locked_message(t, retry_after)))
        }
        Err(e) => {
            let status = failure_status(&e, "sending a mail OTP failed");
            (status, Message::Error(t.unavailable.to_owned()))
        }
    };
    let mut r = page(status, login_again(st, interaction, id, locale, &form.username, message).await);
    with_retry_after(&mut r, retry);
    r
}

fn redirect(location: &str, session_cookie: Option<&str>, secure: bool) -> Response {
    let mut r = Redirect::to(location).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(value) = session_cookie {
        cookies::set(r.headers_mut(), &cookies::session_cookie(value, secure));
    }
    r
}

/// «Valider sur mon téléphone»: the password is checked, then a push goes to the phone and the
/// page shows the number to type there.
async fn send_push(
    st: &LoginState,
    interaction: &Interaction,
    id: &str,
    locale: Locale,
    cx: &AuthContext,
    form: &LoginForm,
) -> Response {
    let t = texts(locale);
    let client = client_name(st, interaction).await;
    let mut retry = None;
    let (status, message) = match st.engine.send_push(cx, &form.username, &form.password, &client).await {
        Ok(PushAttempt::Sent(PushSend::Sent { number, expires_at, silenced, .. })) => {
            return push_wait_page(interaction, id, locale, &number, expires_at, silenced);
        }
        Ok(PushAttempt::Sent(PushSend::NoDevice)) => (StatusCode::OK, t.push_no_device.to_owned()),
        Ok(PushAttempt::Sent(PushSend::Blocked)) => (StatusCode::OK, t.push_blocked.to_owned()),
        Ok(PushAttempt::Sent(PushSend::Throttled { retry_after })) => {
            retry = Some(retry_after);
            (
                StatusCode::TOO_MANY_REQUESTS,
                format!("{} {retry_after} {}", t.push_throttled_prefix, t.push_throttled_suffix),
            )
        }
        Ok(PushAttempt::Refused(Refusal::Invalid)) => (StatusCode::OK, t.push_invalid.to_owned()),
        Ok(PushAttempt::Refused(Refusal::Locked { retry_after })) => {
            retry = Some(retry_after);
            (StatusCode::TOO_MANY_REQUESTS, locked_message(t, retry_after))
        }
        Err(e) => {
            let status = failure_status(&e, "sending a push failed");
            (status, t.unavailable.to_owned())
        }
    };
    let mut r = page(status, login_again(st, interaction, id, locale, &form.username, Message::Error(message)).await);
    with_retry_after(&mut r, retry);
    r
}

fn push_wait_page(
    interaction: &Interaction,
    id: &str,
    locale: Locale,
    number: &str,
    expires_at: i64,
    silenced: bool,
) -> Response {
    let t = texts(locale);
    let action = format!("{INTERACTION_PATH}/{id}");
    let (valid_until, _) = authn_methods::mail_otp::expiry_parts(expires_at, "Europe/Paris");
    let html = PushWaitPage {
        t,
        state_url: format!("{action}/push/state"),
        action,
        csrf_token: interaction.csrf_token.clone(),
        number: number.to_owned(),
        number_spoken: number.chars().map(String::from).collect::<Vec<_>>().join(" "),
        valid_until,
        silenced,
    }
    .render_page();
    // This page alone runs a script: ours, asking our own origin.
    oidc_core::http::security::page(StatusCode::OK, html, oidc_core::http::security::PageAllows::OwnScript)
}

/// Whether the phone answered: the waiting page again, the relying party, or the login form
/// saying why not.
async fn check_push(
    st: &LoginState,
    interaction: &Interaction,
    id: &str,
    locale: Locale,
    cx: &AuthContext,
    cookies: &oidc_core::flow::BrowserCookies,
    origin: &RequestOrigin,
) -> Response {
    let t = texts(locale);
    let message = match st.engine.check_push(cx).await {
        Ok(PushLogin::Waiting { number, expires_at }) => {
            return push_wait_page(interaction, id, locale, &number, expires_at, false);
        }
        Ok(PushLogin::Success(login)) => return complete_login(st, id, cookies, origin, login, locale).await,
        Ok(PushLogin::Denied) => t.push_denied,
        Ok(PushLogin::Expired) => t.push_expired,
        Err(e) => {
            let status = failure_status(&e, "checking a push failed");
            let html = login_again(st, interaction, id, locale, "", Message::Error(t.unavailable.to_owned())).await;
            return page(status, html);
        }
    };
    let username = interaction.request.login_hint.clone().unwrap_or_default();
    page(StatusCode::OK, login_again(st, interaction, id, locale, &username, Message::Error(message.to_owned())).await)
}

/// `{"waiting": bool}` for the waiting page's script: whether the phone has yet to answer.
/// Reads only; the page then submits its form, which finishes (or refuses) the login.
async fn push_state(
    State(st): State<LoginState>,
    Path(id): Path<String>,
    jar: CookieJar,
    origin: RequestOrigin,
) -> Response {
    let now = (st.clock)();
    let browser = jar.browser_cookies().browser;
    let waiting = match st.provider.interaction(&id, browser.as_deref(), now).await {
        Ok(_) => {
            let cx = AuthContext {
                now,
                source_ip: origin.source_ip.clone(),
                interaction: id.clone(),
                device_cookie: None,
                user_agent: None,
            };
            match st.engine.push_waiting(&cx).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(error = %e, "reading a push failed");
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
            }
        }
        // Gone or another browser's: nothing to wait for (the form's answer will say why).
        Err(_) => false,
    };
    let mut r = axum::Json(serde_json::json!({ "waiting": waiting })).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
