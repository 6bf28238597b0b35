//! The refresh token grant (RFC 6749 6), under the client's rotation policy
//! ([`RefreshRotation`]): by default a refresh token is used once, rotated, and its family
//! revoked on reuse.
//!
//! A rotation costs the store one step: the presented token is consumed and its successor
//! stored together ([`crate::grants::RefreshTokenStore::consume`]). What must be checked
//! before a token is burnt (the client it was issued to, the scope asked for, the session it
//! belongs to) is read from the token itself, which only this provider can have written (its
//! MAC is checked first); an opaque token from before refresh tokens were JWTs is looked up.

use super::refresh_jwt::Admitted;
use super::{Issue, MAX_REFRESH_TOKEN_LEN, RefreshIssue, TokenParams, TokenResponse};
use crate::client::{Client, GrantType, REFRESH_REUSE_GRACE, RefreshRotation};
use crate::error::{EndpointError, ErrorCode, OAuthError};
use crate::grants::{ConsumeResult, RefreshGrant, Successor};
use crate::provider::{AuditEntry, ProtocolEvent, Provider};
use crate::secret::exposed;
use crate::util::{sha256_hex, split_spaces};

/// What a presented token says of its grant, trusted once its MAC (or its record) was checked.
struct Presented {
    client_id: String,
    sid: String,
    scopes: Vec<String>,
}

impl Provider {
    pub(super) async fn refresh_grant(
        &self,
        client: &Client,
        params: TokenParams,
        now: i64,
    ) -> Result<TokenResponse, EndpointError> {
        let invalid = || EndpointError::from(OAuthError::invalid_grant("invalid refresh token"));
        let token =
            exposed(&params.refresh_token).ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        if token.is_empty() || token.len() > MAX_REFRESH_TOKEN_LEN {
            return Err(invalid());
        }
        let hash = sha256_hex(token.as_bytes());
        let presented = match self.refresh_key.admit(token, &self.config.issuer) {
            Admitted::Jwt(claims) => Presented {
                client_id: claims.azp,
                sid: claims.sid,
                scopes: split_spaces(&claims.scope).map(str::to_owned).collect(),
            },
            Admitted::Opaque => match self.grants.get(&hash).await? {
                Some(g) => Presented { client_id: g.client_id, sid: g.sid, scopes: g.context.scopes },
                None => return Err(invalid()),
            },
            Admitted::Rejected => return Err(invalid()),
        };
        // Checked before consuming: another client presenting this token, or a request the grant
        // cannot honour, must not burn it.
        if presented.client_id != client.client_id {
            return Err(invalid());
        }
        let narrowed: Option<Vec<String>> = match params.scope.as_deref() {
            None => None,
            Some(scope) => {
                let asked: Vec<&str> = split_spaces(scope).collect();
                if asked.iter().any(|s| !presented.scopes.iter().any(|g| g == s)) {
                    return Err(
                        OAuthError::new(ErrorCode::InvalidScope, "a refresh may not widen the granted scope").into()
                    );
                }
                Some(presented.scopes.iter().filter(|g| asked.contains(&g.as_str())).cloned().collect())
            }
        };
        let Some(session) = self.sessions.get(&presented.sid, now).await? else {
            return Err(OAuthError::invalid_grant("the session behind this refresh token has ended").into());
        };
        // Checked before the token is spent, and before its issue is recorded with the spending.
        let account = self.ensure_active(&session.subject).await?;
        let issued = || {
            AuditEntry::new(ProtocolEvent::TokenIssued, "success")
                .subject(&session.subject)
                .client(&client.client_id)
                .details(serde_json::json!({ "grant_type": GrantType::RefreshToken.as_str(), "sid": session.sid }))
        };
        let rotation = client.metadata.refresh_token_rotation;
        let expires_at = (now + self.config.refresh_token_ttl).min(session.expires_at);
        // The successor is made before the store is asked, so that consuming the token, storing
        // its successor and recording the issue are one step; it is only handed out if this
        // call consumed. Without rotation nothing is written, and the record is written after
        // the signing (`record_after`).
        let (successor, consumed, record_after) = if rotation == RefreshRotation::None {
            // Not spent: it stays what it was, as long as it lives.
            let consumed = match self.grants.get(&hash).await? {
                Some(g) if g.revoked_at.is_some() => ConsumeResult::Revoked(g),
                Some(g) if g.expires_at <= now => ConsumeResult::Expired(g),
                Some(g) if g.consumed_at.is_some() => ConsumeResult::Reused(g),
                Some(g) => ConsumeResult::Consumed(g),
                None => ConsumeResult::Unknown,
            };
            (None, consumed, Some(issued()))
        } else {
            let (next, next_hash) =
                self.mint_refresh_token((client, &session.subject, &session.sid), &presented.scopes, expires_at, now)?;
            let stored = Successor { token_hash: next_hash, created_at: now, expires_at };
            let consumed = self.grants.consume(&hash, now, Some(stored.clone()), Some(issued())).await?;
            (Some((next, stored)), consumed, None)
        };
        let grant = match consumed {
            ConsumeResult::Consumed(g) => g,
            // Two refreshes at once from a client that allows for it: both get tokens; the
            // second's successor is stored now (with the record of its issue), since the
            // consumption stored none for it.
            ConsumeResult::Reused(g)
                if rotation == RefreshRotation::Grace
                    && g.revoked_at.is_none()
                    && g.expires_at > now
                    && g.consumed_at.is_some_and(|at| now - at <= REFRESH_REUSE_GRACE) =>
            {
                if let Some((_, stored)) = &successor {
                    self.grants.insert(&successor_grant(&g, stored), Some(issued())).await?;
                }
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
            ConsumeResult::Revoked(_) | ConsumeResult::Expired(_) | ConsumeResult::Unknown => return Err(invalid()),
        };
        // A refresh is activity: it keeps an idle timeout from ending the session.
        self.sessions.touch(&session, now).await?;

        // RFC 6749 6: a narrower scope applies to the tokens issued now; the new refresh token
        // keeps the scope of the one it replaces.
        let mut context = grant.context.clone();
        if let Some(scopes) = narrowed {
            context.scopes = scopes;
        }
        let refresh = match &successor {
            None => RefreshIssue::Stored { token, expires_at: grant.expires_at },
            Some((next, stored)) => RefreshIssue::Stored { token: next, expires_at: stored.expires_at },
        };
        let issue = Issue {
            client,
            account: &account,
            subject: &grant.subject,
            sid: &grant.sid,
            grant_id: &grant.grant_id,
            context: &context,
            grant_context: &grant.context,
            refresh,
            cnf: params.cnf.as_ref(),
        };
        self.issue_tokens(&issue, record_after, now).await
    }
}

/// The record of a successor stored apart from its consumption (a reuse within the grace).
fn successor_grant(used: &RefreshGrant, next: &Successor) -> RefreshGrant {
    RefreshGrant {
        token_hash: next.token_hash.clone(),
        created_at: next.created_at,
        expires_at: next.expires_at,
        consumed_at: None,
        revoked_at: None,
        ..used.clone()
    }
}
