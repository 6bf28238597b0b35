//! Signing keys: generation, persistence through [`KeyStore`], rotation, the published JWKS, and
//! compact JWS signing and verification for the tokens this provider issues.
//!
//! Key pairs are parsed once and kept in memory: re-parsing a private key per signature costs
//! more than the signature itself for RS256. Signing is done here with aws-lc-rs directly;
//! verification goes through `jsonwebtoken` with decoding keys built once per key.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::util::sha256_b64;

/// The JWS algorithms this provider signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SigningAlg {
    #[default]
    RS256,
    ES256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 2] = [SigningAlg::RS256, SigningAlg::ES256];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "RS256" => Some(SigningAlg::RS256),
            "ES256" => Some(SigningAlg::ES256),
            _ => None,
        }
    }

    fn jwt_algorithm(self) -> Algorithm {
        match self {
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::ES256 => Algorithm::ES256,
        }
    }
}

/// The kinds of token this provider signs, each with its own `typ` header so that none can be
/// taken for another where the provider reads tokens back (RFC 8725 3.11): an ID token hint must
/// be an ID token, not a userinfo answer or a logout token signed by the same key, with the
/// same `iss`, `sub` and `aud`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `JWT`, as relying parties expect of ID tokens.
    IdToken,
    /// `at+jwt` (RFC 9068).
    AccessToken,
    /// `logout+jwt` (Back-Channel Logout 1.0).
    LogoutToken,
    /// No `typ` at all: the one value apart from `JWT` that relying party libraries accept for
    /// a signed userinfo answer (openidconnect-rs accepts `JWT`, `JOSE` or none; Nimbus `JWT` or
    /// none), and no standard type exists for it.
    UserInfo,
}

impl TokenKind {
    /// The `typ` header of this kind (none for userinfo).
    pub fn typ(self) -> Option<&'static str> {
        match self {
            TokenKind::IdToken => Some("JWT"),
            TokenKind::AccessToken => Some("at+jwt"),
            TokenKind::LogoutToken => Some("logout+jwt"),
            TokenKind::UserInfo => None,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing key as persisted: the private key in PKCS#8 (the store encrypts it at rest).
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub pkcs8: Zeroizing<Vec<u8>>,
    pub created_at: i64,
    /// When the key stopped signing; it is still published until `publish_until`.
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key storage unavailable: {0}")]
    Storage(String),
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
    #[error("no active {0} signing key")]
    NoActiveKey(SigningAlg),
    #[error("cannot serialise token: {0}")]
    Serialise(String),
}

/// Durable storage of signing keys (implemented over the directory by the server).
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn load(&self) -> Result<Vec<StoredKey>, KeyError>;
    async fn insert(&self, key: &StoredKey) -> Result<(), KeyError>;
    async fn retire(&self, kid: &str, at: i64, publish_until: i64) -> Result<(), KeyError>;
    async fn purge(&self, now: i64) -> Result<u64, KeyError>;
}

enum Pair {
    Rsa(signature::RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A parsed key pair with its public forms.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    pair: Pair,
    jwk: serde_json::Value,
    decoding: DecodingKey,
    created_at: i64,
    retired_at: Option<i64>,
}

impl SigningKey {
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    fn from_stored(stored: &StoredKey) -> Result<Self, KeyError> {
        let (pair, jwk, decoding) = match stored.alg {
            SigningAlg::RS256 => {
                let pair = signature::RsaKeyPair::from_pkcs8(&stored.pkcs8)
                    .map_err(|_| KeyError::Crypto("invalid RSA private key"))?;
                let public = pair.public_key();
                let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
                let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
                let decoding =
                    DecodingKey::from_rsa_components(&n, &e).map_err(|_| KeyError::Crypto("invalid RSA public key"))?;
                let jwk = serde_json::json!({
                    "kty": "RSA", "use": "sig", "alg": "RS256", "kid": stored.kid, "n": n, "e": e,
                });
                (Pair::Rsa(pair), jwk, decoding)
            }
            SigningAlg::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &stored.pkcs8)
                    .map_err(|_| KeyError::Crypto("invalid EC private key"))?;
                let point = pair.public_key().as_ref();
                // Uncompressed SEC1 point: 0x04 || X (32 bytes) || Y (32 bytes).
                if point.len() != 65 || point[0] != 4 {
                    return Err(KeyError::Crypto("unexpected EC public key encoding"));
                }
                let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
                let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
                let decoding =
                    DecodingKey::from_ec_components(&x, &y).map_err(|_| KeyError::Crypto("invalid EC public key"))?;
                let jwk = serde_json::json!({
                    "kty": "EC", "use": "sig", "alg": "ES256", "kid": stored.kid, "crv": "P-256", "x": x, "y": y,
                });
                (Pair::Ec(pair), jwk, decoding)
            }
        };
        Ok(SigningKey {
            kid: stored.kid.clone(),
            alg: stored.alg,
            pair,
            jwk,
            decoding,
            created_at: stored.created_at,
            retired_at: stored.retired_at,
        })
    }

    fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| KeyError::Crypto("RSA signature failed"))?;
                Ok(sig)
            }
            Pair::Ec(pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto("ECDSA signature failed")),
        }
    }

    /// Signs `claims` as a compact JWS with header `{"alg","typ","kid"}` (no `typ` for kinds
    /// that have none).
    pub fn sign_jwt<T: Serialize>(&self, kind: TokenKind, claims: &T) -> Result<String, KeyError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            typ: Option<&'static str>,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header { alg: self.alg.as_str(), typ: kind.typ(), kid: &self.kid })
            .map_err(|e| KeyError::Serialise(e.to_string()))?;
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Serialise(e.to_string()))?;
        let mut out = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 400);
        URL_SAFE_NO_PAD.encode_string(&header, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let sig = self.sign_bytes(out.as_bytes())?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut out);
        Ok(out)
    }
}

/// Generates a fresh key of `alg`, ready to be stored. Its `kid` is the RFC 7638 thumbprint.
pub fn generate_key(alg: SigningAlg, now: i64) -> Result<StoredKey, KeyError> {
    let pkcs8 = match alg {
        SigningAlg::RS256 => {
            let pair = signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| KeyError::Crypto("RSA key generation failed"))?;
            let der = pair.as_der().map_err(|_| KeyError::Crypto("RSA key export failed"))?;
            Zeroizing::new(der.as_ref().to_vec())
        }
        SigningAlg::ES256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::Crypto("EC key generation failed"))?;
            Zeroizing::new(doc.as_ref().to_vec())
        }
    };
    let mut stored =
        StoredKey { kid: String::new(), alg, pkcs8, created_at: now, retired_at: None, publish_until: None };
    let parsed = SigningKey::from_stored(&stored)?;
    stored.kid = thumbprint(&parsed.jwk)?;
    Ok(stored)
}

/// RFC 7638 JWK thumbprint (SHA-256) over the required members in lexicographic order.
fn thumbprint(jwk: &serde_json::Value) -> Result<String, KeyError> {
    let field = |name: &str| jwk.get(name).and_then(|v| v.as_str()).ok_or(KeyError::Crypto("incomplete JWK"));
    let canonical = match field("kty")? {
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, field("e")?, field("n")?),
        _ => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, field("crv")?, field("x")?, field("y")?),
    };
    Ok(sha256_b64(canonical.as_bytes()))
}

/// The keys in use at one moment: what signs, and what is published and accepted.
struct KeySet {
    by_kid: HashMap<String, Arc<SigningKey>>,
    active: HashMap<SigningAlg, Arc<SigningKey>>,
    jwks: Arc<str>,
}

impl KeySet {
    fn build(stored: &[StoredKey], now: i64) -> Result<Self, KeyError> {
        let mut by_kid = HashMap::new();
        let mut active: HashMap<SigningAlg, Arc<SigningKey>> = HashMap::new();
        let mut published = Vec::new();
        for s in stored {
            if s.publish_until.is_some_and(|until| until < now) {
                continue;
            }
            let key = Arc::new(SigningKey::from_stored(s)?);
            published.push(key.jwk.clone());
            if key.retired_at.is_none() {
                // Two nodes starting at once may both generate a key: the newest one wins
                // everywhere, deterministically (ties broken by kid).
                let newer = match active.get(&key.alg) {
                    None => true,
                    Some(cur) => (key.created_at, &key.kid) > (cur.created_at, &cur.kid),
                };
                if newer {
                    active.insert(key.alg, key.clone());
                }
            }
            by_kid.insert(key.kid.clone(), key);
        }
        let jwks = serde_json::to_string(&serde_json::json!({ "keys": published }))
            .map_err(|e| KeyError::Serialise(e.to_string()))?;
        Ok(KeySet { by_kid, active, jwks: Arc::from(jwks) })
    }
}

/// Claims every token this provider verifies must carry.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    pub issuer: &'a str,
    /// The kind of token expected, by its `typ` header.
    pub kind: TokenKind,
    /// Whether an expired token is still accepted (e.g. `id_token_hint` at logout).
    pub allow_expired: bool,
    /// The current time (Unix seconds): expiry is judged by the provider's clock.
    pub now: i64,
}

/// The provider's signing keys, shared by every request; reloaded from the [`KeyStore`] so that
/// a rotation on one node reaches the others.
pub struct KeyRing {
    store: Arc<dyn KeyStore>,
    current: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    /// Loads the stored keys, generating (and storing) one per algorithm where none is active.
    pub async fn load_or_init(store: Arc<dyn KeyStore>, now: i64) -> Result<Self, KeyError> {
        let mut stored = store.load().await?;
        for alg in SigningAlg::ALL {
            let has_active = stored
                .iter()
                .any(|k| k.alg == alg && k.retired_at.is_none() && k.publish_until.is_none_or(|u| u >= now));
            if !has_active {
                let key = generate_key(alg, now)?;
                store.insert(&key).await?;
                tracing::info!(kid = %key.kid, %alg, "generated a new signing key");
                stored.push(key);
            }
        }
        let set = KeySet::build(&stored, now)?;
        Ok(KeyRing { store, current: RwLock::new(Arc::new(set)) })
    }

    fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the keys from storage (after a rotation on this or another node).
    pub async fn reload(&self, now: i64) -> Result<(), KeyError> {
        let stored = self.store.load().await?;
        let set = Arc::new(KeySet::build(&stored, now)?);
        match self.current.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }

    /// Adds a new key per algorithm and signs with it from now on; the previous keys stay
    /// published for `publish_for` seconds (the longest lifetime of a token they signed).
    pub async fn rotate(&self, now: i64, publish_for: i64) -> Result<Vec<String>, KeyError> {
        let stored = self.store.load().await?;
        let mut new_kids = Vec::new();
        for alg in SigningAlg::ALL {
            let key = generate_key(alg, now)?;
            self.store.insert(&key).await?;
            for old in stored.iter().filter(|k| k.alg == alg && k.retired_at.is_none()) {
                self.store.retire(&old.kid, now, now.saturating_add(publish_for)).await?;
            }
            new_kids.push(key.kid);
        }
        self.store.purge(now).await?;
        self.reload(now).await?;
        Ok(new_kids)
    }

    /// The JWKS document, serialised once per key set.
    pub fn jwks_json(&self) -> Arc<str> {
        self.snapshot().jwks.clone()
    }

    pub fn active(&self, alg: SigningAlg) -> Result<Arc<SigningKey>, KeyError> {
        self.snapshot().active.get(&alg).cloned().ok_or(KeyError::NoActiveKey(alg))
    }

    pub fn sign<T: Serialize>(&self, alg: SigningAlg, kind: TokenKind, claims: &T) -> Result<String, KeyError> {
        self.active(alg)?.sign_jwt(kind, claims)
    }

    /// Verifies a token this provider signed: known `kid`, its algorithm, `typ` (that of the
    /// expected kind exactly: a token without one is never an ID or access token), `iss`, and
    /// `exp` (unless `allow_expired`). `aud` is checked by the caller, who knows what to expect.
    pub fn verify<T: DeserializeOwned>(&self, token: &str, opts: VerifyOptions<'_>) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let typ_matches = match (header.typ.as_deref(), opts.kind.typ()) {
            (Some(found), Some(expected)) => found.eq_ignore_ascii_case(expected),
            (None, None) => true,
            _ => false,
        };
        if !typ_matches {
            return None;
        }
        let kid = header.kid?;
        let key = self.snapshot().by_kid.get(&kid).cloned()?;
        if header.alg != key.alg.jwt_algorithm() {
            return None;
        }
        let mut validation = Validation::new(key.alg.jwt_algorithm());
        validation.set_issuer(&[opts.issuer]);
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation).ok()?.claims;
        let exp = claims.get("exp").and_then(serde_json::Value::as_i64)?;
        if !opts.allow_expired && exp <= opts.now {
            return None;
        }
        serde_json::from_value(claims).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct MemKeys(Mutex<Vec<StoredKey>>);

    #[async_trait]
    impl KeyStore for MemKeys {
        async fn load(&self) -> Result<Vec<StoredKey>, KeyError> {
            Ok(self.0.lock().unwrap().clone())
        }
        async fn insert(&self, key: &StoredKey) -> Result<(), KeyError> {
            self.0.lock().unwrap().push(key.clone());
            Ok(())
        }
        async fn retire(&self, kid: &str, at: i64, until: i64) -> Result<(), KeyError> {
            for k in self.0.lock().unwrap().iter_mut().filter(|k| k.kid == kid) {
                k.retired_at = Some(at);
                k.publish_until = Some(until);
            }
            Ok(())
        }
        async fn purge(&self, now: i64) -> Result<u64, KeyError> {
            let mut keys = self.0.lock().unwrap();
            let before = keys.len();
            keys.retain(|k| k.publish_until.is_none_or(|u| u >= now));
            Ok((before - keys.len()) as u64)
        }
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Claims {
        iss: String,
        sub: String,
        exp: i64,
    }

    fn claims(exp: i64) -> Claims {
        Claims { iss: "https://op.example".into(), sub: "alice".into(), exp }
    }

    fn opts() -> VerifyOptions<'static> {
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap();
        VerifyOptions { issuer: "https://op.example", kind: TokenKind::IdToken, allow_expired: false, now }
    }

    #[tokio::test]
    async fn signs_and_verifies_with_both_algorithms() {
        let ring = KeyRing::load_or_init(Arc::new(MemKeys::default()), 1000).await.unwrap();
        let exp = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap() + 60;
        for alg in SigningAlg::ALL {
            let jwt = ring.sign(alg, TokenKind::IdToken, &claims(exp)).unwrap();
            assert_eq!(ring.verify::<Claims>(&jwt, opts()), Some(claims(exp)));
            // Wrong typ, tampered payload and expired tokens are refused.
            assert!(ring.verify::<Claims>(&jwt, VerifyOptions { kind: TokenKind::AccessToken, ..opts() }).is_none());
            let mut parts: Vec<&str> = jwt.split('.').collect();
            let other = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(exp + 1)).unwrap());
            parts[1] = &other;
            assert!(ring.verify::<Claims>(&parts.join("."), opts()).is_none());
            let old = ring.sign(alg, TokenKind::IdToken, &claims(exp - 3600)).unwrap();
            assert!(ring.verify::<Claims>(&old, opts()).is_none());
            assert!(ring.verify::<Claims>(&old, VerifyOptions { allow_expired: true, ..opts() }).is_some());
        }
        let jwks: serde_json::Value = serde_json::from_str(&ring.jwks_json()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    }

    /// Issue 13, item 7: a userinfo answer, a logout token or an access token, signed by the
    /// same key for the same `iss` and `sub`, is never read back as another kind.
    #[tokio::test]
    async fn item_7_each_kind_of_token_verifies_only_as_itself() {
        let ring = KeyRing::load_or_init(Arc::new(MemKeys::default()), 1000).await.unwrap();
        let exp = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap() + 60;
        let kinds = [TokenKind::IdToken, TokenKind::AccessToken, TokenKind::LogoutToken, TokenKind::UserInfo];
        for signed_as in kinds {
            let jwt = ring.sign(SigningAlg::RS256, signed_as, &claims(exp)).unwrap();
            for read_as in kinds {
                let read = ring.verify::<Claims>(&jwt, VerifyOptions { kind: read_as, ..opts() });
                assert_eq!(read.is_some(), signed_as == read_as, "{signed_as:?} read as {read_as:?}");
            }
        }
        let userinfo = ring.sign(SigningAlg::ES256, TokenKind::UserInfo, &claims(exp)).unwrap();
        let header = jsonwebtoken::decode_header(&userinfo).unwrap();
        assert_eq!(header.typ, None, "a signed userinfo answer has no typ");
    }

    #[tokio::test]
    async fn rotation_signs_with_new_key_and_keeps_old_published_until_expiry() {
        let store = Arc::new(MemKeys::default());
        let ring = KeyRing::load_or_init(store.clone(), 1000).await.unwrap();
        let old_kid = ring.active(SigningAlg::RS256).unwrap().kid().to_owned();
        let exp = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap() + 60;
        let old_token = ring.sign(SigningAlg::RS256, TokenKind::IdToken, &claims(exp)).unwrap();

        ring.rotate(2000, 600).await.unwrap();
        let new_kid = ring.active(SigningAlg::RS256).unwrap().kid().to_owned();
        assert_ne!(old_kid, new_kid);
        assert!(ring.jwks_json().contains(&old_kid));
        assert!(ring.verify::<Claims>(&old_token, opts()).is_some());

        // After the publication window the old key disappears from the JWKS and is refused.
        ring.reload(2601).await.unwrap();
        assert!(!ring.jwks_json().contains(&old_kid));
        assert!(ring.verify::<Claims>(&old_token, opts()).is_none());

        // A second node loading the same store signs with the same active key.
        let other = KeyRing::load_or_init(store, 2601).await.unwrap();
        assert_eq!(other.active(SigningAlg::RS256).unwrap().kid(), new_kid);
    }
}
