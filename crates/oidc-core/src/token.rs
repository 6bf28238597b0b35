//! The token endpoint: the authorization code and refresh token grants, and the tokens they
//! issue (ID token, JWT access token per RFC 9068, rotating refresh token).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::client_auth::ClientCredentials;
use crate::error::{EndpointError, ErrorCode, OAuthError, ProviderError};
use crate::flow::{CodeRecord, code_key, grant_id_for_code};
use crate::grants::{ConsumeResult, GrantContext, RefreshGrant};
use crate::keys::{TokenKind, VerifyOptions};
use crate::provider::{AuditEntry, Provider};
use crate::secret::{self, SecretString, exposed};
use crate::util::{constant_time_eq, half_hash, random_id, random_token, sha256_b64, sha256_hex, split_spaces};

/// What marks a consumed code; a second use of the code finds this, followed by a
/// [`RedeemedCode`] in JSON, instead of the record.
const CODE_REDEEMED: &[u8] = b"redeemed";

/// What a consumed code still says about itself, for when it comes back.
#[derive(Debug, Serialize, Deserialize)]
struct RedeemedCode {
    /// The client the code was issued to: only it may end the session over a replay.
    client_id: String,
    sid: String,
    /// The code's PKCE challenge: a replay by a public client (no secret) counts as the
    /// client's own only with the verifier.
    code_challenge: Option<String>,
}

impl RedeemedCode {
    fn marker(&self) -> Result<Vec<u8>, ProviderError> {
        let json = serde_json::to_vec(self).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
        Ok([CODE_REDEEMED, b":", &json].concat())
    }

    /// `None` for a marker written by an older version (`redeemed:<sid>`): nothing then says
    /// whose code it was, so it ends no session.
    fn parse(after_prefix: &[u8]) -> Option<Self> {
        serde_json::from_slice(after_prefix.strip_prefix(b":")?).ok()
    }
}
/// How long a consumed code is remembered to detect replays.
const CODE_REPLAY_WINDOW: Duration = Duration::from_secs(3600);

/// The token request's form fields (client credentials are read separately). The secrets among
/// them are [`SecretString`]s, redacted from `Debug`.
#[derive(Debug, Default, Deserialize)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<SecretString>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub client_assertion: Option<SecretString>,
    pub client_assertion_type: Option<String>,
}

impl TokenParams {
    pub fn credentials(&self, basic: Option<(String, SecretString)>) -> ClientCredentials {
        ClientCredentials {
            basic,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            client_assertion: self.client_assertion.clone(),
            client_assertion_type: self.client_assertion_type.clone(),
        }
    }
}

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

pub(crate) fn revoked_grant_key(gid: &str) -> String {
    crate::store_keys::REVOKED_GRANT.key(gid)
}

pub(crate) fn revoked_token_key(jti: &str) -> String {
    crate::store_keys::REVOKED_TOKEN.key(jti)
}

/// Everything needed to issue a set of tokens.
struct Issue<'a> {
    client: &'a Client,
    subject: &'a str,
    sid: &'a str,
    grant_id: &'a str,
    /// What the tokens issued now carry.
    context: &'a GrantContext,
    /// What the new refresh token carries (the whole grant, even when `context` is narrower).
    grant_context: &'a GrantContext,
    /// `Some(expiry)` to add a refresh token to the response.
    refresh_expiry: Option<i64>,
}

impl Provider {
    /// Handles a token request once the client is authenticated.
    pub async fn token(
        &self,
        params: TokenParams,
        creds: &ClientCredentials,
        now: i64,
    ) -> Result<TokenResponse, EndpointError> {
        let grant_type =
            params.grant_type.as_deref().ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
        if !matches!(grant_type, "authorization_code" | "refresh_token" | "client_credentials") {
            return Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type").into());
        }
        let client = self.authenticate_client(creds, true, now).await?;
        if !client.metadata.allows_grant(grant_type) {
            return Err(
                OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use this grant type").into()
            );
        }
        match grant_type {
            "authorization_code" => self.code_grant(&client, params, now).await,
            "client_credentials" => self.client_credentials_grant(&client, params, now).await,
            _ => self.refresh_grant(&client, params, now).await,
        }
    }

    async fn code_grant(&self, client: &Client, params: TokenParams, now: i64) -> Result<TokenResponse, EndpointError> {
        let code = exposed(&params.code).ok_or_else(|| OAuthError::invalid_request("code is required"))?;
        if code.is_empty() || code.len() > 128 {
            return Err(OAuthError::invalid_grant("invalid authorization code").into());
        }
        let key = code_key(code);
        let Some(bytes) = self.store.get(&key).await? else {
            return Err(OAuthError::invalid_grant("invalid or expired authorization code").into());
        };
        let grant_id = grant_id_for_code(code);
        if let Some(rest) = bytes.strip_prefix(CODE_REDEEMED) {
            return Err(self.code_replayed(client, &params, &grant_id, rest, now).await);
        }
        let record: CodeRecord = serde_json::from_slice(&bytes).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
        // Checked before the code is consumed: a request that does not match the authorization
        // (another client, redirect URI or PKCE verifier) must not burn the legitimate client's code.
        if record.expires_at <= now {
            return Err(OAuthError::invalid_grant("authorization code expired").into());
        }
        if record.client_id != client.client_id {
            return Err(OAuthError::invalid_grant("authorization code was issued to another client").into());
        }
        if params.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request").into());
        }
        check_pkce(record.code_challenge.as_deref(), exposed(&params.code_verifier))?;
        // Single use: of concurrent redemptions, only one swaps out the record it checked.
        let marker = RedeemedCode {
            client_id: record.client_id.clone(),
            sid: record.sid.clone(),
            code_challenge: record.code_challenge.clone(),
        }
        .marker()?;
        match self.store.swap_existing(&key, &marker, CODE_REPLAY_WINDOW).await? {
            Some(previous) if previous == bytes => {}
            Some(previous) => {
                let rest = previous.strip_prefix(CODE_REDEEMED).unwrap_or_default();
                return Err(self.code_replayed(client, &params, &grant_id, rest, now).await);
            }
            None => return Err(OAuthError::invalid_grant("invalid or expired authorization code").into()),
        }
        let session = self.sessions.get(&record.sid, now).await?;
        let Some(session) = session else {
            return Err(OAuthError::invalid_grant("the session behind this code has ended").into());
        };
        // Whether the account is still active is checked by issue_tokens, which needs it anyway.

        let context = GrantContext {
            scopes: record.scopes,
            nonce: record.nonce,
            auth_time: record.auth_time,
            acr: record.acr,
            amr: record.amr,
        };
        let refresh_expiry = client
            .metadata
            .allows_grant("refresh_token")
            .then(|| (now + self.config.refresh_token_ttl).min(session.expires_at));
        let issue = Issue {
            client,
            subject: &record.subject,
            sid: &record.sid,
            grant_id: &grant_id,
            context: &context,
            grant_context: &context,
            refresh_expiry,
        };
        let response = self.issue_tokens(&issue, now).await?;
        self.audit(
            AuditEntry::new("token_issued", "success")
                .subject(&record.subject)
                .client(&client.client_id)
                .details(serde_json::json!({ "grant_type": "authorization_code", "sid": record.sid })),
        )
        .await;
        Ok(response)
    }

    /// A client acting on its own behalf (RFC 6749 4.4): an access token with the scopes the
    /// client is registered for (all of them, or those asked), no ID token, no refresh token.
    async fn client_credentials_grant(
        &self,
        client: &Client,
        params: TokenParams,
        now: i64,
    ) -> Result<TokenResponse, EndpointError> {
        if client.metadata.is_public() {
            return Err(
                OAuthError::new(ErrorCode::UnauthorizedClient, "public clients cannot use client credentials").into()
            );
        }
        let registered = &client.metadata.allowed_scopes;
        let scopes: Vec<String> = match params.scope.as_deref() {
            None => registered.clone(),
            Some(asked) => {
                let asked: Vec<&str> = split_spaces(asked).collect();
                if asked.iter().any(|a| !registered.iter().any(|r| r == a)) {
                    return Err(OAuthError::new(ErrorCode::InvalidScope, "scope not registered for this client").into());
                }
                registered.iter().filter(|r| asked.contains(&r.as_str())).cloned().collect()
            }
        };
        let scope = scopes.join(" ");
        let claims = AccessTokenClaims {
            iss: self.config.issuer.clone(),
            sub: client.client_id.clone(),
            aud: client.client_id.clone(),
            client_id: client.client_id.clone(),
            exp: now + self.config.access_token_ttl,
            iat: now,
            jti: random_id(),
            scope: scope.clone(),
            sid: None,
            gid: random_id(),
            auth_time: None,
            acr: None,
        };
        let access_token = self.keys.sign(self.config.access_token_alg, TokenKind::AccessToken, &claims)?;
        self.audit(
            AuditEntry::new("token_issued", "success")
                .client(&client.client_id)
                .details(serde_json::json!({ "grant_type": "client_credentials", "scope": scope })),
        )
        .await;
        Ok(TokenResponse {
            access_token: access_token.into(),
            token_type: "Bearer",
            expires_in: self.config.access_token_ttl,
            id_token: None,
            refresh_token: None,
            scope,
        })
    }

    /// A code used a second time: it was stolen, or intercepted and raced. What it gave is
    /// revoked whoever presents it (RFC 6749 4.1.2). The session it came from ends, with a
    /// logout to every relying party, only when the replay comes from the client the code was
    /// issued to (with the PKCE verifier, if the code had a challenge): that client speaks for
    /// the person; anyone else holding a spent code must not be able to log them out.
    async fn code_replayed(
        &self,
        client: &Client,
        params: &TokenParams,
        grant_id: &str,
        marker_rest: &[u8],
        now: i64,
    ) -> EndpointError {
        let redeemed = RedeemedCode::parse(marker_rest);
        let by_its_client = redeemed.as_ref().is_some_and(|r| {
            r.client_id == client.client_id
                && check_pkce(r.code_challenge.as_deref(), exposed(&params.code_verifier)).is_ok()
        });
        let sid = redeemed.as_ref().map(|r| r.sid.as_str());
        let outcome = async {
            self.revoke_grant(grant_id, now).await?;
            if by_its_client && let Some(sid) = sid {
                self.end_session(sid, "code_replay", now).await?;
            }
            Ok::<(), ProviderError>(())
        }
        .await;
        if let Err(e) = outcome {
            return e.into();
        }
        self.audit(
            AuditEntry::new("code_replay", if by_its_client { "revoked" } else { "revoked_grant_only" })
                .client(&client.client_id)
                .details(serde_json::json!({
                    "grant": grant_id,
                    "sid": sid,
                    "issued_to": redeemed.as_ref().map(|r| r.client_id.as_str()),
                    "session_ended": by_its_client,
                })),
        )
        .await;
        OAuthError::invalid_grant("authorization code already used; tokens issued from it are revoked").into()
    }

    async fn refresh_grant(
        &self,
        client: &Client,
        params: TokenParams,
        now: i64,
    ) -> Result<TokenResponse, EndpointError> {
        let token =
            exposed(&params.refresh_token).ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        if token.is_empty() || token.len() > 128 {
            return Err(OAuthError::invalid_grant("invalid refresh token").into());
        }
        let hash = sha256_hex(token.as_bytes());
        // Checked before consuming: another client presenting this token, or a request the grant
        // cannot honour, must not burn it.
        let granted_scopes = match self.grants.get(&hash).await? {
            Some(g) if g.client_id == client.client_id => g.context.scopes,
            _ => return Err(OAuthError::invalid_grant("invalid refresh token").into()),
        };
        let narrowed: Option<Vec<String>> = match params.scope.as_deref() {
            None => None,
            Some(scope) => {
                let asked: Vec<&str> = split_spaces(scope).collect();
                if asked.iter().any(|s| !granted_scopes.iter().any(|g| g == s)) {
                    return Err(
                        OAuthError::new(ErrorCode::InvalidScope, "a refresh may not widen the granted scope").into()
                    );
                }
                Some(granted_scopes.iter().filter(|g| asked.contains(&g.as_str())).cloned().collect())
            }
        };
        let grant = match self.grants.consume(&hash, now).await? {
            ConsumeResult::Consumed(g) => g,
            ConsumeResult::Reused(g) => {
                self.revoke_grant(&g.grant_id, now).await?;
                self.end_session(&g.sid, "refresh_reuse", now).await?;
                self.audit(
                    AuditEntry::new("refresh_reuse", "revoked")
                        .subject(&g.subject)
                        .client(&g.client_id)
                        .details(serde_json::json!({ "grant": g.grant_id, "sid": g.sid })),
                )
                .await;
                return Err(OAuthError::invalid_grant("refresh token already used; the grant is revoked").into());
            }
            ConsumeResult::Revoked(_) | ConsumeResult::Expired(_) | ConsumeResult::Unknown => {
                return Err(OAuthError::invalid_grant("invalid refresh token").into());
            }
        };
        let Some(session) = self.sessions.get(&grant.sid, now).await? else {
            return Err(OAuthError::invalid_grant("the session behind this refresh token has ended").into());
        };
        // Whether the account is still active is checked by issue_tokens, which needs it anyway.

        // RFC 6749 6: a narrower scope applies to the tokens issued now; the new refresh token
        // keeps the scope of the one it replaces.
        let mut context = grant.context.clone();
        if let Some(scopes) = narrowed {
            context.scopes = scopes;
        }
        let refresh_expiry = Some((now + self.config.refresh_token_ttl).min(session.expires_at));
        let issue = Issue {
            client,
            subject: &grant.subject,
            sid: &grant.sid,
            grant_id: &grant.grant_id,
            context: &context,
            grant_context: &grant.context,
            refresh_expiry,
        };
        let response = self.issue_tokens(&issue, now).await?;
        self.audit(
            AuditEntry::new("token_issued", "success")
                .subject(&grant.subject)
                .client(&client.client_id)
                .details(serde_json::json!({ "grant_type": "refresh_token", "sid": grant.sid })),
        )
        .await;
        Ok(response)
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

    async fn issue_tokens(&self, issue: &Issue<'_>, now: i64) -> Result<TokenResponse, EndpointError> {
        let account = self.ensure_active(issue.subject).await?;
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
        for (k, v) in crate::claims::released_claims(&account, &issue.context.scopes, &issue.context.acr) {
            id_claims.entry(k).or_insert(v);
        }
        let alg = issue.client.metadata.id_token_signed_response_alg;
        let id_token = self.keys.sign(alg, TokenKind::IdToken, &id_claims)?;

        let refresh_token = match issue.refresh_expiry {
            None => None,
            Some(expires_at) => {
                let token = random_token();
                let grant = RefreshGrant {
                    token_hash: sha256_hex(token.as_bytes()),
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
                self.grants.insert(&grant).await?;
                Some(token)
            }
        };
        Ok(TokenResponse {
            access_token: access_token.into(),
            token_type: "Bearer",
            expires_in: self.config.access_token_ttl,
            id_token: Some(id_token.into()),
            refresh_token: refresh_token.map(SecretString::from),
            scope,
        })
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
    pub(crate) fn decode_access_token(&self, token: &str, now: i64) -> Option<AccessTokenClaims> {
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
        self.verified.remember(key, &claims, now);
        Some(claims)
    }
}

/// RFC 7636 4.6: `BASE64URL(SHA256(code_verifier)) == code_challenge`. A verifier sent for a code
/// issued without a challenge is refused too, so that PKCE cannot be stripped or injected.
fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), EndpointError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required").into()),
        (None, Some(_)) => Err(OAuthError::invalid_grant("no code_challenge was sent for this code").into()),
        (Some(c), Some(v)) => {
            let well_formed = (43..=128).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if well_formed && constant_time_eq(sha256_b64(v.as_bytes()).as_bytes(), c.as_bytes()) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge").into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(check_pkce(Some(challenge), Some(verifier)).is_ok());
        assert!(check_pkce(Some(challenge), Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX")).is_err());
        assert!(check_pkce(Some(challenge), None).is_err());
        assert!(check_pkce(None, Some(verifier)).is_err());
        assert!(check_pkce(None, None).is_ok());
    }
}
