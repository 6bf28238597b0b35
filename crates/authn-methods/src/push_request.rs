//! The requests a push approval phone sends: compact JWS (ES256) signed with the key the phone
//! generated at enrolment, so that nothing a phone says can be forged or replayed.
//!
//! Enrolment requests carry the new public key in the JWS header (`jwk`) and prove possession
//! of it by their signature; every later request names its device in `kid` and is checked
//! against the key stored for it. Each request is for this provider only (`aud`), recent
//! (`iat` within the allowed skew) and used once (`jti`, remembered until it could no longer
//! be accepted anyway).

use std::collections::HashSet;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use session_store::SessionStore;

/// Why a phone's request was refused. Said to the phone as an OAuth-style error code.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Malformed, wrong audience, stale or reused: the phone must build a new request.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Unknown or removed device, or a signature that does not verify.
    #[error("unknown device or bad signature")]
    Unauthorized,
    /// The enrolment code or the challenge is unknown, used or expired.
    #[error("{0} not found or expired")]
    NotFound(&'static str),
    /// The account already has a push phone (one per account).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A dependency is down: nothing was decided.
    #[error(transparent)]
    Unavailable(#[from] crate::AuthError),
}

impl DeviceError {
    /// The stable code the device API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            DeviceError::InvalidRequest(_) => "invalid_request",
            DeviceError::Unauthorized => "unauthorized",
            DeviceError::NotFound(_) => "not_found",
            DeviceError::Conflict(_) => "conflict",
            DeviceError::Unavailable(_) => "temporarily_unavailable",
        }
    }
}

impl From<session_store::StoreError> for DeviceError {
    fn from(e: session_store::StoreError) -> Self {
        DeviceError::Unavailable(e.into())
    }
}

impl From<directory::DirectoryError> for DeviceError {
    fn from(e: directory::DirectoryError) -> Self {
        DeviceError::Unavailable(e.into())
    }
}

/// Claims every phone request carries.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<T> {
    pub iat: i64,
    pub jti: String,
    #[serde(flatten)]
    pub body: T,
}

/// The public key of a phone, as stored: an EC P-256 JWK with its public parts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePublicKey {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
}

impl DevicePublicKey {
    /// Keeps the public parts of a P-256 key; refuses other key types (and never keeps a
    /// private part a careless phone might have sent).
    pub(crate) fn from_jwk(jwk: &Jwk) -> Result<Self, DeviceError> {
        match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                Ok(DevicePublicKey { kty: "EC".into(), crv: "P-256".into(), x: ec.x.clone(), y: ec.y.clone() })
            }
            _ => Err(DeviceError::InvalidRequest("the key must be an EC P-256 public key (ES256)")),
        }
    }

    fn decoding_key(&self) -> Result<DecodingKey, DeviceError> {
        DecodingKey::from_ec_components(&self.x, &self.y).map_err(|_| DeviceError::Unauthorized)
    }
}

/// Checks one phone request and returns its body.
pub(crate) struct RequestCheck<'a> {
    pub store: &'a dyn SessionStore,
    pub audience: &'a str,
    pub skew: Duration,
    pub now: i64,
}

impl RequestCheck<'_> {
    /// The key and kid the request's header names (`jwk` for enrolment, `kid` afterwards).
    pub(crate) fn header(token: &str) -> Result<jsonwebtoken::Header, DeviceError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| DeviceError::InvalidRequest("not a JWS"))?;
        if header.alg != Algorithm::ES256 {
            return Err(DeviceError::InvalidRequest("alg must be ES256"));
        }
        Ok(header)
    }

    /// Verifies the signature with `key`, then audience, age and single use. `scope` names whose
    /// `jti`s these are (the device, or the enrolment key), so phones cannot collide.
    pub(crate) async fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        key: &DevicePublicKey,
        scope: &str,
    ) -> Result<T, DeviceError> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.required_spec_claims = HashSet::from(["aud".to_owned()]);
        validation.set_audience(&[self.audience]);
        let data = jsonwebtoken::decode::<Envelope<T>>(token, &key.decoding_key()?, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey => DeviceError::Unauthorized,
                ErrorKind::InvalidAudience | ErrorKind::MissingRequiredClaim(_) => {
                    DeviceError::InvalidRequest("aud must be this provider's push endpoint")
                }
                _ => DeviceError::InvalidRequest("malformed request claims"),
            }
        })?;
        // `iat` is the phone's number, anywhere in `i64`: the distance is taken without overflow.
        if data.claims.iat.abs_diff(self.now) > self.skew.as_secs() {
            return Err(DeviceError::InvalidRequest("iat too far from the provider's clock"));
        }
        if data.claims.jti.is_empty() || data.claims.jti.len() > 128 {
            return Err(DeviceError::InvalidRequest("jti must be 1 to 128 characters"));
        }
        // Remembered for twice the skew: a copy replayed later is refused by its age.
        let key = crate::store_keys::PUSH_JTI.key(format!("{scope}:{}", data.claims.jti));
        if !self.store.put_if_absent(&key, b"1", self.skew * 2).await? {
            return Err(DeviceError::InvalidRequest("jti already used"));
        }
        Ok(data.claims.body)
    }
}
