//! From an authorization request to a code: the SSO decision, the login interaction that the
//! login pages complete, and the issuing of single-use authorization codes.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::authorize::{self, AuthorizationRequest, AuthorizeParams, Locale, PageError, Rejection, required_acr_rank};
use crate::error::{ErrorCode, OAuthError, ProviderError};
use crate::provider::{AuditEntry, ProtocolEvent, Provider};
use crate::session::{LoginResult, RequestOrigin, SsoSession};
use crate::store_keys;
use crate::util::{constant_time_eq, random_token, sha256_b64};
use session_store::Verdict;

/// Where the login pages live; the interaction id follows.
pub const INTERACTION_PATH: &str = "/interaction";

/// Cookies of the browser making the request.
#[derive(Clone, Default)]
pub struct BrowserCookies {
    /// The SSO session cookie (`sid.secret`).
    pub session: Option<String>,
    /// A random value that binds login interactions to the browser that started them.
    pub browser: Option<String>,
}

/// What `/authorize` answers.
pub enum AuthorizeOutcome {
    /// Back to the client (with a code or an error).
    Redirect(String),
    /// To the login pages; set `browser_cookie` first when it is a new one.
    Login { location: String, browser_cookie: Option<String> },
    /// An error shown to the person (nothing may be redirected).
    Page(PageError, Locale),
    /// Too many logins started from this address or browser: 429, come back in `retry_after`
    /// seconds. Nothing was stored.
    TooManyRequests { retry_after: u64, locale: Locale },
}

/// A login in progress, kept in the store until it succeeds, is cancelled, or expires.
#[derive(Clone, Serialize, Deserialize)]
pub struct Interaction {
    pub id: String,
    pub request: AuthorizationRequest,
    pub created_at: i64,
    pub expires_at: i64,
    /// Anti-forgery token every form of this interaction must carry.
    pub csrf_token: String,
    browser_hash: String,
    /// The minimal `acr` the client asked for, if any.
    pub required_acr: Option<String>,
    /// The subject the current SSO session (if any) belongs to, e.g. for a re-authentication.
    pub session_subject: Option<String>,
}

impl Interaction {
    /// The person this login must be by, if the request is bound to one: the subject of the
    /// `id_token_hint`, or else that of the session being re-authenticated (`prompt=login`,
    /// `max_age`, a higher `acr`). A hint rules over the session: a relying party naming
    /// someone else than the browser's session asks for that person.
    pub fn bound_subject(&self) -> Option<&str> {
        self.request.hinted_subject.as_deref().or(self.session_subject.as_deref())
    }

    /// Checks the anti-forgery token of a posted form in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        constant_time_eq(presented.as_bytes(), self.csrf_token.as_bytes())
    }
}

/// The result of a successful login: go back to the client; set the session cookie if new.
pub struct FinishOutcome {
    pub location: String,
    pub session_cookie: Option<String>,
}

/// A redirect for `Debug`: where it goes, not the code or state its query carries.
fn location_for_debug(location: &str) -> &str {
    location.split(['?', '#']).next().unwrap_or("")
}

const REDACTED: &str = "<redacted>";

impl fmt::Debug for BrowserCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The session cookie is the session's bearer secret; the browser cookie binds logins.
        f.debug_struct("BrowserCookies")
            .field("session", &self.session.as_ref().map(|_| REDACTED))
            .field("browser", &self.browser.as_ref().map(|_| REDACTED))
            .finish()
    }
}

impl fmt::Debug for AuthorizeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthorizeOutcome::Redirect(location) => {
                f.debug_tuple("Redirect").field(&location_for_debug(location)).finish()
            }
            AuthorizeOutcome::Login { location, browser_cookie } => f
                .debug_struct("Login")
                .field("location", location)
                .field("browser_cookie", &browser_cookie.as_ref().map(|_| REDACTED))
                .finish(),
            AuthorizeOutcome::Page(error, locale) => f.debug_tuple("Page").field(error).field(locale).finish(),
            AuthorizeOutcome::TooManyRequests { retry_after, locale } => {
                f.debug_struct("TooManyRequests").field("retry_after", retry_after).field("locale", locale).finish()
            }
        }
    }
}

impl fmt::Debug for Interaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interaction")
            .field("id", &self.id)
            .field("request", &self.request)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("csrf_token", &REDACTED)
            .field("required_acr", &self.required_acr)
            .field("session_subject", &self.session_subject)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for FinishOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FinishOutcome")
            .field("location", &location_for_debug(&self.location))
            .field("session_cookie", &self.session_cookie.as_ref().map(|_| REDACTED))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InteractionError {
    #[error("the login step has expired or was already used")]
    Expired,
    #[error("the login step belongs to another browser")]
    WrongBrowser,
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl From<crate::session::SessionError> for InteractionError {
    fn from(e: crate::session::SessionError) -> Self {
        InteractionError::Provider(e.into())
    }
}

impl From<session_store::StoreError> for InteractionError {
    fn from(e: session_store::StoreError) -> Self {
        InteractionError::Provider(e.into())
    }
}

/// A stored authorization code (kept under the hash of the code).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodeRecord {
    pub client_id: String,
    pub redirect_uri: String,
    pub subject: String,
    pub sid: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub expires_at: i64,
    #[serde(default)]
    pub claims: crate::claims_request::ClaimsRequest,
}

pub(crate) fn code_key(code: &str) -> String {
    store_keys::CODE.key(sha256_b64(code.as_bytes()))
}

/// The grant a code starts, derived from the code itself so that a replayed code names the
/// grant to revoke even after the code record was consumed.
pub(crate) fn grant_id_for_code(code: &str) -> String {
    sha256_b64(format!("grant:{code}").as_bytes())
}

fn interaction_key(id: &str) -> String {
    store_keys::INTERACTION.key(id)
}

fn secs(n: i64) -> Duration {
    Duration::from_secs(u64::try_from(n).unwrap_or(0).max(1))
}

impl Provider {
    /// Handles `/authorize`: validates the request, then either answers at once from the SSO
    /// session or sends the person to log in.
    pub async fn authorize(
        &self,
        params: AuthorizeParams,
        cookies: &BrowserCookies,
        origin: &RequestOrigin,
        now: i64,
    ) -> AuthorizeOutcome {
        let locale = Locale::from_ui_locales(params.ui_locales.as_deref());
        match self.authorize_inner(params, cookies, origin, now).await {
            Ok(outcome) => outcome,
            Err(AuthorizeFailure::Rejected(Rejection::Page(p))) => AuthorizeOutcome::Page(p, locale),
            Err(AuthorizeFailure::Rejected(Rejection::Redirect { redirect_uri, state, error })) => {
                AuthorizeOutcome::Redirect(authorize::error_redirect(
                    &redirect_uri,
                    state.as_deref(),
                    &error,
                    &self.config.issuer,
                ))
            }
            Err(AuthorizeFailure::Provider(e)) => {
                tracing::error!(error = %e, "authorization request failed");
                let page = if e.is_unavailable() { PageError::Unavailable } else { PageError::Internal };
                AuthorizeOutcome::Page(page, locale)
            }
        }
    }

    async fn authorize_inner(
        &self,
        params: AuthorizeParams,
        cookies: &BrowserCookies,
        origin: &RequestOrigin,
        now: i64,
    ) -> Result<AuthorizeOutcome, AuthorizeFailure> {
        let client = match params.client_id.as_deref() {
            Some(id) => self.client(id).await?,
            None => None,
        };
        let redirect_uri = authorize::check_client_and_redirect(&params, client.as_deref())?;
        let Some(client) = client else {
            return Err(Rejection::Page(PageError::UnknownClient).into());
        };
        let id_token_hint = params.id_token_hint.clone();
        let mut request = authorize::validate(params, &client, redirect_uri, &self.config.acr_levels)?;
        let redirect_error = |request: &AuthorizationRequest, error: OAuthError| Rejection::Redirect {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            error,
        };
        if let Some(hint) = id_token_hint {
            match self.verify_id_token_hint(&hint, now) {
                Some(claims) => request.hinted_subject = Some(claims.sub),
                None => {
                    return Err(redirect_error(&request, OAuthError::invalid_request("invalid id_token_hint")).into());
                }
            }
        }

        let session = match cookies.session.as_deref() {
            Some(c) => self.sessions.from_cookie(c, now).await?,
            None => None,
        };
        // A level no configured method can reach is capped at the strongest one that can: asking
        // again could only produce the same result (acr_values is a voluntary request).
        let reachable = self.config.reachable_acr.as_deref().and_then(|a| self.config.acr_rank(a));
        let required_rank = match (required_acr_rank(&request, &self.config.acr_levels), reachable) {
            (Some(r), Some(max)) => Some(r.min(max)),
            (r, _) => r,
        };
        let needs_login = match &session {
            None => true,
            Some(s) => {
                request.prompt_login
                    || request.max_age.is_some_and(|max| max == 0 || now.saturating_sub(s.auth_time) > max)
                    || required_rank.is_some_and(|r| self.config.acr_rank(&s.acr).is_none_or(|have| have < r))
                    || request.hinted_subject.as_ref().is_some_and(|h| *h != s.subject)
            }
        };
        if needs_login && request.prompt_none {
            return Err(redirect_error(
                &request,
                OAuthError::new(ErrorCode::LoginRequired, "the end-user must log in"),
            )
            .into());
        }
        if let (false, Some(session)) = (needs_login, &session) {
            // Account blocked since the session started: no more silent sign-ins.
            if !self.account_is_active(&session.subject).await? {
                return Err(redirect_error(
                    &request,
                    OAuthError::new(ErrorCode::LoginRequired, "the end-user must log in"),
                )
                .into());
            }
            let location = self.issue_code(&request, session, now).await?;
            self.audit(
                AuditEntry::new(ProtocolEvent::SsoSignin, "success")
                    .subject(&session.subject)
                    .client(&request.client_id)
                    .ip(origin.source_ip.clone()),
            )
            .await;
            return Ok(AuthorizeOutcome::Redirect(location));
        }

        let (browser, new_browser_cookie) = match cookies.browser.as_deref() {
            Some(b) if (16..=128).contains(&b.len()) => (b.to_owned(), None),
            _ => {
                let b = random_token();
                (b.clone(), Some(b))
            }
        };
        if let Some(retry_after) = self.interaction_refused(origin, &browser).await? {
            return Ok(AuthorizeOutcome::TooManyRequests { retry_after, locale: request.locale });
        }
        let interaction = Interaction {
            id: random_token(),
            required_acr: required_rank.and_then(|r| self.config.acr_levels.get(r).cloned()),
            session_subject: session.as_ref().map(|s| s.subject.clone()),
            request,
            created_at: now,
            expires_at: now + self.config.interaction_ttl,
            csrf_token: random_token(),
            browser_hash: sha256_b64(browser.as_bytes()),
        };
        let bytes = serde_json::to_vec(&interaction).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
        self.store
            .put(&interaction_key(&interaction.id), &bytes, secs(self.config.interaction_ttl))
            .await
            .map_err(ProviderError::from)?;
        Ok(AuthorizeOutcome::Login {
            location: format!("{}/{}", self.config.path(INTERACTION_PATH), interaction.id),
            browser_cookie: new_browser_cookie,
        })
    }

    /// Whether this browser or this address has started too many logins lately: each stores an
    /// interaction for its whole life, so a stranger must not be able to make the provider hold
    /// them without bound. Returns the seconds to wait. Checked by browser first, so that one
    /// busy browser does not spend the budget of a shared address (a hospital behind one
    /// gateway); a client that drops its cookie gets a new one each time, and meets the
    /// address limit.
    async fn interaction_refused(&self, origin: &RequestOrigin, browser: &str) -> Result<Option<u64>, ProviderError> {
        let mut limit = "browser";
        let mut verdict = self.interactions_per_browser.hit(&sha256_b64(browser.as_bytes())).await?;
        if verdict.is_allowed() {
            limit = "address";
            let address = session_store::source_subject(origin.source_ip.as_deref().and_then(|ip| ip.parse().ok()));
            verdict = self.interactions_per_address.hit(&address).await?;
        }
        if let Verdict::Limited { first: true, .. } = verdict {
            // Once per window: a record for every refused request would let them grow the log.
            self.audit(
                AuditEntry::new(ProtocolEvent::InteractionLimit, "refused")
                    .ip(origin.source_ip.clone())
                    .details(serde_json::json!({ "limit": limit })),
            )
            .await;
        }
        Ok(verdict.retry_after_secs())
    }

    async fn account_is_active(&self, subject: &str) -> Result<bool, ProviderError> {
        Ok(self.accounts.account(subject).await?.is_some_and(|a| a.active))
    }

    /// The interaction `id`, if it is live and was started by this browser.
    pub async fn interaction(
        &self,
        id: &str,
        browser: Option<&str>,
        now: i64,
    ) -> Result<Interaction, InteractionError> {
        if id.len() > 64 {
            return Err(InteractionError::Expired);
        }
        let bytes = self.store.get(&interaction_key(id)).await?.ok_or(InteractionError::Expired)?;
        let interaction: Interaction =
            serde_json::from_slice(&bytes).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
        if interaction.expires_at <= now {
            return Err(InteractionError::Expired);
        }
        let presented = sha256_b64(browser.unwrap_or("").as_bytes());
        if !constant_time_eq(presented.as_bytes(), interaction.browser_hash.as_bytes()) {
            return Err(InteractionError::WrongBrowser);
        }
        Ok(interaction)
    }

    /// Consumes the interaction: of concurrent submissions, only one proceeds.
    async fn take_interaction(
        &self,
        id: &str,
        browser: Option<&str>,
        now: i64,
    ) -> Result<Interaction, InteractionError> {
        let checked = self.interaction(id, browser, now).await?;
        let bytes = self.store.take(&interaction_key(id)).await?.ok_or(InteractionError::Expired)?;
        let taken: Interaction = serde_json::from_slice(&bytes).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
        if taken.csrf_token != checked.csrf_token {
            return Err(InteractionError::Expired);
        }
        Ok(taken)
    }

    /// The person is authenticated: open or refresh the SSO session, issue the code, and go back
    /// to the client. A login by someone else than the request is bound to goes back to the
    /// client with `login_required` instead, and leaves the browser's session as it was.
    pub async fn finish_interaction(
        &self,
        id: &str,
        cookies: &BrowserCookies,
        login: &LoginResult,
        origin: &RequestOrigin,
        now: i64,
    ) -> Result<FinishOutcome, InteractionError> {
        let interaction = self.take_interaction(id, cookies.browser.as_deref(), now).await?;
        if let Some(expected) = interaction.bound_subject()
            && expected != login.subject
        {
            return Ok(self.refuse_other_person(&interaction, login, origin).await);
        }
        let existing = match cookies.session.as_deref() {
            Some(c) => self.sessions.from_cookie(c, now).await?,
            None => None,
        };
        let (session, session_cookie) = match existing {
            Some(s) if s.subject == login.subject => {
                // Every login gets a new cookie, re-authentications included: a cookie taken
                // before must not inherit the strength of the login that follows.
                let updated = self.sessions.reauthenticate(&s.sid, login, now).await?;
                match updated {
                    Some((u, c)) => (u, Some(c)),
                    None => {
                        let (n, c) = self.sessions.create(login, origin, now).await?;
                        (n, Some(c))
                    }
                }
            }
            other => {
                if let Some(previous) = other {
                    // Another person signs in with this browser: the previous session ends.
                    self.end_session(&previous.sid, "superseded", now).await?;
                }
                let (n, c) = self.sessions.create(login, origin, now).await?;
                (n, Some(c))
            }
        };
        self.audit(
            AuditEntry::new(ProtocolEvent::Signin, "success")
                .subject(&login.subject)
                .client(&interaction.request.client_id)
                .ip(origin.source_ip.clone())
                .details(serde_json::json!({ "acr": login.acr, "amr": login.amr, "sid": session.sid })),
        )
        .await;
        let location = self.issue_code(&interaction.request, &session, now).await?;
        Ok(FinishOutcome { location, session_cookie })
    }

    /// The login was by another person than the one the request is bound to: no code, no
    /// session change; the client hears `login_required` (OIDC Core 3.1.2.1) and may start
    /// again, and whoever is at the browser must log the other person out to switch.
    async fn refuse_other_person(
        &self,
        interaction: &Interaction,
        login: &LoginResult,
        origin: &RequestOrigin,
    ) -> FinishOutcome {
        let r = &interaction.request;
        self.audit(
            AuditEntry::new(ProtocolEvent::SigninOtherPerson, "refused")
                .subject(&login.subject)
                .client(&r.client_id)
                .ip(origin.source_ip.clone())
                .details(serde_json::json!({
                    "expected_subject": interaction.bound_subject(),
                    "bound_by": if r.hinted_subject.is_some() { "id_token_hint" } else { "session" },
                })),
        )
        .await;
        let error = OAuthError::new(ErrorCode::LoginRequired, "the login was not by the end-user the request is for");
        let location = authorize::error_redirect(&r.redirect_uri, r.state.as_deref(), &error, &self.config.issuer);
        FinishOutcome { location, session_cookie: None }
    }

    /// The person gave up (or cannot log in): tell the client `access_denied`.
    pub async fn abort_interaction(
        &self,
        id: &str,
        browser: Option<&str>,
        now: i64,
    ) -> Result<String, InteractionError> {
        let interaction = self.take_interaction(id, browser, now).await?;
        let r = &interaction.request;
        Ok(authorize::error_redirect(
            &r.redirect_uri,
            r.state.as_deref(),
            &OAuthError::new(ErrorCode::AccessDenied, "the end-user cancelled the login"),
            &self.config.issuer,
        ))
    }

    /// Issues a single-use code for `request` under `session` and returns the redirect.
    async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        session: &SsoSession,
        now: i64,
    ) -> Result<String, ProviderError> {
        let code = random_token();
        let record = CodeRecord {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            subject: session.subject.clone(),
            sid: session.sid.clone(),
            scopes: request.scopes.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            auth_time: session.auth_time,
            acr: session.acr.clone(),
            amr: session.amr.clone(),
            expires_at: now + self.config.code_ttl,
            claims: request.claims.clone(),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
        self.store.put(&code_key(&code), &bytes, secs(self.config.code_ttl)).await?;
        self.sessions.add_client(&session.sid, &request.client_id, now).await?;
        let mut params: Vec<(&str, &str)> = vec![("code", &code)];
        if let Some(state) = request.state.as_deref() {
            params.push(("state", state));
        }
        Ok(authorize::redirect_with(&request.redirect_uri, &params, &self.config.issuer))
    }
}

enum AuthorizeFailure {
    Rejected(Rejection),
    Provider(ProviderError),
}

impl From<Rejection> for AuthorizeFailure {
    fn from(r: Rejection) -> Self {
        AuthorizeFailure::Rejected(r)
    }
}

impl From<ProviderError> for AuthorizeFailure {
    fn from(e: ProviderError) -> Self {
        AuthorizeFailure::Provider(e)
    }
}

impl From<crate::session::SessionError> for AuthorizeFailure {
    fn from(e: crate::session::SessionError) -> Self {
        AuthorizeFailure::Provider(e.into())
    }
}
