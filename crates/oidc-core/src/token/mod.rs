//! The token endpoint: one dispatch over the grants, one module each
//! ([`authorization_code`], [`refresh_token`], [`client_credentials`], [`ciba`]), and the tokens they
//! issue (ID token, JWT access token per RFC 9068, rotating refresh token).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::client::GrantType;
use crate::client_auth::ClientCredentials;
use crate::error::{EndpointError, ErrorCode, OAuthError, ProviderError};
use crate::grants::{GrantContext, RefreshGrant};
use crate::keys::{TokenKind, VerifyOptions};
use crate::provider::{AuditEntry, ProtocolEvent, Provider};
use crate::secret::{self, SecretString};
use crate::util::{half_hash, random_id, random_token, sha256_hex};

mod authorization_code;
mod ciba;
mod client_credentials;
mod refresh_jwt;
mod refresh_token;

pub use refresh_jwt::{RefreshClaims, RefreshTokenKey};

/// The longest refresh token looked at (ours are JWTs of a few hundred characters).
pub const MAX_REFRESH_TOKEN_LEN: usize = 4096;

/// The token request's form fields (client credentials are read separately). The secrets among
/// them are [`SecretString`]s, redacted from `Debug`.
#[derive(Debug, Default, Deserialize)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<SecretString>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
    /// The CIBA grant's request id (CIBA Core 1.0 §10.1).
    pub auth_req_id: Option<SecretString>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub client_assertion: Option<SecretString>,
    pub client_assertion_type: Option<String>,
    /// The certificate the tokens issued now are bound to (RFC 8705 §3), set once the client is
    /// authenticated; never read from the request's form.
    #[serde(skip)]
    pub cnf: Option<Confirmation>,
}

crate::http::oauth::client_form!(TokenParams);

/// A successful token response (RFC 6749 5.1, OIDC Core 3.1.3.3). The tokens are written in
/// the answer, and redacted from `Debug`.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    #[serde(serialize_with = "secret::serialize")]
    pub access_token: SecretString,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "secret::serialize_option")]
    pub id_token: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "secret::serialize_option")]
    pub refresh_token: Option<SecretString>,
    pub scope: String,
    /// Keycloak's fields, which relying parties written for Pro Santé Connect parse: seconds
    /// the refresh token lives (0 without one), the SSO session's id, and the realm's
    /// not-before policy (always 0: revocation here is per session and per grant).
    pub refresh_expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_state: Option<String>,
    #[serde(rename = "not-before-policy")]
    pub not_before_policy: i64,
}

/// Claims of the JWT access tokens this provider issues (RFC 9068).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
    /// The SSO session the token lives and dies with; none for a client acting on its own
    /// behalf (client credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The grant (code or refresh family) this token comes from.
    pub gid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// What relying parties written for Pro Santé Connect read in access tokens: the client
    /// (`azp`), the session (`session_state`, the same as `sid`), the national identifier and
    /// how the professional signed in (docs/protocol.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, rename = "authMode", skip_serializing_if = "Option::is_none")]
    pub auth_mode: Option<String>,
    /// Claims the `claims` parameter asked for at userinfo (names only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub userinfo_claims: Vec<String>,
    /// RFC 8705 §3.1: the certificate the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800 / RFC 8705 §3.1: `{"x5t#S256": thumbprint}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

/// The part of an ID token this provider reads back (`id_token_hint`).
///
/// Besides its `typ`, what makes a token one of this provider's ID tokens: every one of them
/// carries `sid` and `auth_time`, which no other token it signs has (a userinfo answer has
/// `iss`, `sub` and `aud` too). A token without them is not an ID token of ours, and a hint
/// without `sid` could not say which session it speaks for.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenHintClaims {
    pub sub: String,
    #[serde(default)]
    pub aud: Value,
    pub sid: String,
    pub auth_time: i64,
}

impl IdTokenHintClaims {
    pub fn audiences(&self) -> Vec<&str> {
        match &self.aud {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// RFC 8705 §3: a client registered for bound tokens gets them bound to the certificate it
/// presented, and must present one.
fn bound_to(client: &Client, creds: &ClientCredentials) -> Result<Option<Confirmation>, EndpointError> {
    if !client.metadata.tls_client_certificate_bound_access_tokens {
        return Ok(None);
    }
    match creds.certificate.as_ref() {
        Some(certificate) => Ok(Some(Confirmation { x5t_s256: certificate.thumbprint() })),
        None => Err(OAuthError::invalid_request(
            "this client's tokens are bound to its certificate: present it (mutual TLS)",
        )
        .into()),
    }
}

pub(crate) fn revoked_grant_key(gid: &str) -> String {
    crate::store_keys::REVOKED_GRANT.key(gid)
}

pub(crate) fn revoked_token_key(jti: &str) -> String {
    crate::store_keys::REVOKED_TOKEN.key(jti)
}

/// Which refresh token goes with the tokens issued.
enum RefreshIssue<'a> {
    None,
    /// A new one (rotation), alive until then.
    New {
        expires_at: i64,
    },
    /// One already stored: the one presented, which stays (a client whose refresh tokens do
    /// not rotate), or the successor a rotation stored as it consumed the one presented.
    Stored {
        token: &'a str,
        expires_at: i64,
    },
}

impl RefreshIssue<'_> {
    /// A new refresh token when the client has the grant, until `expires_at`.
    fn new_if(allowed: bool, expires_at: i64) -> Self {
        if allowed { RefreshIssue::New { expires_at } } else { RefreshIssue::None }
    }

    fn expires_at(&self) -> Option<i64> {
        match self {
            RefreshIssue::None => None,
            RefreshIssue::New { expires_at } | RefreshIssue::Stored { expires_at, .. } => Some(*expires_at),
        }
    }
}

/// Everything needed to issue a set of tokens.
struct Issue<'a> {
    client: &'a Client,
    /// The professional, checked active by the caller.
    account: &'a crate::claims::Account,
    subject: &'a str,
    sid: &'a str,
    grant_id: &'a str,
    /// What the tokens issued now carry.
    context: &'a GrantContext,
    /// What the new refresh token carries (the whole grant, even when `context` is narrower).
    grant_context: &'a GrantContext,
    /// The refresh token of the response.
    refresh: RefreshIssue<'a>,
    /// The certificate the access token is bound to.
    cnf: Option<&'a Confirmation>,
}

impl Provider {
    /// Handles a token request once the client is authenticated.
    pub async fn token(
        &self,
        params: TokenParams,
        creds: &ClientCredentials,
        now: i64,
    ) -> Result<TokenResponse, EndpointError> {
        let name = params.grant_type.as_deref().ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
        let grant_type = GrantType::parse(name)
            .ok_or_else(|| OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type"))?;
        let client = self.authenticate_client(creds, true, now).await?;
        let mut params = params;
        params.cnf = bound_to(&client, creds)?;
        if !client.metadata.allows_grant(grant_type) {
            return Err(
                OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use this grant type").into()
            );
        }
        match grant_type {
            GrantType::AuthorizationCode => self.code_grant(&client, params, now).await,
            GrantType::ClientCredentials => self.client_credentials_grant(&client, params, now).await,
            GrantType::RefreshToken => self.refresh_grant(&client, params, now).await,
            GrantType::Ciba => self.ciba_token(&client, params, now).await,
        }
    }

    async fn ensure_active(&self, subject: &str) -> Result<std::sync::Arc<crate::claims::Account>, EndpointError> {
        match self.accounts.account(subject).await? {
            Some(a) if a.active => Ok(a),
            _ => Err(OAuthError::invalid_grant("the account is not active").into()),
        }
    }

    /// Revokes everything issued from a grant: its refresh tokens now, its access tokens at
    /// their next use (a marker every resource check reads).
    pub(crate) async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<(), ProviderError> {
        let ttl = Duration::from_secs(u64::try_from(self.config.access_token_ttl).unwrap_or(1).max(1) + 60);
        self.store.put(&revoked_grant_key(grant_id), b"1", ttl).await?;
        self.grants.revoke_grant(grant_id, now).await?;
        Ok(())
    }

    /// The tokens of a login just made (a code redeemed, a CIBA approval): a grant of
    /// `session`, with a refresh token when the client has that grant; audited.
    #[allow(clippy::too_many_arguments)]
    async fn issue_for_login(
        &self,
        client: &Client,
        session: &crate::session::SsoSession,
        grant_id: &str,
        context: &GrantContext,
        cnf: Option<&Confirmation>,
        grant_type: GrantType,
        now: i64,
    ) -> Result<TokenResponse, EndpointError> {
        let refresh = RefreshIssue::new_if(
            client.metadata.allows_grant(GrantType::RefreshToken),
            (now + self.config.refresh_token_ttl).min(session.expires_at),
        );
        let account = self.ensure_active(&session.subject).await?;
        let issue = Issue {
            client,
            account: &account,
            subject: &session.subject,
            sid: &session.sid,
            grant_id,
            context,
            grant_context: context,
            refresh,
            cnf,
        };
        let issued = AuditEntry::new(ProtocolEvent::TokenIssued, "success")
            .subject(&session.subject)
            .client(&client.client_id)
            .details(serde_json::json!({ "grant_type": grant_type.as_str(), "sid": session.sid }));
        self.issue_tokens(&issue, Some(issued), now).await
    }

    /// The tokens of `issue`, and `issued` (the record of their issue, unless the caller wrote
    /// it already) written before they are handed out: a token whose record could not be
    /// written is not given (fail closed), so the log never misses a token in use.
    async fn issue_tokens(
        &self,
        issue: &Issue<'_>,
        issued: Option<AuditEntry>,
        now: i64,
    ) -> Result<TokenResponse, EndpointError> {
        let account = issue.account;
        // A new refresh token first: its row and the record of the issue go to the store before
        // the signatures are made, in one transaction, and are written while the signatures are
        // made (on a SQLite file, batched by the writer thread with other requests' writes); the
        // answer waits for both. Without a new refresh token, the record is written after.
        let (refresh_token, new_grant) = match issue.refresh {
            RefreshIssue::None => (None, None),
            RefreshIssue::Stored { token, .. } => (Some(token.to_owned()), None),
            RefreshIssue::New { expires_at } => {
                let (token, token_hash) = self.mint_refresh_token(
                    (issue.client, issue.subject, issue.sid),
                    &issue.grant_context.scopes,
                    expires_at,
                    now,
                )?;
                let grant = RefreshGrant {
                    token_hash,
                    grant_id: issue.grant_id.to_owned(),
                    client_id: issue.client.client_id.clone(),
                    subject: issue.subject.to_owned(),
                    sid: issue.sid.to_owned(),
                    context: issue.grant_context.clone(),
                    created_at: now,
                    expires_at,
                    consumed_at: None,
                    revoked_at: None,
                };
                (Some(token), Some(grant))
            }
        };
        let (issued_with_grant, issued_after) = match new_grant {
            Some(_) => (issued, None),
            None => (None, issued),
        };
        let store = async {
            match &new_grant {
                Some(grant) => self.grants.insert(grant, issued_with_grant).await,
                None => Ok(()),
            }
        };
        let sign = async {
            let scope = issue.context.scopes.join(" ");
            let at_claims = AccessTokenClaims {
                iss: self.config.issuer.clone(),
                sub: issue.subject.to_owned(),
                aud: issue.client.client_id.clone(),
                client_id: issue.client.client_id.clone(),
                exp: now + self.config.access_token_ttl,
                iat: now,
                jti: random_id(),
                scope: scope.clone(),
                sid: Some(issue.sid.to_owned()),
                gid: issue.grant_id.to_owned(),
                auth_time: Some(issue.context.auth_time),
                acr: Some(issue.context.acr.clone()),
                azp: Some(issue.client.client_id.clone()),
                session_state: Some(issue.sid.to_owned()),
                preferred_username: Some(account.national_id.clone()),
                auth_mode: Some(crate::claims::auth_mode(&issue.context.amr).to_owned()),
                userinfo_claims: issue.context.claims.userinfo.clone(),
                cnf: issue.cnf.cloned(),
            };
            let access_token = self.keys.sign(self.config.access_token_alg, TokenKind::AccessToken, &at_claims)?;

            let mut id_claims = Map::new();
            let mut put = |k: &str, v: Value| {
                id_claims.insert(k.to_owned(), v);
            };
            put("iss", Value::String(self.config.issuer.clone()));
            put("sub", Value::String(issue.subject.to_owned()));
            put("aud", Value::String(issue.client.client_id.clone()));
            put("azp", Value::String(issue.client.client_id.clone()));
            put("exp", Value::from(now + self.config.id_token_ttl));
            put("iat", Value::from(now));
            put("auth_time", Value::from(issue.context.auth_time));
            put("acr", Value::String(issue.context.acr.clone()));
            put("amr", Value::from(issue.context.amr.clone()));
            put("sid", Value::String(issue.sid.to_owned()));
            put("at_hash", Value::String(half_hash(access_token.as_bytes())));
            if let Some(nonce) = &issue.context.nonce {
                put("nonce", Value::String(nonce.clone()));
            }
            for (k, v) in crate::claims::released_claims(account, &issue.context.scopes, &issue.context.acr) {
                id_claims.entry(k).or_insert(v);
            }
            for (k, v) in crate::claims::requested_claims(account, &issue.context.claims.id_token, &issue.context.acr) {
                id_claims.entry(k).or_insert(v);
            }
            let alg = issue.client.metadata.id_token_signed_response_alg;
            let id_token = self.keys.sign(alg, TokenKind::IdToken, &id_claims)?;

            Ok::<_, EndpointError>((scope, access_token, id_token))
        };
        // Polled in this order: the record is queued before the signing starts.
        let (stored, signed) = tokio::join!(store, sign);
        stored?;
        let (scope, access_token, id_token) = signed?;
        if let Some(entry) = issued_after {
            self.audit_issued(entry).await?;
        }
        Ok(TokenResponse {
            access_token: access_token.into(),
            token_type: "Bearer",
            expires_in: self.config.access_token_ttl,
            id_token: Some(id_token.into()),
            refresh_token: refresh_token.map(SecretString::from),
            scope,
            refresh_expires_in: issue.refresh.expires_at().map_or(0, |at| (at - now).max(0)),
            session_state: Some(issue.sid.to_owned()),
            not_before_policy: 0,
        })
    }

    /// A new refresh token (a JWT MACed with the provider's own key) for `client`, `subject` and
    /// session `sid`, and the hash it is stored by.
    fn mint_refresh_token(
        &self,
        (client, subject, sid): (&Client, &str, &str),
        scopes: &[String],
        expires_at: i64,
        now: i64,
    ) -> Result<(String, String), ProviderError> {
        let token = self
            .refresh_key
            .mint(&RefreshClaims {
                iss: self.config.issuer.clone(),
                aud: self.config.issuer.clone(),
                sub: subject.to_owned(),
                typ: refresh_jwt::REFRESH_TYP.to_owned(),
                azp: client.client_id.clone(),
                exp: expires_at,
                iat: now,
                jti: random_token(),
                sid: sid.to_owned(),
                session_state: sid.to_owned(),
                scope: scopes.join(" "),
            })
            .map_err(|e| ProviderError::Corrupt(format!("refresh token: {e}")))?;
        let hash = sha256_hex(token.as_bytes());
        Ok((token, hash))
    }

    /// Verifies an ID token this provider issued, even expired (`id_token_hint`): its `typ`, and
    /// the claims only ID tokens carry ([`IdTokenHintClaims`]).
    pub fn verify_id_token_hint(&self, token: &str, now: i64) -> Option<IdTokenHintClaims> {
        if token.len() > 16 * 1024 {
            return None;
        }
        let opts = VerifyOptions { issuer: &self.config.issuer, kind: TokenKind::IdToken, allow_expired: true, now };
        self.keys.verify(token, opts)
    }

    /// Verifies an ID token this provider issued to `client_id`, not expired; returns its claims.
    /// For first-party relying parties running in this process (the wallet).
    pub fn verify_id_token(&self, token: &str, client_id: &str, now: i64) -> Option<Map<String, Value>> {
        if token.len() > 64 * 1024 {
            return None;
        }
        let claims: Map<String, Value> = self.keys.verify(
            token,
            VerifyOptions { issuer: &self.config.issuer, kind: TokenKind::IdToken, allow_expired: false, now },
        )?;
        (claims.get("aud").and_then(Value::as_str) == Some(client_id)).then_some(claims)
    }

    /// Verifies an access token's signature and lifetime (not yet whether it was revoked).
    pub(crate) fn decode_access_token(&self, token: &str, now: i64) -> Option<Arc<AccessTokenClaims>> {
        if token.len() > 8 * 1024 {
            return None;
        }
        let key = match self.verified.lookup(token, now) {
            Ok(claims) => return Some(claims),
            Err(key) => key,
        };
        let claims: AccessTokenClaims = self.keys.verify(
            token,
            VerifyOptions { issuer: &self.config.issuer, kind: TokenKind::AccessToken, allow_expired: false, now },
        )?;
        let claims = Arc::new(claims);
        self.verified.remember(key, Arc::clone(&claims), now);
        Some(claims)
    }
}
