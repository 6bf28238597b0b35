//! The demo relying party: what an e-health application does to sign professionals in with
//! Caducée, in one small page. «Se connecter avec Caducée» runs the code flow with PKCE and a
//! nonce through the `openidconnect` crate (a client no one here wrote), then shows the ID
//! token's claims and the userinfo answer; «Se déconnecter» goes through the provider's
//! `end_session`; and the back-channel logout tokens the provider sends are checked (signature,
//! issuer, audience, event) and listed, each ending the demo's own session of that `sid`.
//!
//! Its state is in memory: a demo, one process, nothing to keep.

mod backchannel;
mod pages;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};
use openidconnect::core::{
    CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, RedirectUrl,
    StandardErrorResponse,
};
use serde::{Deserialize, Serialize};

/// Where the demo relying party listens unless told otherwise, beside the provider's 8080.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8081";
/// Its client id at the provider.
pub const CLIENT_ID: &str = "demo-rp";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the provider's discovery failed: {0}")]
    Discovery(String),
    #[error("the provider's keys could not be read: {0}")]
    Keys(String),
    #[error("invalid URL: {0}")]
    Url(#[from] url::ParseError),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Every claim `openidconnect` has no field for (`sid`, the Pro Santé Connect claims), kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OtherClaims(pub serde_json::Map<String, serde_json::Value>);

impl AdditionalClaims for OtherClaims {}

type RpClient = openidconnect::Client<
    OtherClaims,
    openidconnect::core::CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    openidconnect::StandardTokenResponse<
        openidconnect::IdTokenFields<
            OtherClaims,
            openidconnect::EmptyExtraTokenFields,
            CoreGenderClaim,
            CoreJweContentEncryptionAlgorithm,
            CoreJwsSigningAlgorithm,
        >,
        openidconnect::core::CoreTokenType,
    >,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Where the relying party is and who it is at the provider.
#[derive(Clone, Debug)]
pub struct RpSettings {
    /// The provider's issuer (`http://127.0.0.1:8080`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// This relying party's own origin (`http://127.0.0.1:8081`).
    pub base_url: String,
}

impl RpSettings {
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.base_url)
    }

    pub fn backchannel_logout_uri(&self) -> String {
        format!("{}/backchannel-logout", self.base_url)
    }

    pub fn post_logout_redirect_uri(&self) -> String {
        format!("{}/", self.base_url)
    }
}

/// A sign-in under way: what comes back with the code is checked against it.
struct Pending {
    nonce: openidconnect::Nonce,
    verifier: openidconnect::PkceCodeVerifier,
    /// The value of the cookie of the browser that started it.
    browser: String,
}

/// A signed-in browser.
#[derive(Clone)]
struct Session {
    id_token: String,
    claims: String,
    userinfo: String,
    sid: Option<String>,
    name: String,
}

/// A logout token received on the back channel.
#[derive(Clone)]
struct Received {
    at: String,
    sid: String,
    sub: String,
    ended: usize,
}

struct Inner {
    settings: RpSettings,
    client: RpClient,
    http: reqwest::Client,
    userinfo_endpoint: String,
    end_session_endpoint: Option<String>,
    jwks: jsonwebtoken::jwk::JwkSet,
    pending: Mutex<HashMap<String, Pending>>,
    sessions: Mutex<HashMap<String, Session>>,
    received: Mutex<Vec<Received>>,
}

/// The demo relying party, ready to serve.
#[derive(Clone)]
pub struct DemoRp {
    inner: Arc<Inner>,
}

impl DemoRp {
    /// Reads the provider's discovery document and keys, as any relying party starting does.
    pub async fn discover(settings: RpSettings) -> Result<DemoRp, DemoError> {
        // Redirects are never followed by the back channel (the openidconnect docs ask it).
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(|e| DemoError::Discovery(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| DemoError::Discovery(e.to_string()))?;
        // The members openidconnect's core metadata does not model.
        let raw: serde_json::Value =
            http.get(format!("{}/.well-known/openid-configuration", settings.issuer)).send().await?.json().await?;
        let text = |k: &str| raw.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let jwks_uri = text("jwks_uri").ok_or_else(|| DemoError::Discovery("no jwks_uri".into()))?;
        let jwks: jsonwebtoken::jwk::JwkSet =
            http.get(jwks_uri).send().await?.json().await.map_err(|e| DemoError::Keys(e.to_string()))?;
        let userinfo_endpoint =
            text("userinfo_endpoint").ok_or_else(|| DemoError::Discovery("no userinfo_endpoint".into()))?;
        let client = openidconnect::Client::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            Some(ClientSecret::new(settings.client_secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new(settings.redirect_uri())?);
        Ok(DemoRp {
            inner: Arc::new(Inner {
                end_session_endpoint: text("end_session_endpoint"),
                settings,
                client,
                http,
                userinfo_endpoint,
                jwks,
                pending: Mutex::default(),
                sessions: Mutex::default(),
                received: Mutex::default(),
            }),
        })
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(pages::home))
            .route("/login", post(pages::login))
            .route("/callback", get(pages::callback))
            .route("/logout", post(pages::logout))
            .route("/backchannel-logout", post(backchannel::receive))
            .with_state(self)
    }

    /// How many logout tokens it accepted (for tests).
    pub fn logouts_received(&self) -> usize {
        self.inner.received.lock().map(|r| r.len()).unwrap_or(0)
    }
}

/// Registers the demo relying party at the provider, with the same checks as
/// `caducee client add`: a confidential client (`client_secret_basic`) whose back-channel
/// logout URI is its own. Returns its secret.
pub async fn register(directory: &directory::Directory, base_url: &str) -> anyhow::Result<String> {
    let mut add = server::testing::TestProvider::confidential_client(CLIENT_ID, &format!("{base_url}/callback"));
    add.name = "Application de démonstration".into();
    add.post_logout_redirect_uris = vec![format!("{base_url}/")];
    add.backchannel_logout_uri = Some(format!("{base_url}/backchannel-logout"));
    add.backchannel_logout_session_required = true;
    let (_, secret) = server::cli::add_client(directory, add).await?;
    secret.ok_or_else(|| anyhow::anyhow!("a confidential client has a secret"))
}
