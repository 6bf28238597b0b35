//! The phones' HTTP API (`/push/v1`), JSON over HTTPS: enrolment of the approval phone, the
//! push requests waiting for it, its answers, and the lifting of its account's push block. It
//! completes logins that the login pages started (through the push service's records, on any
//! node) and, on «ce n'était pas moi», ends the professional's sessions through the protocol.
//!
//! Every request body is one compact JWS signed by the phone (see
//! `authn_methods::push_request`); answers are JSON, errors `{"error", "error_description"}`.
//! The contract is in docs/authentication.md («Approbation sur téléphone»).
//!
//! Must not draw pages nor reach the directory: accounts and phones are seen through
//! `authn_methods::push`, sessions through `oidc_core::Provider`.

use std::sync::Arc;

use authn_methods::push::qr::{QrDecision, QrReply};
use authn_methods::push::{AnswerOutcome, PushApprovals};
use authn_methods::push_request::DeviceError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_core::Provider;
use oidc_core::http::Clock;
use serde_json::json;

/// What the phones' API needs.
#[derive(Clone)]
pub struct DeviceApiState {
    pub provider: Arc<Provider>,
    /// None when push approval is off: every call then answers 404.
    pub push: Option<Arc<PushApprovals>>,
    pub clock: Clock,
}

/// A signed request is a few hundred bytes; anything much larger is not one.
const MAX_BODY: usize = 8 * 1024;

pub fn router(state: DeviceApiState) -> Router {
    Router::new()
        .route("/push/v1/devices", post(enrol))
        .route("/push/v1/challenges", post(pending))
        .route("/push/v1/answers", post(answer))
        .route("/push/v1/blocks", post(unblock))
        .route("/push/v1/qr", post(qr))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(e: DeviceError) -> Response {
    let status = match &e {
        DeviceError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        DeviceError::Unauthorized => StatusCode::UNAUTHORIZED,
        DeviceError::NotFound(_) => StatusCode::NOT_FOUND,
        DeviceError::Conflict(_) => StatusCode::CONFLICT,
        DeviceError::Unavailable(inner) => {
            tracing::error!(error = %inner, "push device request failed to run");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    let description = match &e {
        DeviceError::Unavailable(_) => "try again later".to_owned(),
        other => other.to_string(),
    };
    json_response(status, json!({ "error": e.code(), "error_description": description }))
}

/// Why a device request is answered before it reaches the push service.
enum Refusal {
    /// Push approval is not enabled on this provider.
    Disabled,
    /// The body is not a compact JWS.
    NotAJws,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Disabled => json_response(
                StatusCode::NOT_FOUND,
                json!({ "error": "not_found", "error_description": "push approval is not enabled" }),
            ),
            Refusal::NotAJws => error(DeviceError::InvalidRequest("the body must be a compact JWS")),
        }
    }
}

/// The push service and the JWS of the body.
fn device_request<'a>(st: &'a DeviceApiState, body: &'a Bytes) -> Result<(&'a PushApprovals, &'a str), Refusal> {
    let push = st.push.as_deref().ok_or(Refusal::Disabled)?;
    let text = std::str::from_utf8(body).map(str::trim).unwrap_or_default();
    if text.is_empty() || text.split('.').count() != 3 {
        return Err(Refusal::NotAJws);
    }
    Ok((push, text))
}

/// Enrols a phone: `{"action":"enrol","code":...}` signed with the new key, which rides in the
/// header's `jwk`. Answers the device id to put in `kid` from now on.
async fn enrol(State(st): State<DeviceApiState>, body: Bytes) -> Response {
    let (push, jws) = match device_request(&st, &body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    match push.register_device(jws, (st.clock)()).await {
        Ok(device) => json_response(
            StatusCode::CREATED,
            json!({
                "device_id": device.device_id,
                "offline_id": device.offline_id,
                "offline_secret": URL_SAFE_NO_PAD.encode(device.offline_secret.as_slice()),
                "offline_suite": authn_methods::push::qr::OFFLINE_SUITE,
            }),
        ),
        Err(e) => error(e),
    }
}

/// What waits for this phone's approval (`{"action":"list"}`).
async fn pending(State(st): State<DeviceApiState>, body: Bytes) -> Response {
    let (push, jws) = match device_request(&st, &body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    match push.pending(jws, st.clock.as_ref()).await {
        Ok(list) => json_response(StatusCode::OK, json!({ "challenges": list })),
        Err(e) => error(e),
    }
}

/// The phone's answer (`{"action":"answer","challenge","decision","number"}`). «Ce n'était
/// pas moi» has blocked pushes already; here every session of the account ends, and with
/// them the relying parties are told (back-channel logout) and every token dies.
async fn answer(State(st): State<DeviceApiState>, body: Bytes) -> Response {
    let (push, jws) = match device_request(&st, &body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    let now = (st.clock)();
    match push.answer(jws, now).await {
        Ok(AnswerOutcome::Approved) => json_response(StatusCode::OK, json!({ "outcome": "approved" })),
        Ok(AnswerOutcome::Denied { wrong_number }) => {
            json_response(StatusCode::OK, json!({ "outcome": if wrong_number { "wrong_number" } else { "denied" } }))
        }
        Ok(AnswerOutcome::NotMe { subject }) => match st.provider.end_every_session(&subject, "push_not_me", now).await
        {
            Ok(ended) => json_response(StatusCode::OK, json!({ "outcome": "blocked", "sessions_ended": ended.len() })),
            Err(e) => {
                // The block holds (it was written first); the phone says what is left to do.
                tracing::error!(error = %e, "ending sessions after «not me» failed");
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({
                        "error": "temporarily_unavailable",
                        "error_description": "pushes are blocked, but the sessions could not be ended now: sign out everywhere from the wallet",
                        "outcome": "blocked",
                    }),
                )
            }
        },
        Err(e) => error(e),
    }
}

/// The phone lifts its account's push block (`{"action":"unblock"}`). Answers `unblocked`
/// whether or not there was a block (`lifted` says which).
async fn unblock(State(st): State<DeviceApiState>, body: Bytes) -> Response {
    let (push, jws) = match device_request(&st, &body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    match push.unblock_from_device(jws, (st.clock)()).await {
        Ok(lifted) => json_response(StatusCode::OK, json!({ "outcome": "unblocked", "lifted": lifted })),
        Err(e) => error(e),
    }
}

/// A QR code of a login page, scanned by the phone: `{"action":"lookup","challenge"}` answers
/// what it is for (from the server, not from the code); `{"action":"answer","challenge",
/// "decision"}` approves or refuses it, once.
async fn qr(State(st): State<DeviceApiState>, body: Bytes) -> Response {
    let (push, jws) = match device_request(&st, &body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    match push.qr_request(jws, (st.clock)()).await {
        Ok(QrReply::Lookup(view)) => json_response(StatusCode::OK, json!(view)),
        Ok(QrReply::Answered(QrDecision::Approve)) => json_response(StatusCode::OK, json!({ "outcome": "approved" })),
        Ok(QrReply::Answered(QrDecision::Deny)) => json_response(StatusCode::OK, json!({ "outcome": "denied" })),
        Err(e) => error(e),
    }
}
