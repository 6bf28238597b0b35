//! The sign-in of the provider's own relying parties (the wallet, the administrators' console):
//! they sign people in through `/authorize` like any relying party would, and redeem the code in
//! process.
//!
//! What makes that safe lives here once, for both: PKCE, a nonce, and a state kept server-side
//! (taken once) with the hash of a random value the browser holds in a short-lived cookie, so
//! that a callback URL carried to another browser (login CSRF: someone's own code and state, to
//! sign a victim in as them) signs nobody in (RFC 9700 4.7.1); the ID token checked for this
//! client and nonce. Each relying party keeps its own session, cookies and pages.
//!
//! Depends on the provider and the session store only; nothing of the pages.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use session_store::{KeyPrefix, SessionStore, StoreError};

use crate::Locale;
use crate::client_auth::ClientCredentials;
use crate::provider::Provider;
use crate::token::TokenParams;
use crate::util::{constant_time_eq, random_token, sha256_b64};

/// States longer than ours are not looked up (ours are 22 characters).
const MAX_STATE: usize = 64;

/// One of the provider's own relying parties.
#[derive(Debug, Clone, Copy)]
pub struct FirstParty {
    /// Its client id, registered by the server at start-up.
    pub client_id: &'static str,
    /// Its redirect URI's path under the issuer (`/wallet/callback`).
    pub callback_path: &'static str,
    /// Where its pending sign-ins are kept (declared with its crate's other families).
    pub pending: KeyPrefix,
    /// How long a sign-in may take.
    pub login_ttl: Duration,
}

/// What a sign-in asks of the login.
#[derive(Debug, Clone, Default)]
pub struct SignInRequest {
    pub locale: Locale,
    /// `max_age`: the authentication must be at most this old (seconds).
    pub max_age: i64,
    /// `acr_values`, if a level is required.
    pub acr_values: Option<&'static str>,
    /// `prompt=login`: a fresh login even within a live session.
    pub prompt_login: bool,
    /// Where the relying party goes once signed in (its own page, checked by it).
    pub then: Option<String>,
}

/// A sign-in started: send the browser to `/authorize` with `query`, setting the binding
/// cookie to `binding`.
#[derive(Debug)]
pub struct Started {
    pub query: String,
    pub binding: String,
}

/// A sign-in completed: the ID token's claims (checked), with what the request carried.
#[derive(Debug)]
pub struct SignedIn {
    pub claims: Map<String, Value>,
    pub locale: Locale,
    pub then: Option<String>,
}

impl SignedIn {
    /// A string claim, or empty.
    pub fn text(&self, name: &str) -> String {
        self.claims.get(name).and_then(Value::as_str).unwrap_or_default().to_owned()
    }

    pub fn auth_time(&self, default: i64) -> i64 {
        self.claims.get("auth_time").and_then(Value::as_i64).unwrap_or(default)
    }
}

/// Why a callback signs nobody in.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The session store failed: try again later (503).
    #[error("session store unavailable: {0}")]
    Unavailable(#[from] StoreError),
    /// No such sign-in (unknown, spent or expired state), another browser than the one that
    /// started it, cancelled at the login, or a code or ID token that does not check out:
    /// start again.
    #[error("{0}")]
    Abandoned(&'static str),
}

/// What is kept of a sign-in in progress.
#[derive(Serialize, Deserialize)]
struct Pending {
    verifier: String,
    nonce: String,
    locale: Locale,
    /// The hash of the binding cookie's value set in the browser that started this sign-in.
    browser_hash: String,
    #[serde(default)]
    then: Option<String>,
}

/// A callback's parameters, as received.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

impl FirstParty {
    /// The redirect URI under `issuer`.
    pub fn redirect_uri(&self, issuer: &str) -> String {
        format!("{issuer}{}", self.callback_path)
    }

    /// Keeps a new sign-in and says where to send the browser.
    pub async fn start(
        &self,
        provider: &Provider,
        store: &dyn SessionStore,
        request: SignInRequest,
    ) -> Result<Started, StoreError> {
        let verifier = random_token();
        let state = random_token();
        let nonce = random_token();
        let binding = random_token();
        let pending = Pending {
            verifier: verifier.clone(),
            nonce: nonce.clone(),
            locale: request.locale,
            browser_hash: sha256_b64(binding.as_bytes()),
            then: request.then,
        };
        let bytes = serde_json::to_vec(&pending).map_err(|_| StoreError::Invalid("pending sign-in"))?;
        store.put(&self.pending.key(&state), &bytes, self.login_ttl).await?;
        let redirect_uri = self.redirect_uri(&provider.config().issuer);
        let challenge = sha256_b64(verifier.as_bytes());
        let max_age = request.max_age.to_string();
        let mut params = vec![
            ("client_id", self.client_id),
            ("redirect_uri", redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("max_age", max_age.as_str()),
        ];
        if let Some(acr) = request.acr_values {
            params.push(("acr_values", acr));
        }
        params.push(("ui_locales", request.locale.as_str()));
        if request.prompt_login {
            params.push(("prompt", "login"));
        }
        let query = serde_urlencoded::to_string(params).map_err(|_| StoreError::Invalid("authorization request"))?;
        Ok(Started { query, binding })
    }

    /// Completes the sign-in a callback names: taken once, from the browser that started it,
    /// its code redeemed with the PKCE verifier, its ID token checked for this client and nonce.
    pub async fn finish(
        &self,
        provider: &Provider,
        store: &dyn SessionStore,
        callback: Callback,
        binding: Option<&str>,
        now: i64,
    ) -> Result<SignedIn, SignInError> {
        let Some(state) = callback.state.filter(|s| s.len() <= MAX_STATE) else {
            return Err(SignInError::Abandoned("no state"));
        };
        let pending = store
            .take(&self.pending.key(&state))
            .await?
            .and_then(|b| serde_json::from_slice::<Pending>(&b).ok())
            .ok_or(SignInError::Abandoned("no such sign-in"))?;
        let presented = sha256_b64(binding.unwrap_or_default().as_bytes());
        if !constant_time_eq(presented.as_bytes(), pending.browser_hash.as_bytes()) {
            tracing::warn!(
                client_id = self.client_id,
                "sign-in callback from another browser than the one that started it"
            );
            return Err(SignInError::Abandoned("another browser"));
        }
        let (Some(code), None) = (callback.code, callback.error) else {
            return Err(SignInError::Abandoned("cancelled"));
        };
        let params = TokenParams {
            grant_type: Some("authorization_code".into()),
            code: Some(code.into()),
            redirect_uri: Some(self.redirect_uri(&provider.config().issuer)),
            code_verifier: Some(pending.verifier.into()),
            client_id: Some(self.client_id.into()),
            ..TokenParams::default()
        };
        let credentials = ClientCredentials { client_id: Some(self.client_id.into()), ..ClientCredentials::default() };
        let tokens = match provider.token(params, &credentials, now).await {
            Ok(t) => t,
            Err(e) => {
                let e = e.into_oauth();
                tracing::warn!(client_id = self.client_id, error = %e, "first-party sign-in failed");
                return Err(SignInError::Abandoned("the code was refused"));
            }
        };
        let claims = crate::secret::exposed(&tokens.id_token)
            .and_then(|t| provider.verify_id_token(t, self.client_id, now))
            .ok_or(SignInError::Abandoned("no valid ID token"))?;
        let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or_default();
        if !constant_time_eq(nonce.as_bytes(), pending.nonce.as_bytes()) {
            return Err(SignInError::Abandoned("another nonce"));
        }
        Ok(SignedIn { claims, locale: pending.locale, then: pending.then })
    }
}
