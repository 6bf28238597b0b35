//! `private_key_jwt` (RFC 7523, OIDC Core 9): a client key pair, its JWK Set to register, and
//! the client assertions signed with it by the `jsonwebtoken` crate.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oidc_core::client::{ClientMetadata, TokenEndpointAuthMethod};
use serde::Serialize;

use crate::rp::{REDIRECT, World};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client's ES256 signing key.
pub struct ClientKey {
    pub kid: String,
    key: EncodingKey,
    jwk: Jwk,
}

/// The claims OIDC Core 9 requires of a client assertion.
#[derive(Debug, Clone, Serialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub jti: String,
    pub exp: i64,
    pub iat: i64,
}

impl ClientKey {
    pub fn generate(kid: &str) -> anyhow::Result<ClientKey> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?;
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)?;
        jwk.common.key_id = Some(kid.to_owned());
        Ok(ClientKey { kid: kid.to_owned(), key, jwk })
    }

    /// The JWK Set to register in the client's metadata (`jwks`).
    pub fn jwks(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::json!({ "keys": [serde_json::to_value(&self.jwk)?] }))
    }

    /// The assertion a well-behaved client sends: issued now, for `aud`, valid a minute.
    pub fn claims(client_id: &str, aud: &str, jti: &str, now: i64) -> AssertionClaims {
        AssertionClaims {
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            aud: aud.to_owned(),
            jti: jti.to_owned(),
            exp: now + 60,
            iat: now,
        }
    }

    pub fn sign(&self, claims: &AssertionClaims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }
}

/// Registers `client_id` as a `private_key_jwt` client with `key`'s JWK Set.
pub async fn register_jwt_client(w: &World, client_id: &str, key: &ClientKey) -> anyhow::Result<()> {
    let metadata: ClientMetadata = serde_json::from_value(serde_json::json!({
        "client_name": client_id,
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": TokenEndpointAuthMethod::PrivateKeyJwt,
        "jwks": key.jwks()?,
    }))?;
    w.provider.add_client_metadata(client_id, metadata).await?;
    Ok(())
}
