//! The pages a person sees at Caducée: the login form, error pages, logout confirmation.
//!
//! Owns the HTML (askama templates, French first, English second, accessible, working without
//! JavaScript) and the login handlers, which run the authentication engine (`authn-methods`)
//! and hand the result to the protocol (`oidc-core`) to finish the interaction. The form
//! contract (field names) is documented in docs/login-ui.md. The phones' JSON API, which
//! completes push logins, is the `device-api` crate's.
//!
//! Must not reach into the directory's internals: accounts are only seen through the engine.

mod card_page;
mod card_texts;
mod i18n;
mod login;
mod method_pages;
mod pages;
mod passkey_texts;
pub mod store_keys;
pub mod wallet;
mod wallet_passkeys;
mod wallet_push;
pub mod wallet_sessions;
mod wallet_texts;
mod wallet_totp;

use std::sync::Arc;

use authn_methods::device::{DEVICE_COOKIE, DEVICE_COOKIE_MAX_AGE_SECS};
use authn_methods::enrolment::Enrolment;
use authn_methods::{AuthEngine, Login};
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use oidc_core::flow::{INTERACTION_PATH, Interaction, InteractionError};
use oidc_core::http::Clock;
use oidc_core::http::cookies;
use oidc_core::{Locale, LoginResult, Provider, RequestOrigin};
use session_store::SessionStore;

pub use pages::HtmlPages;

use crate::i18n::Texts;

/// What the login handlers share.
#[derive(Clone)]
pub struct LoginState {
    pub provider: Arc<Provider>,
    pub engine: Arc<AuthEngine>,
    /// The phone app's service (enrolment in the wallet), when push approval is on.
    pub push: Option<Arc<authn_methods::push::PushApprovals>>,
    /// Passkeys and security keys (enrolment in the wallet), when a WebAuthn method is on.
    pub passkeys: Option<Arc<authn_methods::webauthn::Passkeys>>,
    pub enrolment: Arc<Enrolment>,
    pub store: Arc<dyn SessionStore>,
    pub wallet_data: Arc<dyn wallet_sessions::WalletData>,
    pub clock: Clock,
}

impl LoginState {
    /// The protocol's pages for this server (its links under the issuer's path).
    pub(crate) fn pages(&self) -> HtmlPages {
        HtmlPages::new(self.provider.config().base_path())
    }

    /// The absolute path of one of this server's routes, under the issuer's path.
    pub(crate) fn path(&self, route: &str) -> String {
        self.provider.config().path(route)
    }
}

/// The login pages, the wallet and their static assets.
pub fn router(state: LoginState) -> Router {
    Router::new()
        .route(&format!("{INTERACTION_PATH}/{{id}}"), get(login::show).post(login::submit))
        .route(&format!("{INTERACTION_PATH}/{{id}}/state"), get(login::waiting))
        .route(&format!("{INTERACTION_PATH}/{{id}}/card"), axum::routing::post(card_page::relay))
        .route("/assets/caducee.css", get(stylesheet))
        .route("/assets/login-wait.js", get(wait_script))
        .route("/assets/webauthn.js", get(passkey_script))
        .route("/assets/card.js", get(card_script))
        .with_state(state.clone())
        .merge(wallet::router(state))
}

const STYLESHEET: &str = include_str!("../assets/caducee.css");
const WAIT_SCRIPT: &str = include_str!("../assets/login-wait.js");
const PASSKEY_SCRIPT: &str = include_str!("../assets/webauthn.js");
const CARD_SCRIPT: &str = include_str!("../assets/card.js");

async fn card_script() -> Response {
    script(CARD_SCRIPT)
}

async fn wait_script() -> Response {
    script(WAIT_SCRIPT)
}

async fn passkey_script() -> Response {
    script(PASSKEY_SCRIPT)
}

fn script(body: &'static str) -> Response {
    let mut r = body.into_response();
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

/// Pages are never cached, never framed, and send no referrer (the URL names the interaction).
pub(crate) fn page(status: StatusCode, body: String) -> Response {
    oidc_core::http::security::page(status, body, oidc_core::http::security::PageAllows::Nothing)
}

fn locale_for(lang: Option<&str>, interaction: Option<&Interaction>) -> Locale {
    lang.and_then(Locale::from_tag).or_else(|| interaction.map(|i| i.request.locale)).unwrap_or_default()
}

fn interaction_error(st: &LoginState, locale: Locale, e: InteractionError) -> Response {
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
    page(status, st.pages().render_error(locale, error))
}

async fn client_name(st: &LoginState, interaction: &Interaction) -> String {
    st.provider
        .client_display_name(&interaction.request.client_id)
        .await
        .unwrap_or_else(|| interaction.request.client_id.clone())
}

/// The value of the cookie `name`, if the browser sent one.
pub(crate) fn cookie_named(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v).flatten())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The browser's device cookie ([`authn_methods::device`]), if it sent one.
fn device_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, DEVICE_COOKIE)
}

/// The device cookie to set after a sign-in: sent back to the login pages only, never readable
/// by scripts, kept half a year.
fn set_device_cookie(r: &mut Response, value: String, config: &oidc_core::ProviderConfig) {
    let secure = config.secure_cookies;
    let c = cookie::Cookie::build((DEVICE_COOKIE, value))
        .path(config.path(INTERACTION_PATH))
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
    chosen: Option<&str>,
) -> Response {
    let login = LoginResult {
        subject: result.subject,
        acr: result.acr,
        amr: result.amr,
        auth_time: result.auth_time,
        methods: result.factors.iter().map(|f| f.method.clone()).collect(),
    };
    // `now` is read again: the engine may have taken a while (argon2, padding).
    let config = st.provider.config();
    match st.provider.finish_interaction(id, cookies, &login, origin, (st.clock)()).await {
        Ok(outcome) => {
            let mut r = redirect(&outcome.location, outcome.session_cookie.as_deref(), config);
            set_device_cookie(&mut r, device_cookie, config);
            if let Some(method) = chosen {
                login::remember_method(&mut r, method, config);
            }
            r
        }
        Err(e) => interaction_error(st, locale, e),
    }
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

fn redirect(location: &str, session_cookie: Option<&str>, config: &oidc_core::ProviderConfig) -> Response {
    let mut r = Redirect::to(location).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(value) = session_cookie {
        cookies::set(r.headers_mut(), &cookies::session_cookie(value, config));
    }
    r
}
