//! The client credentials grant (RFC 6749 4.4): a client acting on its own behalf.

use super::{AccessTokenClaims, TokenParams, TokenResponse};
use crate::client::{Client, GrantType};
use crate::error::{EndpointError, ErrorCode, OAuthError};
use crate::keys::TokenKind;
use crate::provider::{AuditEntry, ProtocolEvent, Provider};
use crate::util::{random_id, split_spaces};

impl Provider {
    /// A client acting on its own behalf (RFC 6749 4.4): an access token with the scopes the
    /// client is registered for (all of them, or those asked), no ID token, no refresh token.
    pub(super) async fn client_credentials_grant(
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
            azp: Some(client.client_id.clone()),
            session_state: None,
            preferred_username: None,
            auth_mode: None,
            userinfo_claims: Vec::new(),
            cnf: params.cnf.clone(),
        };
        let access_token = self.keys.sign(self.config.access_token_alg, TokenKind::AccessToken, &claims)?;
        self.audit_issued(
            AuditEntry::new(ProtocolEvent::TokenIssued, "success")
                .client(&client.client_id)
                .details(serde_json::json!({ "grant_type": GrantType::ClientCredentials.as_str(), "scope": scope })),
        )
        .await?;
        Ok(TokenResponse {
            access_token: access_token.into(),
            token_type: "Bearer",
            expires_in: self.config.access_token_ttl,
            id_token: None,
            refresh_token: None,
            scope,
            refresh_expires_in: 0,
            session_state: None,
            not_before_policy: 0,
        })
    }
}
