//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post`, `client_secret_jwt` and `private_key_jwt`
//! (RFC 7523, OIDC Core 9), mutual TLS (RFC 8705, [`crate::mtls`]) and `none`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;

use crate::client::{Client, TokenEndpointAuthMethod, verify_client_secret};
use crate::error::{EndpointError, ErrorCode, OAuthError};
use crate::mtls::{ClientCertificate, matches_pki, matches_self_signed};
use crate::provider::Provider;
use crate::secret::{ExposeSecret as _, SecretString, exposed};

pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Signature algorithms accepted for client assertions (`private_key_jwt`).
pub const ASSERTION_ALGS: [&str; 6] = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"];
/// MAC algorithms accepted for client assertions (`client_secret_jwt`).
pub const SECRET_ASSERTION_ALGS: [&str; 3] = ["HS256", "HS384", "HS512"];

/// Seconds by which the clocks of a client and the provider may disagree on an assertion's `exp`.
const ASSERTION_LEEWAY: i64 = 5;

/// The credentials a request carries, from its `Authorization` header and its form; the
/// secret and the assertion are redacted from `Debug`.
#[derive(Debug, Default, Clone)]
pub struct ClientCredentials {
    /// `Authorization: Basic` credentials, already decoded.
    pub basic: Option<(String, SecretString)>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub client_assertion: Option<SecretString>,
    pub client_assertion_type: Option<String>,
    /// The certificate the connection presented (mutual TLS), if any.
    pub certificate: Option<ClientCertificate>,
}

impl ClientCredentials {
    /// The credentials of a request: its `Authorization: Basic` (decoded) and the four form
    /// fields every endpoint that authenticates clients reads.
    pub fn from_fields(
        basic: Option<(String, SecretString)>,
        client_id: &Option<String>,
        client_secret: &Option<SecretString>,
        client_assertion: &Option<SecretString>,
        client_assertion_type: &Option<String>,
    ) -> Self {
        ClientCredentials {
            basic,
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            client_assertion: client_assertion.clone(),
            client_assertion_type: client_assertion_type.clone(),
            certificate: None,
        }
    }

    /// With the certificate of the connection, for mutual-TLS clients and bound tokens.
    #[must_use]
    pub fn with_certificate(mut self, certificate: Option<ClientCertificate>) -> Self {
        self.certificate = certificate;
        self
    }

    /// Decodes an `Authorization: Basic` header value (RFC 6749 2.3.1: both parts are
    /// form-urlencoded before being joined). `None` if it is not Basic or is malformed.
    pub fn parse_basic(header: &str) -> Option<Result<(String, SecretString), ()>> {
        let (scheme, rest) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decode = || -> Option<(String, SecretString)> {
            // The decoded header holds the secret in clear: wiped once split.
            let text = zeroize::Zeroizing::new(String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?);
            let (id, secret) = text.split_once(':')?;
            let unescape = |s: &str| -> Option<String> {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={s}")).ok()?;
                pairs.into_iter().next().map(|(_, v)| v)
            };
            Some((unescape(id)?, SecretString::from(unescape(secret)?)))
        };
        Some(decode().ok_or(()))
    }
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    jti: String,
    exp: i64,
}

fn invalid_client(msg: &'static str) -> EndpointError {
    OAuthError::invalid_client(msg).into()
}

impl Provider {
    /// Authenticates the calling client with exactly one method: the one it registered, or, for
    /// a client registered with a secret, the secret in either place (Basic or the form), as
    /// Keycloak accepts and relying parties written for it send. Public clients (method `none`)
    /// are identified, not authenticated: `allow_public` says whether the endpoint serves them
    /// (token and revocation do, introspection does not).
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
        allow_public: bool,
        now: i64,
    ) -> Result<Arc<Client>, EndpointError> {
        let methods_used = usize::from(creds.basic.is_some())
            + usize::from(creds.client_secret.is_some())
            + usize::from(creds.client_assertion.is_some());
        if methods_used > 1 {
            return Err(OAuthError::invalid_request("use exactly one client authentication method").into());
        }

        if let Some(assertion) = exposed(&creds.client_assertion) {
            if creds.client_assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION) {
                return Err(OAuthError::invalid_request("unsupported client_assertion_type").into());
            }
            return self.authenticate_with_assertion(assertion, creds.client_id.as_deref(), now).await;
        }

        let (client_id, secret, method) = match (&creds.basic, &creds.client_id, &creds.client_secret) {
            (Some((id, secret)), form_id, _) => {
                if form_id.as_ref().is_some_and(|f| f != id) {
                    return Err(OAuthError::invalid_request("client_id does not match the Basic credentials").into());
                }
                (id.as_str(), Some(secret.expose_secret()), TokenEndpointAuthMethod::ClientSecretBasic)
            }
            (None, Some(id), Some(secret)) => {
                (id.as_str(), Some(secret.expose_secret()), TokenEndpointAuthMethod::ClientSecretPost)
            }
            (None, Some(id), None) => (id.as_str(), None, TokenEndpointAuthMethod::None),
            (None, None, _) => return Err(invalid_client("client authentication is required")),
        };
        let client = self.client(client_id).await?.ok_or_else(|| invalid_client("client authentication failed"))?;
        let registered = client.metadata.token_endpoint_auth_method;
        if registered.uses_certificate() && method == TokenEndpointAuthMethod::None {
            // RFC 8705 §2: the client is named by `client_id` and proven by its certificate.
            let Some(certificate) = creds.certificate.as_ref() else {
                return Err(invalid_client("a client certificate is required (mutual TLS)"));
            };
            let proven = match registered {
                TokenEndpointAuthMethod::TlsClientAuth => {
                    client.metadata.tls_client_auth_name().is_some_and(|name| matches_pki(certificate, &name))
                }
                _ => matches_self_signed(certificate, client.metadata.jwks.as_ref()),
            };
            if !proven {
                return Err(invalid_client("client authentication failed"));
            }
            return Ok(client);
        }
        let accepted = registered == method || (registered.uses_secret() && method.uses_secret());
        if !accepted || (method == TokenEndpointAuthMethod::None && !allow_public) {
            return Err(invalid_client("client authentication failed"));
        }
        if let Some(secret) = secret {
            let ok = client.secret_hash.as_deref().is_some_and(|h| verify_client_secret(secret, h));
            if !ok {
                return Err(invalid_client("client authentication failed"));
            }
        }
        Ok(client)
    }

    async fn authenticate_with_assertion(
        &self,
        assertion: &str,
        form_client_id: Option<&str>,
        now: i64,
    ) -> Result<Arc<Client>, EndpointError> {
        let failed = || invalid_client("client authentication failed");
        // The client is named by the (not yet verified) `sub`; nothing is trusted before the
        // signature is checked against that client's registered keys.
        let unverified: AssertionClaims =
            jsonwebtoken::dangerous::insecure_decode(assertion).map_err(|_| failed())?.claims;
        if form_client_id.is_some_and(|id| id != unverified.sub) {
            return Err(failed());
        }
        let client = self.client(&unverified.sub).await?.ok_or_else(failed)?;
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| failed())?;
        let alg_name = format!("{:?}", header.alg);
        // The algorithm family must be the registered method's: a MAC for a secret, a
        // signature for keys (never a key's public bytes taken as a MAC secret).
        let keys: Vec<DecodingKey> = match client.metadata.token_endpoint_auth_method {
            TokenEndpointAuthMethod::ClientSecretJwt if SECRET_ASSERTION_ALGS.contains(&alg_name.as_str()) => {
                let secret = client.secret.as_ref().ok_or_else(failed)?;
                vec![DecodingKey::from_secret(secret.expose_secret().as_bytes())]
            }
            TokenEndpointAuthMethod::PrivateKeyJwt if ASSERTION_ALGS.contains(&alg_name.as_str()) => {
                let jwks: JwkSet =
                    client.metadata.jwks.clone().and_then(|j| serde_json::from_value(j).ok()).ok_or_else(failed)?;
                jwks.keys
                    .iter()
                    .filter(|k| match (&header.kid, &k.common.key_id) {
                        (Some(want), Some(have)) => want == have,
                        (Some(_), None) => false,
                        (None, _) => true,
                    })
                    .filter(|jwk| jwk.common.key_algorithm.is_none_or(|a| format!("{a:?}") == alg_name))
                    .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
                    .collect()
            }
            _ => return Err(failed()),
        };

        let audiences = [self.config.issuer.clone(), self.config.endpoint("/token")];
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&audiences);
        validation.set_issuer(&[client.client_id.as_str()]);
        validation.sub = Some(client.client_id.clone());
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        validation.leeway = ASSERTION_LEEWAY.unsigned_abs();
        // Expiry is judged by the provider's clock below, like every other date.
        validation.validate_exp = false;

        let mut verified: Option<AssertionClaims> = None;
        for key in &keys {
            if let Ok(data) = jsonwebtoken::decode::<AssertionClaims>(assertion, key, &validation) {
                verified = Some(data.claims);
                break;
            }
        }
        let claims = verified.ok_or_else(failed)?;
        // `exp` is the caller's number, anywhere in `i64`: saturating arithmetic keeps the
        // comparisons true to their meaning at the ends of the range.
        if claims.iss != client.client_id
            || claims.exp.saturating_add(ASSERTION_LEEWAY) <= now
            || claims.exp > now.saturating_add(self.config.max_assertion_lifetime)
        {
            return Err(failed());
        }
        if claims.jti.is_empty() || claims.jti.len() > 256 {
            return Err(failed());
        }
        // Single use: remember the jti until the assertion expires.
        let remaining = claims.exp.saturating_sub(now).saturating_add(10);
        let ttl = Duration::from_secs(u64::try_from(remaining).unwrap_or(10).max(10));
        let first_use = self
            .store
            .put_if_absent(
                &crate::store_keys::CLIENT_ASSERTION_JTI.key(format!("{}:{}", client.client_id, claims.jti)),
                b"1",
                ttl,
            )
            .await?;
        if !first_use {
            return Err(OAuthError::new(ErrorCode::InvalidClient, "client assertion replayed").into());
        }
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let parse = |h: &str| {
            ClientCredentials::parse_basic(h).map(|r| r.map(|(id, secret)| (id, secret.expose_secret().to_owned())))
        };
        let header = format!("Basic {}", STANDARD.encode("my%3Aclient:s%2Bcret"));
        assert_eq!(parse(&header), Some(Ok(("my:client".to_owned(), "s+cret".to_owned()))));
        assert_eq!(parse("Bearer abc"), None);
        assert_eq!(parse("Basic !!!"), Some(Err(())));
    }
}
