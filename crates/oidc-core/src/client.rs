//! Relying parties: their registered metadata, the registry the protocol reads them from, and
//! the hashing of client secrets.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::keys::SigningAlg;
use crate::util::{constant_time_eq, random_token, sha256_b64};

/// How a client authenticates at the token, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    /// OIDC Core 9: an assertion MACed (HS256/384/512) with the client's secret.
    ClientSecretJwt,
    PrivateKeyJwt,
    /// RFC 8705 §2.1: a certificate from a CA the operator trusts, with the registered name.
    TlsClientAuth,
    /// RFC 8705 §2.2: one of the client's own registered certificates.
    SelfSignedTlsClientAuth,
    /// A public client (no secret): PKCE is mandatory.
    None,
}

impl TokenEndpointAuthMethod {
    /// Every method, the ones that authenticate a client first.
    pub const ALL: &'static [TokenEndpointAuthMethod] = &[
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::ClientSecretJwt,
        Self::PrivateKeyJwt,
        Self::TlsClientAuth,
        Self::SelfSignedTlsClientAuth,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            Self::None => "none",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "client_secret_jwt" => Some(Self::ClientSecretJwt),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            "tls_client_auth" => Some(Self::TlsClientAuth),
            "self_signed_tls_client_auth" => Some(Self::SelfSignedTlsClientAuth),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }

    /// The provider gives the client a secret at registration (sent as is, or MACing its
    /// assertions).
    pub fn has_secret(self) -> bool {
        self.uses_secret() || self == Self::ClientSecretJwt
    }

    /// The provider must be able to read the secret back (not only its hash).
    pub fn keeps_secret_readable(self) -> bool {
        self == Self::ClientSecretJwt
    }

    /// Mutual TLS (RFC 8705).
    pub fn uses_certificate(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
}

/// The grants this provider implements (RFC 6749 4.1, 4.4, 6; OpenID CIBA Core 1.0), by their
/// registered names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    /// Client-Initiated Backchannel Authentication: the professional approves on their phone.
    Ciba,
}

impl GrantType {
    pub const ALL: &'static [GrantType] =
        &[GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials, GrantType::Ciba];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Ciba => "urn:openid:params:grant-type:ciba",
        }
    }

    pub fn parse(name: &str) -> Option<GrantType> {
        GrantType::ALL.iter().copied().find(|g| g.as_str() == name)
    }
}

/// How a CIBA client learns that the professional answered (CIBA Core 1.0 §5): it polls the
/// token endpoint, or it is pinged at its notification endpoint and then asks. (Push mode,
/// where tokens are posted to the client, is not offered.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CibaDeliveryMode {
    Poll,
    Ping,
}

impl CibaDeliveryMode {
    pub const ALL: &'static [CibaDeliveryMode] = &[CibaDeliveryMode::Poll, CibaDeliveryMode::Ping];

    pub fn as_str(self) -> &'static str {
        match self {
            CibaDeliveryMode::Poll => "poll",
            CibaDeliveryMode::Ping => "ping",
        }
    }
}

/// What happens to a refresh token once used, per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefreshRotation {
    /// Used once: each refresh gives a new one, and a second use of an old one is a theft
    /// (the grant is revoked and the session ends).
    #[default]
    Strict,
    /// As `strict`, but a second use within [`REFRESH_REUSE_GRACE`] seconds of the first (a
    /// client that refreshed twice at once) gets tokens too instead of ending everything.
    Grace,
    /// The refresh token stays until it expires and is given back with every refresh
    /// (Keycloak's default); no reuse can then be detected.
    None,
}

/// Seconds after its first use during which a `grace` client's refresh token still works.
pub const REFRESH_REUSE_GRACE: i64 = 30;

impl RefreshRotation {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "strict" => Some(Self::Strict),
            "grace" => Some(Self::Grace),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

fn default_grant_types() -> Vec<String> {
    vec!["authorization_code".into(), "refresh_token".into()]
}

/// What a relying party registered (the subset of RFC 7591 / OIDC Registration we honour).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientMetadata {
    #[serde(default)]
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// Public keys for `private_key_jwt`, as a JWK Set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlg,
    /// When set, userinfo answers a JWT signed with this algorithm instead of JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<SigningAlg>,
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<String>,
    /// Scopes this client may obtain; empty means every supported scope.
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    /// A resource server may introspect tokens issued to other clients.
    #[serde(default)]
    pub resource_server: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// Front-Channel Logout 1.0: a page of the relying party that logs it out when the provider's
    /// logout page loads it in an iframe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    /// The relying party wants `iss` and `sid` on its front-channel logout URI.
    #[serde(default)]
    pub frontchannel_logout_session_required: bool,
    /// CIBA: how the client learns of the professional's answer (required with the CIBA grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_token_delivery_mode: Option<CibaDeliveryMode>,
    /// CIBA ping mode: where the provider says that an answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_client_notification_endpoint: Option<String>,
    /// `tls_client_auth` (RFC 8705 §2.1.2): the one name the client's certificate carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_email: Option<String>,
    /// RFC 8705 §3: access tokens bound to the certificate the client presented.
    #[serde(default)]
    pub tls_client_certificate_bound_access_tokens: bool,
    /// What happens to a refresh token once used.
    #[serde(default)]
    pub refresh_token_rotation: RefreshRotation,
}

/// What a registration that names nothing gets: the same values as the serde defaults above
/// (a confidential client with a secret in Basic, RS256 ID tokens, the code and refresh
/// grants), and no redirect URI.
impl Default for ClientMetadata {
    fn default() -> Self {
        ClientMetadata {
            client_name: String::new(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            token_endpoint_auth_method: TokenEndpointAuthMethod::default(),
            jwks: None,
            id_token_signed_response_alg: SigningAlg::default(),
            userinfo_signed_response_alg: None,
            grant_types: default_grant_types(),
            allowed_scopes: Vec::new(),
            resource_server: false,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            frontchannel_logout_uri: None,
            frontchannel_logout_session_required: false,
            backchannel_token_delivery_mode: None,
            backchannel_client_notification_endpoint: None,
            tls_client_auth_subject_dn: None,
            tls_client_auth_san_dns: None,
            tls_client_auth_san_uri: None,
            tls_client_auth_san_ip: None,
            tls_client_auth_san_email: None,
            tls_client_certificate_bound_access_tokens: false,
            refresh_token_rotation: RefreshRotation::default(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetadataError {
    #[error("at least one redirect URI is required")]
    NoRedirectUri,
    #[error("invalid {field} `{uri}`: it must be an absolute https URL (http only for localhost) without fragment")]
    BadUri { field: &'static str, uri: String },
    #[error("private_key_jwt needs a `jwks` with at least one key")]
    MissingJwks,
    #[error("invalid `jwks`: {0}")]
    BadJwks(String),
    #[error("unsupported grant type `{0}`")]
    BadGrantType(String),
    #[error("the front-channel logout URI `{0}` must have the scheme, host and port of a redirect URI")]
    FrontChannelOrigin(String),
    #[error("a public client (token_endpoint_auth_method none) cannot use the client_credentials grant")]
    PublicClientCredentials,
    #[error("the refresh_token grant needs the authorization_code or the CIBA grant")]
    RefreshWithoutCode,
    #[error("the CIBA grant needs a confidential client with a backchannel_token_delivery_mode (poll or ping)")]
    CibaWithoutMode,
    #[error("the CIBA ping mode needs a backchannel_client_notification_endpoint")]
    PingWithoutEndpoint,
    #[error("tls_client_auth needs exactly one of tls_client_auth_subject_dn, _san_dns, _san_uri, _san_ip, _san_email")]
    TlsClientAuthName,
    #[error("self_signed_tls_client_auth needs a `jwks` whose keys carry their certificate (x5c or x5t#S256)")]
    SelfSignedWithoutCertificate,
    #[error("at least one grant type is required")]
    NoGrantType,
}

fn check_uri(field: &'static str, uri: &str) -> Result<(), MetadataError> {
    let bad = || MetadataError::BadUri { field, uri: uri.to_owned() };
    let url = Url::parse(uri).map_err(|_| bad())?;
    if url.fragment().is_some() {
        return Err(bad());
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(bad()),
    }
}

impl ClientMetadata {
    /// Checks the registration before it is stored: redirect URIs, keys, grant types.
    pub fn validate(&self) -> Result<(), MetadataError> {
        if self.redirect_uris.is_empty() && self.allows_grant(GrantType::AuthorizationCode) {
            return Err(MetadataError::NoRedirectUri);
        }
        for uri in &self.redirect_uris {
            check_uri("redirect URI", uri)?;
        }
        for uri in &self.post_logout_redirect_uris {
            check_uri("post-logout redirect URI", uri)?;
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            check_uri("back-channel logout URI", uri)?;
        }
        if let Some(uri) = &self.frontchannel_logout_uri {
            check_uri("front-channel logout URI", uri)?;
            // Front-Channel Logout 1.0 §2: the page lives where the relying party's redirect URIs do.
            let origin = |u: &str| Url::parse(u).ok().map(|u| u.origin());
            if !self.redirect_uris.iter().any(|r| origin(r) == origin(uri)) {
                return Err(MetadataError::FrontChannelOrigin(uri.clone()));
            }
        }
        if let Some(jwks) = &self.jwks {
            // Refused at registration rather than silently unusable at the token endpoint.
            let set: jsonwebtoken::jwk::JwkSet =
                serde_json::from_value(jwks.clone()).map_err(|e| MetadataError::BadJwks(e.to_string()))?;
            if set.keys.is_empty() {
                return Err(MetadataError::BadJwks("the set has no key".into()));
            }
            for key in &set.keys {
                jsonwebtoken::DecodingKey::from_jwk(key)
                    .map_err(|e| MetadataError::BadJwks(format!("a key cannot verify signatures: {e}")))?;
                if let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &key.algorithm {
                    use base64::Engine as _;
                    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(rsa.n.trim_end_matches('='))
                        .map_err(|_| MetadataError::BadJwks("an RSA modulus is not base64url".into()))?;
                    let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                    if bits < 2048 {
                        return Err(MetadataError::BadJwks("RSA keys must have at least 2048 bits".into()));
                    }
                }
            }
        }
        if self.token_endpoint_auth_method == TokenEndpointAuthMethod::PrivateKeyJwt && self.jwks.is_none() {
            return Err(MetadataError::MissingJwks);
        }
        if self.token_endpoint_auth_method == TokenEndpointAuthMethod::TlsClientAuth
            && self.tls_client_auth_name().is_none()
        {
            return Err(MetadataError::TlsClientAuthName);
        }
        if self.token_endpoint_auth_method == TokenEndpointAuthMethod::SelfSignedTlsClientAuth {
            let with_certificate = self
                .jwks
                .as_ref()
                .and_then(|j| j["keys"].as_array())
                .is_some_and(|keys| keys.iter().any(|k| k.get("x5c").is_some() || k.get("x5t#S256").is_some()));
            if !with_certificate {
                return Err(MetadataError::SelfSignedWithoutCertificate);
            }
        }
        if let Some(g) = self.grant_types.iter().find(|g| GrantType::parse(g).is_none()) {
            return Err(MetadataError::BadGrantType(g.clone()));
        }
        if self.grant_types.is_empty() {
            return Err(MetadataError::NoGrantType);
        }
        if self.is_public() && self.allows_grant(GrantType::ClientCredentials) {
            return Err(MetadataError::PublicClientCredentials);
        }
        if self.allows_grant(GrantType::RefreshToken)
            && !self.allows_grant(GrantType::AuthorizationCode)
            && !self.allows_grant(GrantType::Ciba)
        {
            return Err(MetadataError::RefreshWithoutCode);
        }
        if self.allows_grant(GrantType::Ciba) && (self.is_public() || self.backchannel_token_delivery_mode.is_none()) {
            return Err(MetadataError::CibaWithoutMode);
        }
        if let Some(uri) = &self.backchannel_client_notification_endpoint {
            check_uri("CIBA notification endpoint", uri)?;
        }
        if self.backchannel_token_delivery_mode == Some(CibaDeliveryMode::Ping)
            && self.backchannel_client_notification_endpoint.is_none()
        {
            return Err(MetadataError::PingWithoutEndpoint);
        }
        Ok(())
    }

    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == TokenEndpointAuthMethod::None
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.iter().any(|g| g == grant.as_str())
    }

    pub fn allows_scope(&self, scope: &str) -> bool {
        self.allowed_scopes.is_empty() || self.allowed_scopes.iter().any(|s| s == scope)
    }
}

/// A registered relying party.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    /// Hash of the client secret (see [`hash_client_secret`]), for secret-based methods.
    pub secret_hash: Option<String>,
    pub metadata: ClientMetadata,
    /// The secret itself, for a `client_secret_jwt` client (its assertions are MACed with it);
    /// redacted from `Debug`.
    pub secret: Option<crate::secret::SecretString>,
}

impl Client {
    /// The name to show people: the registered name, else the client id.
    pub fn display_name(&self) -> &str {
        if self.metadata.client_name.is_empty() { &self.client_id } else { &self.metadata.client_name }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("client registry unavailable: {0}")]
    Unavailable(String),
}

/// Where the protocol reads clients from (the directory, through the server's wiring).
#[async_trait]
pub trait ClientRegistry: Send + Sync {
    /// Shared, as accounts are: a registry may keep clients in a cache read on every request.
    async fn get(&self, client_id: &str) -> Result<Option<std::sync::Arc<Client>>, RegistryError>;
}

const SECRET_HASH_PREFIX: &str = "sha256$";

/// A new client secret (256 random bits) and the hash to store.
///
/// Secrets are generated here, never chosen by people, so a plain SHA-256 is enough to make a
/// stolen database useless, and keeps the token endpoint fast (no password-hashing cost).
pub fn new_client_secret() -> (String, String) {
    let secret = random_token();
    let hash = hash_client_secret(&secret);
    (secret, hash)
}

pub fn hash_client_secret(secret: &str) -> String {
    format!("{SECRET_HASH_PREFIX}{}", sha256_b64(secret.as_bytes()))
}

/// Checks a presented secret against the stored hash in constant time.
pub fn verify_client_secret(presented: &str, stored_hash: &str) -> bool {
    let computed = hash_client_secret(presented);
    constant_time_eq(computed.as_bytes(), stored_hash.as_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn meta(uris: &[&str]) -> ClientMetadata {
        serde_json::from_value(serde_json::json!({ "redirect_uris": uris })).unwrap()
    }

    #[test]
    fn defaults_are_confidential_rs256_with_code_and_refresh() {
        let m = meta(&["https://rp.example/cb"]);
        assert_eq!(
            m,
            ClientMetadata { redirect_uris: vec!["https://rp.example/cb".into()], ..ClientMetadata::default() }
        );
        assert_eq!(m.token_endpoint_auth_method, TokenEndpointAuthMethod::ClientSecretBasic);
        assert_eq!(m.id_token_signed_response_alg, SigningAlg::RS256);
        assert!(m.allows_grant(GrantType::RefreshToken));
        assert!(m.validate().is_ok());
    }

    #[test]
    fn redirect_uris_must_be_https_or_loopback_without_fragment() {
        assert!(meta(&["http://127.0.0.1:9000/cb"]).validate().is_ok());
        assert!(meta(&["http://rp.example/cb"]).validate().is_err());
        assert!(meta(&["https://rp.example/cb#frag"]).validate().is_err());
        assert!(meta(&["not a url"]).validate().is_err());
        assert_eq!(meta(&[]).validate(), Err(MetadataError::NoRedirectUri));
    }

    #[test]
    fn a_jwks_must_be_a_jwk_set_with_a_key() {
        let mut m = meta(&["https://rp.example/cb"]);
        for bad in [
            serde_json::json!([null, null]),
            serde_json::json!({ "keys": [] }),
            serde_json::json!("x"),
            serde_json::json!({ "keys": [{ "kty": "EC" }] }),
            serde_json::json!({ "keys": [{ "kty": "RSA", "n": "", "e": "AQAB" }] }),
        ] {
            m.jwks = Some(bad);
            assert!(matches!(m.validate(), Err(MetadataError::BadJwks(_))));
        }
        m.jwks = Some(
            serde_json::json!({ "keys": [{ "kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] }),
        );
        assert!(m.validate().is_ok());
        m.jwks = None;
        m.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
        assert_eq!(m.validate(), Err(MetadataError::MissingJwks));
    }

    #[test]
    fn grant_types_must_make_sense_for_the_client() {
        let mut m = meta(&["https://rp.example/cb"]);
        m.grant_types = vec![];
        assert_eq!(m.validate(), Err(MetadataError::NoGrantType));
        m.grant_types = vec!["refresh_token".into()];
        assert_eq!(m.validate(), Err(MetadataError::RefreshWithoutCode));
        m.grant_types = vec!["client_credentials".into()];
        m.token_endpoint_auth_method = TokenEndpointAuthMethod::None;
        assert_eq!(m.validate(), Err(MetadataError::PublicClientCredentials));
        m.token_endpoint_auth_method = TokenEndpointAuthMethod::ClientSecretBasic;
        assert!(m.validate().is_ok());
        // Each URI is named in the error.
        m.backchannel_logout_uri = Some("http://rp.example/logout".into());
        assert!(m.validate().unwrap_err().to_string().starts_with("invalid back-channel logout URI"));
    }

    #[test]
    fn the_front_channel_page_shares_a_redirect_uris_origin() {
        let mut m = meta(&["https://rp.example/cb"]);
        m.frontchannel_logout_uri = Some("https://rp.example/logout?x=1".into());
        assert!(m.validate().is_ok());
        for bad in ["https://rp.example:8443/logout", "https://other.example/logout", "http://rp.example/logout"] {
            m.frontchannel_logout_uri = Some(bad.into());
            assert!(m.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_verify_only_when_equal() {
        let (secret, hash) = new_client_secret();
        assert!(verify_client_secret(&secret, &hash));
        assert!(!verify_client_secret("wrong", &hash));
        assert!(!hash.contains(&secret));
    }
}
