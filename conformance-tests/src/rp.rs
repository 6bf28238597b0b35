//! The relying party: a provider with one professional and the clients a test needs, and
//! `openidconnect` clients built from the provider's discovery document.

use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::Context as _;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim, CoreIdToken, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IdToken, IdTokenClaims, IdTokenVerifier,
    IssuerUrl, Nonce, NonceVerifier, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardErrorResponse,
};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use server::testing::TestProvider;

use crate::browser::{Browser, Landing};

pub const USER: &str = "899700000001";
pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// Every claim `openidconnect` has no field for (`sid`, the Pro Santé Connect claims...), as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OtherClaims(pub serde_json::Map<String, serde_json::Value>);

impl AdditionalClaims for OtherClaims {}

/// An ID token read with [`OtherClaims`], so that its extra claims survive verification.
pub type FullIdToken =
    IdToken<OtherClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// A running provider with a professional `USER` (password + TOTP app).
pub struct World {
    pub provider: TestProvider,
    pub totp_secret: Vec<u8>,
    /// The relying party's back channel: redirects are never followed, as the openidconnect docs
    /// ask (an open redirect must not turn into SSRF).
    pub http: reqwest::Client,
    /// TOTP codes are accepted once: each login takes the next time step.
    next_step: AtomicI64,
}

/// An authorization request in flight: what the relying party keeps until the code comes back.
pub struct Pending {
    pub url: Url,
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

/// A completed code flow.
pub struct SignedIn {
    pub tokens: CoreTokenResponse,
    pub nonce: Nonce,
    /// Where the browser was sent back (code, state, iss).
    pub back: Url,
}

impl World {
    pub async fn start() -> anyhow::Result<World> {
        Self::start_with(|_| {}).await
    }

    /// A world whose provider has `tune` applied to its configuration (see
    /// [`TestProvider::start_with`]).
    pub async fn start_with(tune: impl FnOnce(&mut server::Config)) -> anyhow::Result<World> {
        let provider = TestProvider::start_with(server::testing::Storage::Embedded, tune).await?;
        let (_, totp_secret) = provider.add_professional(USER, PASSWORD).await?;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(World { provider, totp_secret, http, next_step: AtomicI64::new(0) })
    }

    pub fn issuer(&self) -> anyhow::Result<Url> {
        Ok(Url::parse(&self.provider.base_url)?)
    }

    pub fn url(&self, path: &str) -> anyhow::Result<Url> {
        Ok(Url::parse(&self.provider.url(path))?)
    }

    /// A fresh TOTP code (never one already used in this world).
    pub fn next_otp(&self) -> anyhow::Result<String> {
        let step = self.next_step.fetch_add(1, Ordering::SeqCst);
        // The clock moves with the codes, so that every code is current when used.
        if step > 0 {
            self.provider.clock.advance(30);
        }
        self.provider.totp(&self.totp_secret, 0)
    }

    pub async fn metadata(&self) -> anyhow::Result<CoreProviderMetadata> {
        let issuer = IssuerUrl::new(self.provider.base_url.clone())?;
        Ok(CoreProviderMetadata::discover_async(issuer, &self.http).await?)
    }

    /// The discovery document as plain JSON (for the members openidconnect does not model).
    pub async fn discovery_json(&self) -> anyhow::Result<serde_json::Value> {
        Ok(self.http.get(self.provider.url("/.well-known/openid-configuration")).send().await?.json().await?)
    }

    /// An `openidconnect` client for a registered client id (and secret, if it has one).
    pub async fn client(&self, client_id: &str, secret: Option<String>) -> anyhow::Result<RpClient> {
        let metadata = self.metadata().await?;
        let client = openidconnect::core::CoreClient::from_provider_metadata(
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

    /// Registers a confidential client and returns its `openidconnect` client.
    pub async fn confidential_rp(&self, client_id: &str) -> anyhow::Result<RpClient> {
        let secret = self.confidential(client_id).await?;
        self.client(client_id, Some(secret)).await
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

    /// Opens `url` and expects the login form (SSO must not answer).
    pub async fn expect_login_form(&self, browser: &Browser, url: &Url) -> anyhow::Result<()> {
        match browser.navigate(url, &self.issuer()?).await? {
            Landing::LoginForm { .. } => Ok(()),
            other => anyhow::bail!("expected the login form, got {other:?}"),
        }
    }

    /// Opens `url` and expects a redirect back to the client, without any page.
    pub async fn expect_redirect(&self, browser: &Browser, url: &Url) -> anyhow::Result<Url> {
        match browser.navigate(url, &self.issuer()?).await? {
            Landing::Redirect(to) => Ok(to),
            other => anyhow::bail!("expected a redirect to the client, got {other:?}"),
        }
    }

    /// Logs in through `client` with PKCE and a nonce, and exchanges the code.
    pub async fn sign_in(&self, client: &RpClient, browser: &Browser, scopes: &[&str]) -> anyhow::Result<SignedIn> {
        let pending = authorize(client, scopes);
        let back = self.log_in(browser, &pending.url).await?;
        self.finish(client, back, pending).await
    }

    /// Checks the authorization response against `pending` and exchanges its code.
    pub async fn finish(&self, client: &RpClient, back: Url, pending: Pending) -> anyhow::Result<SignedIn> {
        anyhow::ensure!(param(&back, "state").as_deref() == Some(pending.state.secret().as_str()), "state: {back}");
        let code = param(&back, "code").with_context(|| format!("no code in {back}"))?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await?;
        Ok(SignedIn { tokens, nonce: pending.nonce, back })
    }

    /// A raw token request (for what openidconnect would not send); `basic` is (id, secret).
    pub async fn token_raw(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, serde_json::Value)> {
        let mut req = self.http.post(self.provider.url("/token")).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let r = req.send().await?;
        let status = r.status();
        Ok((status, r.json().await?))
    }

    /// The status of a userinfo request with `access_token`.
    pub async fn userinfo_status(&self, access_token: &str) -> anyhow::Result<StatusCode> {
        Ok(self.http.get(self.provider.url("/userinfo")).bearer_auth(access_token).send().await?.status())
    }
}

/// An authorization request for `client` (code flow, S256 PKCE, random state and nonce).
pub fn authorize(client: &RpClient, scopes: &[&str]) -> Pending {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
        .set_pkce_challenge(challenge)
        .url();
    Pending { url, state, nonce, verifier }
}

/// Verifies `id_token` with `verifier` and `nonce`, keeping every claim.
pub fn full_claims(
    id_token: &CoreIdToken,
    verifier: &IdTokenVerifier<'_, CoreJsonWebKey>,
    nonce: impl NonceVerifier,
) -> anyhow::Result<IdTokenClaims<OtherClaims, CoreGenderClaim>> {
    let full: FullIdToken = id_token.to_string().parse()?;
    Ok(full.claims(verifier, nonce)?.clone())
}

/// The OAuth error code of a failed `openidconnect` token request, if the provider answered one.
pub fn oauth_error<T, RE: std::error::Error + 'static>(
    result: &Result<T, RequestTokenError<RE, StandardErrorResponse<CoreErrorResponseType>>>,
) -> Option<String> {
    match result {
        Err(RequestTokenError::ServerResponse(e)) => Some(e.error().as_ref().to_owned()),
        _ => None,
    }
}

/// What `CoreClient::from_provider_metadata(...).set_redirect_uri(...)` yields.
pub type RpClient = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    CoreTokenResponse,
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
