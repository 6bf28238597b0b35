//! The loopback HTTP server the provider's login page talks to.
//!
//! Every request must come from an allowed `Origin` (403 otherwise, without CORS headers);
//! the challenge must name that same origin, which binds the signature to the site that asked
//! (a phishing page cannot relay the real provider's challenge). CORS and Chrome's private
//! network access answer allowed origins only. One card operation at a time; small bodies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::backend::{CardBackend, Signed};
use crate::challenge::{ALGORITHM, Challenge, normalise_origin};
use crate::error::AgentError;
use crate::page::{PageError, ResultPage};

/// Largest request body: a challenge, a PIN, a return URL and a state fit in far less.
pub const BODY_LIMIT: usize = 8 * 1024;

/// The server's settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Origins allowed to call the agent (`https://login.example`), exactly as browsers send
    /// them.
    pub allowed_origins: Vec<String>,
    /// How long one card operation may take.
    pub operation_timeout: Duration,
}

struct AppState {
    backend: Arc<dyn CardBackend>,
    allowed: Vec<String>,
    card: Arc<Mutex<()>>,
    timeout: Duration,
}

/// The origin of an allowed request (set by the origin guard).
#[derive(Debug, Clone)]
struct AllowedOrigin(String);

/// The router: `GET /v1/status`, `POST /v1/sign`, behind the origin guard.
pub fn router(backend: Arc<dyn CardBackend>, config: ServerConfig) -> Router {
    let state = Arc::new(AppState {
        backend,
        allowed: config.allowed_origins,
        card: Arc::new(Mutex::new(())),
        timeout: config.operation_timeout,
    });
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/sign", post(sign))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), origin_guard))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// A configured origin must be a serialised http(s) origin.
pub fn check_allowed_origin(origin: &str) -> Result<String, AgentError> {
    normalise_origin(origin)
        .ok_or_else(|| AgentError::InvalidRequest(format!("{origin:?} is not an origin (scheme://host[:port])")))
}

fn json_error(e: &AgentError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(e.to_json())).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "not_found" }))).into_response()
}

async fn origin_guard(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| state.allowed.iter().any(|a| a == o))
        .map(str::to_owned);
    let Some(origin) = origin else {
        return json_error(&AgentError::OriginNotAllowed);
    };
    let Ok(value) = HeaderValue::from_str(&origin) else {
        return json_error(&AgentError::OriginNotAllowed);
    };
    let mut response = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        h.insert("access-control-allow-private-network", HeaderValue::from_static("true"));
        r
    } else {
        req.extensions_mut().insert(AllowedOrigin(origin));
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

/// Runs one card operation on a blocking thread, one at a time, within the timeout.
async fn with_card<T: Send + 'static>(
    state: &AppState,
    op: impl FnOnce(&dyn CardBackend) -> Result<T, AgentError> + Send + 'static,
) -> Result<T, AgentError> {
    let backend = state.backend.clone();
    let lock = state.card.clone();
    let task = tokio::task::spawn_blocking(move || {
        let _guard = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        op(backend.as_ref())
    });
    match tokio::time::timeout(state.timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => Err(AgentError::Card(format!("card task failed: {e}"))),
        Err(_) => Err(AgentError::Card("the card did not answer in time".into())),
    }
}

async fn status(State(state): State<Arc<AppState>>) -> Response {
    match with_card(&state, |b| b.readers()).await {
        Ok(readers) => axum::Json(serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "readers": readers,
        }))
        .into_response(),
        Err(AgentError::NoReader(_)) => axum::Json(serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "readers": [],
        }))
        .into_response(),
        Err(e) => json_error(&e),
    }
}

#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct SignJson {
    challenge: String,
    pin: String,
    #[serde(default)]
    reader: Option<String>,
}

#[derive(Zeroize, ZeroizeOnDrop)]
struct SignForm {
    challenge: String,
    pin: String,
    return_to: String,
    state: String,
    reader: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The success body, as JSON.
pub fn signed_json(signed: &Signed) -> serde_json::Value {
    serde_json::json!({
        "certificates": signed.certificates.iter().map(|c| b64(c)).collect::<Vec<_>>(),
        "signature": b64(&signed.signature),
        "algorithm": ALGORITHM,
    })
}

fn challenge_for(text: &str, origin: &str) -> Result<Challenge, AgentError> {
    let challenge = Challenge::parse(text)?;
    if challenge.origin() != origin {
        return Err(AgentError::ChallengeOriginMismatch);
    }
    Ok(challenge)
}

async fn sign(
    State(state): State<Arc<AppState>>,
    axum::Extension(AllowedOrigin(origin)): axum::Extension<AllowedOrigin>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = Zeroizing::new(Vec::from(body));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match content_type.as_str() {
        "application/json" => sign_json(&state, &origin, &body).await,
        "application/x-www-form-urlencoded" => sign_form(&state, &origin, &body).await,
        _ => json_error(&AgentError::InvalidRequest("the body is JSON or a urlencoded form".into())),
    }
}

async fn sign_json(state: &AppState, origin: &str, body: &[u8]) -> Response {
    let request: SignJson = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(_) => return json_error(&AgentError::InvalidRequest("malformed JSON".into())),
    };
    let challenge = match challenge_for(&request.challenge, origin) {
        Ok(c) => c,
        Err(e) => return json_error(&e),
    };
    let pin = Zeroizing::new(request.pin.clone());
    let reader = request.reader.clone();
    drop(request);
    let result = with_card(state, move |b| b.sign(&challenge, &pin, reader.as_deref())).await;
    match result {
        Ok(signed) => axum::Json(signed_json(&signed)).into_response(),
        Err(e) => {
            tracing::info!(error = e.code(), "card sign-in refused");
            json_error(&e)
        }
    }
}

async fn sign_form(state: &AppState, origin: &str, body: &[u8]) -> Response {
    let request: SignForm = match serde_urlencoded_from(body) {
        Some(r) => r,
        None => return json_error(&AgentError::InvalidRequest("malformed form".into())),
    };
    // The page posts back only to the origin that asked, which the challenge names too.
    let return_origin = url::Url::parse(&request.return_to)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .map(|u| u.origin().ascii_serialization());
    if return_origin.as_deref() != Some(origin) {
        return json_error(&AgentError::InvalidRequest(
            "return_to must be an absolute URL of the requesting origin".into(),
        ));
    }
    let challenge = match challenge_for(&request.challenge, origin) {
        Ok(c) => c,
        Err(e) => return json_error(&e),
    };
    let pin = Zeroizing::new(request.pin.clone());
    let reader = request.reader.clone();
    let result = with_card(state, move |b| b.sign(&challenge, &pin, reader.as_deref())).await;
    let page = match &result {
        Ok(signed) => ResultPage {
            return_to: &request.return_to,
            state: &request.state,
            certificates: signed.certificates.iter().map(|c| b64(c)).collect(),
            signature: Some(b64(&signed.signature)),
            algorithm: ALGORITHM,
            error: None,
        },
        Err(e) => {
            tracing::info!(error = e.code(), "card sign-in refused");
            ResultPage {
                return_to: &request.return_to,
                state: &request.state,
                certificates: Vec::new(),
                signature: None,
                algorithm: ALGORITHM,
                error: Some(PageError::from(e)),
            }
        }
    };
    let html = match page.render() {
        Ok(h) => h,
        Err(e) => return json_error(&AgentError::Card(format!("page: {e}"))),
    };
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = (StatusCode::OK, axum::response::Html(html)).into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response.headers_mut().insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn serde_urlencoded_from(body: &[u8]) -> Option<SignForm> {
    let mut challenge = None;
    let mut pin = None;
    let mut return_to = None;
    let mut state = String::new();
    let mut reader = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        let v = v.into_owned();
        match k.as_ref() {
            "challenge" => challenge = Some(v),
            "pin" => pin = Some(v),
            "return_to" => return_to = Some(v),
            "state" => state = v,
            "reader" if !v.is_empty() => reader = Some(v),
            _ => {}
        }
    }
    Some(SignForm { challenge: challenge?, pin: pin?, return_to: return_to?, state, reader })
}
