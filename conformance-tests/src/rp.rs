//! The relying party: a provider with one professional and the clients a test needs, and
//! `openidconnect` clients built from the provider's discovery document.

use anyhow::Context as _;
use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, RedirectUrl};
use reqwest::Url;
use server::testing::TestProvider;

use crate::browser::{Browser, Landing};

pub const USER: &str = "899700000001";
pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// A running provider with a professional `USER` (password + TOTP app).
pub struct World {
    pub provider: TestProvider,
    pub totp_secret: Vec<u8>,
    pub http: reqwest::Client,
    /// TOTP codes are accepted once: each login takes the next time step.
    next_step: std::sync::atomic::AtomicI64,
}

impl World {
    pub async fn start() -> anyhow::Result<World> {
        let provider = TestProvider::start().await?;
        let (_, totp_secret) = provider.add_professional(USER, PASSWORD).await?;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(World { provider, totp_secret, http, next_step: std::sync::atomic::AtomicI64::new(0) })
    }

    pub fn issuer(&self) -> anyhow::Result<Url> {
        Ok(Url::parse(&self.provider.base_url)?)
    }

    /// A fresh TOTP code (never one already used in this world).
    pub fn next_otp(&self) -> anyhow::Result<String> {
        let step = self.next_step.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Move the provider's clock with the codes, so that every code is current when used.
        if step > 0 {
            self.provider.clock.advance(30);
        }
        self.provider.totp(&self.totp_secret, 0)
    }

    pub async fn metadata(&self) -> anyhow::Result<CoreProviderMetadata> {
        let issuer = IssuerUrl::new(self.provider.base_url.clone())?;
        Ok(CoreProviderMetadata::discover_async(issuer, &self.http).await?)
    }

    /// An `openidconnect` client for a registered client id (and secret, if it has one).
    pub async fn client(&self, client_id: &str, secret: Option<String>) -> anyhow::Result<RpClient> {
        let metadata = self.metadata().await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id.to_owned()),
            secret.map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned())?);
        Ok(client)
    }

    /// Registers a confidential client `client_secret_basic`; returns its secret.
    pub async fn confidential(&self, client_id: &str) -> anyhow::Result<String> {
        let (_, secret) = self.provider.add_client(TestProvider::confidential_client(client_id, REDIRECT)).await?;
        secret.context("a confidential client has a secret")
    }

    /// Runs the person's part of a login started at `auth_url`; returns the redirect to the client.
    pub async fn log_in(&self, browser: &Browser, auth_url: &Url) -> anyhow::Result<Url> {
        match browser.navigate(auth_url, &self.issuer()?).await? {
            Landing::LoginForm { url, html } => {
                match browser.submit_login(&url, &html, USER, PASSWORD, &self.next_otp()?).await? {
                    Landing::Redirect(to) => Ok(to),
                    other => anyhow::bail!("login refused: {other:?}"),
                }
            }
            Landing::Redirect(to) => Ok(to),
            Landing::Page { status, html } => anyhow::bail!("unexpected page {status}: {html}"),
        }
    }
}

/// What `CoreClient::from_provider_metadata(...).set_redirect_uri(...)` yields.
pub type RpClient = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// A query parameter of a URL.
pub fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}
