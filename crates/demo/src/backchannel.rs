//! Back-Channel Logout 1.0 as a relying party receives it: the logout token is checked as
//! section 2.6 asks (signature by the provider's keys, `typ`, issuer, audience, the event, no
//! nonce, a `sid` or `sub`), then every session of this `sid` (or subject) ends here.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::{DemoRp, Received};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    logout_token: String,
}

fn validate(rp: &DemoRp, token: &str) -> Result<serde_json::Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some("logout+jwt") {
        return Err(format!("typ {:?}", header.typ));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = rp.inner.jwks.find(&kid).ok_or("unknown key")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[rp.inner.settings.issuer.as_str()]);
    v.set_audience(&[rp.inner.settings.client_id.as_str()]);
    v.set_required_spec_claims(&["iss", "aud", "iat", "exp"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).map_err(|e| e.to_string())?.claims;
    if !claims["events"][EVENT].is_object() {
        return Err("no back-channel logout event".into());
    }
    if claims.get("nonce").is_some() {
        return Err("a logout token carries no nonce".into());
    }
    if claims["sid"].as_str().is_none() && claims["sub"].as_str().is_none() {
        return Err("sid or sub is required".into());
    }
    Ok(claims)
}

pub(crate) async fn receive(State(rp): State<DemoRp>, Form(form): Form<LogoutForm>) -> StatusCode {
    let claims = match validate(&rp, &form.logout_token) {
        Ok(c) => c,
        Err(why) => {
            tracing::warn!(%why, "logout token refused");
            return StatusCode::BAD_REQUEST;
        }
    };
    let sid = claims["sid"].as_str().unwrap_or_default().to_owned();
    let sub = claims["sub"].as_str().unwrap_or_default().to_owned();
    let ended = match rp.inner.sessions.lock() {
        Ok(mut sessions) => {
            let before = sessions.len();
            sessions.retain(|_, s| sid.is_empty() || s.sid.as_deref() != Some(sid.as_str()));
            before - sessions.len()
        }
        Err(_) => 0,
    };
    let at = claims["iat"].as_i64().unwrap_or_default();
    if let Ok(mut received) = rp.inner.received.lock() {
        received.push(Received { at: format!("{at}"), sid, sub, ended });
    }
    StatusCode::OK
}
