//! The protocol's HTTP face: thin axum handlers that parse, call the [`Provider`], and render
//! responses exactly as the specs say (JSON errors, `WWW-Authenticate`, `Cache-Control: no-store`).
//! The OAuth endpoints' errors and extractors are in [`oauth`]. Pages for people are rendered by
//! an injected [`Pages`] implementation (the login UI crate).

pub mod cookies;
pub mod oauth;
pub mod security;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub use cookies::{BROWSER_COOKIE, CookieJar, SESSION_COOKIE};
use oauth::{BasicClient, ClientCall, parse_form};
use security::{PageAllows, no_store};

use crate::authorize::{AuthorizeParams, Locale, PageError};
use crate::error::{EndpointError, OAuthError};
use crate::flow::AuthorizeOutcome;
use crate::logout::{EndSessionOutcome, EndSessionParams, LogoutError};
use crate::provider::Provider;
use crate::resource::{BearerError, TokenOperationParams, UserInfo};
use crate::secret::SecretString;
use crate::session::RequestOrigin;
use crate::token::TokenParams;

/// HTML pages the protocol shows to people, supplied by the login UI.
pub trait Pages: Send + Sync {
    fn error(&self, locale: Locale, error: PageError) -> String;
    fn logout_error(&self, locale: Locale, error: LogoutError) -> String;
    fn logout_confirm(&self, locale: Locale, confirmation: &str, client_name: Option<&str>) -> String;
    fn logged_out(&self, locale: Locale) -> String;
    /// "You are logged out", loading each of `frames` (the relying parties' front-channel logout
    /// pages) in an iframe, then going on to `then` if given.
    fn frontchannel_logout(&self, locale: Locale, frames: &[String], then: Option<&str>) -> String;
    fn still_logged_in(&self, locale: Locale) -> String;
}

/// The time source, in Unix seconds: the system clock in production, a movable one in tests.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What the protocol handlers share.
#[derive(Clone)]
pub struct ProtocolState {
    pub provider: Arc<Provider>,
    pub pages: Arc<dyn Pages>,
    pub clock: Clock,
}

impl ProtocolState {
    fn now(&self) -> i64 {
        (self.clock)()
    }
}

/// The current Unix time in seconds (the production clock).
pub fn system_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The protocol's routes: discovery, JWKS, authorize, token, userinfo, introspect, revoke, end_session.
pub fn router(state: ProtocolState) -> Router {
    documents_router(state.clone()).merge(dynamic_router(state))
}

/// The two public documents (discovery and JWKS): the same bytes for everyone, read from
/// memory, so that a server may serve them ahead of the layers its other routes need (client
/// address, body limit, tracing), which would cost them more than the answer itself.
pub fn documents_router(state: ProtocolState) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        // Keycloak's names, as relying parties written for Pro Santé Connect use them.
        .route("/.well-known/wallet-openid-configuration", get(discovery))
        .route(&format!("{KEYCLOAK}/certs"), get(jwks))
        .with_state(state)
}

/// Where Keycloak serves the protocol under a realm: every endpoint also answers there, so
/// that a relying party written for Pro Santé Connect finds the paths it knows.
const KEYCLOAK: &str = "/protocol/openid-connect";

/// Every other protocol route.
pub fn dynamic_router(state: ProtocolState) -> Router {
    let ciba = if state.provider.ciba_enabled() {
        Router::new()
            .route("/bc-authorize", post(backchannel_authorize))
            .route(&format!("{KEYCLOAK}/ext/ciba/auth"), post(backchannel_authorize))
    } else {
        Router::new()
    };
    ciba.route("/authorize", get(authorize_get).post(authorize_post))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo_get).post(userinfo_post))
        .route("/introspect", post(introspect))
        .route("/revoke", post(revoke))
        .route("/end_session", get(end_session_get).post(end_session_post))
        .route("/end_session/confirm", post(end_session_confirm))
        .route(&format!("{KEYCLOAK}/auth"), get(authorize_get).post(authorize_post))
        .route(&format!("{KEYCLOAK}/token"), post(token))
        .route(&format!("{KEYCLOAK}/token/introspect"), post(introspect))
        .route(&format!("{KEYCLOAK}/revoke"), post(revoke))
        .route(&format!("{KEYCLOAK}/userinfo"), get(userinfo_get).post(userinfo_post))
        .route(&format!("{KEYCLOAK}/logout"), get(end_session_get).post(keycloak_logout_post))
        .with_state(state)
}

/// The certificate the connection presented (mutual TLS), as the server established it: from
/// its own TLS listener, or passed by a trusted proxy. Absent when none was.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Option<crate::mtls::ClientCertificate>);

impl<S: Send + Sync> FromRequestParts<S> for PeerCertificate {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerCertificate(parts.extensions.get::<crate::mtls::ClientCertificate>().cloned()))
    }
}

/// The caller's address as the server established it (behind trusted proxies, from
/// `X-Forwarded-For`); when absent, the peer address of the connection is used.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub std::net::IpAddr);

/// Who is calling, for audit and for the professional's view of their sessions.
impl<S: Send + Sync> FromRequestParts<S> for RequestOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let source_ip = match parts.extensions.get::<ClientIp>() {
            Some(ClientIp(ip)) => Some(ip.to_string()),
            None => parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()),
        };
        let user_agent =
            parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(256).collect());
        Ok(RequestOrigin { source_ip, user_agent })
    }
}

/// A page for people: never cached, never framed, no referrer, no script.
fn html(status: StatusCode, body: String) -> Response {
    security::page(status, body, PageAllows::Nothing)
}

/// The logged-out page that loads the relying parties' front-channel logout pages: the same
/// protections as every page, with just those origins allowed in frames.
pub fn frontchannel_page(pages: &dyn Pages, locale: Locale, frames: &[String], then: Option<&str>) -> Response {
    security::page(StatusCode::OK, pages.frontchannel_logout(locale, frames, then), PageAllows::Frames(frames))
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{\"error\":\"server_error\"}".to_vec());
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store(r.headers_mut());
    r
}

fn page_status(error: PageError) -> StatusCode {
    match error {
        PageError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        PageError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        PageError::Forbidden => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn discovery(State(st): State<ProtocolState>) -> Response {
    shared_document(st.provider.discovery_json(), "application/json", "public, max-age=300")
}

async fn jwks(State(st): State<ProtocolState>) -> Response {
    shared_document(st.provider.keys().jwks_json(), "application/jwk-set+json", "public, max-age=60")
}

/// A document serialised once and the same for everyone, answered without copying it.
fn shared_document(text: Arc<str>, content_type: &'static str, cache: &'static str) -> Response {
    /// `Arc<str>` as bytes, for `Bytes::from_owner`.
    struct Text(Arc<str>);
    impl AsRef<[u8]> for Text {
        fn as_ref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }
    let mut r = axum::body::Body::from(bytes::Bytes::from_owner(Text(text))).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

async fn authorize_get(
    State(st): State<ProtocolState>,
    origin: RequestOrigin,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let params = serde_urlencoded::from_str::<AuthorizeParams>(query.as_deref().unwrap_or(""));
    authorize(st, origin, jar, params.ok()).await
}

async fn authorize_post(
    State(st): State<ProtocolState>,
    origin: RequestOrigin,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_form::<AuthorizeParams>(&headers, &body);
    authorize(st, origin, jar, params.ok()).await
}

async fn authorize(
    st: ProtocolState,
    origin: RequestOrigin,
    jar: CookieJar,
    params: Option<AuthorizeParams>,
) -> Response {
    let Some(params) = params else {
        return html(StatusCode::BAD_REQUEST, st.pages.error(Locale::default(), PageError::MalformedRequest));
    };
    let now = st.now();
    match st.provider.authorize(params, &jar.browser_cookies(), &origin, now).await {
        AuthorizeOutcome::Redirect(location) => see_other(&location),
        AuthorizeOutcome::Login { location, browser_cookie } => {
            let mut r = see_other(&location);
            if let Some(value) = browser_cookie {
                cookies::set(r.headers_mut(), &cookies::browser_cookie(&value, st.provider.config()));
            }
            r
        }
        AuthorizeOutcome::Page(error, locale) => html(page_status(error), st.pages.error(locale, error)),
        AuthorizeOutcome::TooManyRequests { retry_after, locale } => {
            let mut r = html(StatusCode::TOO_MANY_REQUESTS, st.pages.error(locale, PageError::TooManyRequests));
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

fn see_other(location: &str) -> Response {
    let mut r = Redirect::to(location).into_response();
    no_store(r.headers_mut());
    r
}

/// CIBA's backchannel authentication endpoint (CIBA Core 1.0 §7).
async fn backchannel_authorize(
    State(st): State<ProtocolState>,
    origin: RequestOrigin,
    ClientCall { params, creds }: ClientCall<crate::ciba::BackchannelParams>,
) -> Result<Response, EndpointError> {
    let response = st.provider.backchannel_authorize(params, &creds, &origin, st.clock.clone()).await?;
    Ok(json_response(StatusCode::OK, &response))
}

async fn token(
    State(st): State<ProtocolState>,
    ClientCall { params, creds }: ClientCall<TokenParams>,
) -> Result<Response, EndpointError> {
    let response = st.provider.token(params, &creds, st.now()).await?;
    Ok(json_response(StatusCode::OK, &response))
}

fn bearer_error(error: BearerError) -> Response {
    let (status, challenge) = match error {
        BearerError::Missing => (StatusCode::UNAUTHORIZED, "Bearer realm=\"caducee\""),
        BearerError::InvalidToken => (
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"caducee\", error=\"invalid_token\", error_description=\"the access token is invalid, expired or revoked\"",
        ),
        BearerError::InvalidRequest => (StatusCode::BAD_REQUEST, "Bearer realm=\"caducee\", error=\"invalid_request\""),
        BearerError::Unavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, "Bearer realm=\"caducee\", error=\"temporarily_unavailable\"")
        }
    };
    let mut r = status.into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    no_store(r.headers_mut());
    r
}

/// The bearer token from the `Authorization` header (RFC 6750 2.1).
fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, BearerError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| BearerError::InvalidRequest)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(BearerError::InvalidRequest),
    }
}

async fn userinfo_get(
    State(st): State<ProtocolState>,
    PeerCertificate(cert): PeerCertificate,
    headers: HeaderMap,
) -> Response {
    match bearer_token(&headers) {
        Ok(token) => userinfo(st, token, cert).await,
        Err(e) => bearer_error(e),
    }
}

/// POST userinfo also accepts the token in the form body (RFC 6750 2.2), but not both ways.
async fn userinfo_post(
    State(st): State<ProtocolState>,
    PeerCertificate(cert): PeerCertificate,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    #[derive(serde::Deserialize, Default)]
    struct Form {
        access_token: Option<String>,
    }
    let from_header = match bearer_token(&headers) {
        Ok(t) => t,
        Err(e) => return bearer_error(e),
    };
    let from_body = if body.is_empty() {
        None
    } else {
        match parse_form::<Form>(&headers, &body) {
            Ok(f) => f.access_token,
            Err(_) => return bearer_error(BearerError::InvalidRequest),
        }
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => bearer_error(BearerError::InvalidRequest),
        (a, b) => userinfo(st, a.or(b), cert).await,
    }
}

async fn userinfo(st: ProtocolState, token: Option<String>, cert: Option<crate::mtls::ClientCertificate>) -> Response {
    match st.provider.userinfo(token.as_deref(), cert.as_ref(), st.now()).await {
        Ok(UserInfo::Json(claims)) => json_response(StatusCode::OK, &claims),
        Ok(UserInfo::Jwt(jwt)) => {
            let mut r = jwt.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwt"));
            no_store(r.headers_mut());
            r
        }
        Err(e) => bearer_error(e),
    }
}

async fn introspect(
    State(st): State<ProtocolState>,
    ClientCall { params, creds }: ClientCall<TokenOperationParams>,
) -> Result<Response, EndpointError> {
    let answer = st.provider.introspect(params, &creds, st.now()).await?;
    Ok(json_response(StatusCode::OK, &answer))
}

async fn revoke(
    State(st): State<ProtocolState>,
    ClientCall { params, creds }: ClientCall<TokenOperationParams>,
) -> Result<Response, EndpointError> {
    st.provider.revoke(params, &creds, st.now()).await?;
    let mut r = StatusCode::OK.into_response();
    no_store(r.headers_mut());
    Ok(r)
}

async fn end_session_get(State(st): State<ProtocolState>, jar: CookieJar, RawQuery(query): RawQuery) -> Response {
    match serde_urlencoded::from_str::<EndSessionParams>(query.as_deref().unwrap_or("")) {
        Ok(params) => end_session(st, jar, params).await,
        Err(_) => html(StatusCode::BAD_REQUEST, st.pages.error(Locale::default(), PageError::MalformedRequest)),
    }
}

async fn end_session_post(
    State(st): State<ProtocolState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match parse_form::<EndSessionParams>(&headers, &body) {
        Ok(params) => end_session(st, jar, params).await,
        Err(_) => html(StatusCode::BAD_REQUEST, st.pages.error(Locale::default(), PageError::MalformedRequest)),
    }
}

/// Keycloak's logout: with a `refresh_token` (and the client's credentials), the session ends
/// without a browser (`204`); otherwise it is the browser's RP-initiated logout.
async fn keycloak_logout_post(
    State(st): State<ProtocolState>,
    jar: CookieJar,
    PeerCertificate(cert): PeerCertificate,
    basic: Result<BasicClient, OAuthError>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    #[derive(serde::Deserialize, Default)]
    struct RefreshLogout {
        refresh_token: Option<SecretString>,
        client_id: Option<String>,
        client_secret: Option<SecretString>,
        client_assertion: Option<SecretString>,
        client_assertion_type: Option<String>,
    }
    oauth::client_form!(RefreshLogout);
    let form = match parse_form::<RefreshLogout>(&headers, &body) {
        Ok(f) if f.refresh_token.is_some() => f,
        _ => return end_session_post(State(st), jar, headers, body).await,
    };
    let basic = match basic {
        Ok(BasicClient(b)) => b,
        Err(e) => return e.into_response(),
    };
    let creds = oauth::ClientForm::credentials(&form, basic).with_certificate(cert);
    let token = crate::secret::exposed(&form.refresh_token);
    match st.provider.logout_with_refresh_token(token, &creds, st.now()).await {
        Ok(()) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            no_store(r.headers_mut());
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn end_session(st: ProtocolState, jar: CookieJar, params: EndSessionParams) -> Response {
    let outcome = st.provider.end_session_request(params, jar.session(), st.now()).await;
    render_logout(&st, outcome)
}

async fn end_session_confirm(
    State(st): State<ProtocolState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    #[derive(serde::Deserialize, Default)]
    struct Form {
        confirmation: Option<String>,
        action: Option<String>,
    }
    let form: Form = match parse_form(&headers, &body) {
        Ok(f) => f,
        Err(_) => return html(StatusCode::BAD_REQUEST, st.pages.error(Locale::default(), PageError::MalformedRequest)),
    };
    let accept = form.action.as_deref() == Some("logout");
    let outcome =
        st.provider.confirm_logout(form.confirmation.as_deref().unwrap_or(""), accept, jar.session(), st.now()).await;
    render_logout(&st, outcome)
}

fn render_logout(st: &ProtocolState, outcome: EndSessionOutcome) -> Response {
    let mut r = match outcome {
        EndSessionOutcome::Redirect(location) => see_other(&location),
        EndSessionOutcome::LoggedOut(locale) => html(StatusCode::OK, st.pages.logged_out(locale)),
        EndSessionOutcome::FrontChannel { locale, frames, then } => {
            frontchannel_page(st.pages.as_ref(), locale, &frames, then.as_deref())
        }
        EndSessionOutcome::Confirm { locale, confirmation, client_name } => {
            return html(StatusCode::OK, st.pages.logout_confirm(locale, &confirmation, client_name.as_deref()));
        }
        EndSessionOutcome::StillLoggedIn(locale) => return html(StatusCode::OK, st.pages.still_logged_in(locale)),
        EndSessionOutcome::Refused(error, locale) => {
            let status = if error == LogoutError::Unavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_REQUEST
            };
            return html(status, st.pages.logout_error(locale, error));
        }
    };
    cookies::set(r.headers_mut(), &cookies::clear_session_cookie(st.provider.config()));
    r
}
