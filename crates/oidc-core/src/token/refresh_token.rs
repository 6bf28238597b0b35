//! The refresh token grant (RFC 6749 6), under the client's rotation policy
//! ([`RefreshRotation`]): by default a refresh token is used once, rotated, and its family
//! revoked on reuse.

use super::{Issue, MAX_REFRESH_TOKEN_LEN, RefreshIssue, TokenParams, TokenResponse};
use crate::client::{Client, GrantType, REFRESH_REUSE_GRACE, RefreshRotation};
use crate::error::{EndpointError, ErrorCode, OAuthError};
use crate::grants::ConsumeResult;
use crate::provider::{AuditEntry, ProtocolEvent, Provider};
use crate::secret::exposed;
use crate::util::{sha256_hex, split_spaces};

impl Provider {
    pub(super) async fn refresh_grant(
        &self,
        client: &Client,
        params: TokenParams,
        now: i64,
    ) -> Result<TokenResponse, EndpointError> {
        let token =
            exposed(&params.refresh_token).ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        if token.is_empty()
            || token.len() > MAX_REFRESH_TOKEN_LEN
            || !self.refresh_key.admits(token, &self.config.issuer)
        {
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
        let rotation = client.metadata.refresh_token_rotation;
        let consumed = if rotation == RefreshRotation::None {
            // Not spent: it stays what it was, as long as it lives.
            match self.grants.get(&hash).await? {
                Some(g) if g.revoked_at.is_some() => ConsumeResult::Revoked(g),
                Some(g) if g.expires_at <= now => ConsumeResult::Expired(g),
                Some(g) if g.consumed_at.is_some() => ConsumeResult::Reused(g),
                Some(g) => ConsumeResult::Consumed(g),
                None => ConsumeResult::Unknown,
            }
        } else {
            self.grants.consume(&hash, now).await?
        };
        let grant = match consumed {
            ConsumeResult::Consumed(g) => g,
            // Two refreshes at once from a client that allows for it: both get tokens.
            ConsumeResult::Reused(g)
                if rotation == RefreshRotation::Grace
                    && g.revoked_at.is_none()
                    && g.expires_at > now
                    && g.consumed_at.is_some_and(|at| now - at <= REFRESH_REUSE_GRACE) =>
            {
                g
            }
            ConsumeResult::Reused(g) => {
                self.revoke_grant(&g.grant_id, now).await?;
                self.end_session(&g.sid, "refresh_reuse", now).await?;
                self.audit(
                    AuditEntry::new(ProtocolEvent::RefreshReuse, "revoked")
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
        // A refresh is activity: it keeps an idle timeout from ending the session.
        self.sessions.touch(&session, now).await?;
        // Whether the account is still active is checked by issue_tokens, which needs it anyway.

        // RFC 6749 6: a narrower scope applies to the tokens issued now; the new refresh token
        // keeps the scope of the one it replaces.
        let mut context = grant.context.clone();
        if let Some(scopes) = narrowed {
            context.scopes = scopes;
        }
        let refresh = match rotation {
            RefreshRotation::None => RefreshIssue::Keep { token, expires_at: grant.expires_at },
            _ => RefreshIssue::New { expires_at: (now + self.config.refresh_token_ttl).min(session.expires_at) },
        };
        let issue = Issue {
            client,
            subject: &grant.subject,
            sid: &grant.sid,
            grant_id: &grant.grant_id,
            context: &context,
            grant_context: &grant.context,
            refresh,
            cnf: params.cnf.as_ref(),
        };
        let response = self.issue_tokens(&issue, now).await?;
        self.audit(
            AuditEntry::new(ProtocolEvent::TokenIssued, "success")
                .subject(&grant.subject)
                .client(&client.client_id)
                .details(serde_json::json!({ "grant_type": GrantType::RefreshToken.as_str(), "sid": grant.sid })),
        )
        .await;
        Ok(response)
    }
}
