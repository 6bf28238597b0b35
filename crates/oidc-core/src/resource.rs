//! Using and checking tokens: userinfo (OIDC Core 5.3), introspection (RFC 7662) and
//! revocation (RFC 7009). A token is alive only while its signature and lifetime hold, its SSO
//! session exists, and neither it nor its grant was revoked: every check reads the shared
//! store, so a revocation on one node is seen by all at the next request.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client_auth::ClientCredentials;
use crate::error::{EndpointError, OAuthError};
use crate::grants::RefreshGrant;
use crate::keys::TokenKind;
use crate::provider::{AuditEntry, ProtocolEvent, Provider};
use crate::secret::{SecretString, exposed};
use crate::token::{AccessTokenClaims, revoked_grant_key, revoked_token_key};
use crate::util::sha256_hex;

/// What userinfo answers.
#[derive(Debug)]
pub enum UserInfo {
    Json(Map<String, Value>),
    /// A signed JWT, for clients registered with `userinfo_signed_response_alg`.
    Jwt(String),
}

/// RFC 6750 errors for the userinfo endpoint (sent in `WWW-Authenticate`).
#[derive(Debug)]
pub enum BearerError {
    /// No token at all: a bare challenge, no error code (RFC 6750 3.1).
    Missing,
    InvalidToken,
    InvalidRequest,
    Unavailable,
}

/// The form of `/introspect` and `/revoke` requests; the token and the client's secret or
/// assertion are redacted from `Debug`.
#[derive(Debug, Default, Deserialize)]
pub struct TokenOperationParams {
    pub token: Option<SecretString>,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub client_assertion: Option<SecretString>,
    pub client_assertion_type: Option<String>,
}

crate::http::oauth::client_form!(TokenOperationParams);

/// RFC 7662 2.2 response.
#[derive(Debug, Serialize, Default, PartialEq)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// What Pro Santé Connect's introspection adds, for a professional's token: the client,
    /// the session, the national identifier (twice, as PSC names it), how they signed in, and
    /// their other registry identifiers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_state: Option<String>,
    #[serde(rename = "SubjectNameID", skip_serializing_if = "Option::is_none")]
    pub subject_name_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(rename = "authMode", skip_serializing_if = "Option::is_none")]
    pub auth_mode: Option<String>,
    #[serde(rename = "otherIds", skip_serializing_if = "Option::is_none")]
    pub other_ids: Option<serde_json::Value>,
    /// RFC 8705 §3.2: the certificate a bound token must come with, for the resource server
    /// to compare with the one its caller presents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::token::Confirmation>,
}

impl Provider {
    /// An access token that is valid and alive, or `None`.
    pub async fn live_access_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<std::sync::Arc<AccessTokenClaims>>, EndpointError> {
        let Some(claims) = self.decode_access_token(token, now) else {
            return Ok(None);
        };
        let mut keys = vec![revoked_grant_key(&claims.gid), revoked_token_key(&claims.jti)];
        if let Some(sid) = &claims.sid {
            keys.push(crate::store_keys::SSO.key(sid));
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let found = self.store.get_many(&refs).await?;
        let revoked = found.iter().take(2).any(Option::is_some);
        let session_alive = claims.sid.is_none() || found.get(2).is_some_and(Option::is_some);
        if !session_alive || revoked {
            return Ok(None);
        }
        Ok(Some(claims))
    }

    /// Userinfo for a bearer token.
    /// `certificate`: the one the connection presented, which a bound token needs (RFC 8705
    /// §3: the same certificate as the client's at the token endpoint).
    pub async fn userinfo(
        &self,
        token: Option<&str>,
        certificate: Option<&crate::mtls::ClientCertificate>,
        now: i64,
    ) -> Result<UserInfo, BearerError> {
        let token = token.ok_or(BearerError::Missing)?;
        let claims = match self.live_access_token(token, now).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(BearerError::InvalidToken),
            Err(e) => {
                tracing::error!(error = %e, "userinfo failed");
                return Err(BearerError::Unavailable);
            }
        };
        if let Some(cnf) = &claims.cnf {
            let presented = certificate.map(|c| c.thumbprint());
            if !presented.is_some_and(|t| crate::util::constant_time_eq(t.as_bytes(), cnf.x5t_s256.as_bytes())) {
                return Err(BearerError::InvalidToken);
            }
        }
        let scopes: Vec<String> = claims.scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if !scopes.iter().any(|s| s == "openid") {
            return Err(BearerError::InvalidToken);
        }
        let account = match self.accounts.account(&claims.sub).await {
            Ok(Some(a)) if a.active => a,
            Ok(_) => return Err(BearerError::InvalidToken),
            Err(_) => return Err(BearerError::Unavailable),
        };
        let mut out = Map::new();
        out.insert("sub".into(), Value::String(claims.sub.clone()));
        let acr = claims.acr.as_deref().unwrap_or_default();
        out.extend(crate::claims::released_claims(&account, &scopes, acr));
        out.extend(crate::claims::requested_claims(&account, &claims.userinfo_claims, acr));

        let client = match self.client(&claims.client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(BearerError::InvalidToken),
            Err(_) => return Err(BearerError::Unavailable),
        };
        match client.metadata.userinfo_signed_response_alg {
            None => Ok(UserInfo::Json(out)),
            Some(alg) => {
                out.insert("iss".into(), Value::String(self.config.issuer.clone()));
                out.insert("aud".into(), Value::String(client.client_id.clone()));
                out.insert("iat".into(), Value::from(now));
                out.insert("exp".into(), Value::from(claims.exp));
                // Same `iss`, `sub` and `aud` as an ID token: its own kind (no `typ`) keeps it
                // from being accepted as an `id_token_hint`.
                self.keys.sign(alg, TokenKind::UserInfo, &out).map(UserInfo::Jwt).map_err(|e| {
                    tracing::error!(error = %e, "signing userinfo failed");
                    BearerError::Unavailable
                })
            }
        }
    }

    /// Introspection by an authenticated client. A client learns about its own tokens only,
    /// unless it is registered as a resource server.
    pub async fn introspect(
        &self,
        params: TokenOperationParams,
        creds: &ClientCredentials,
        now: i64,
    ) -> Result<Introspection, EndpointError> {
        let client = self.authenticate_client(creds, false, now).await?;
        let token = exposed(&params.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let refresh_first = params.token_type_hint.as_deref() == Some("refresh_token");
        for as_refresh in [refresh_first, !refresh_first] {
            let found = if as_refresh {
                self.live_refresh_token(token, now).await?.map(|g| self.describe_refresh(g))
            } else {
                match self.live_access_token(token, now).await? {
                    // A token of a client that was removed since is no longer honoured.
                    Some(at) if self.client(&at.client_id).await?.is_some() => {
                        Some(describe_access(std::sync::Arc::unwrap_or_clone(at)))
                    }
                    _ => None,
                }
            };
            if let Some(found) = found {
                let owner = found.client_id.as_deref().unwrap_or_default();
                let visible = client.metadata.resource_server || owner == client.client_id;
                return Ok(if visible { self.with_professional(found).await? } else { Introspection::default() });
            }
        }
        Ok(Introspection::default())
    }

    /// Adds what is known of the professional a token speaks for (none for a client's own).
    async fn with_professional(&self, mut found: Introspection) -> Result<Introspection, EndpointError> {
        if found.sid.is_none() {
            return Ok(found);
        }
        let Some(account) = self.accounts.account(found.sub.as_deref().unwrap_or_default()).await? else {
            return Ok(found);
        };
        found.subject_name_id = Some(account.national_id.clone());
        found.preferred_username = Some(account.national_id.clone());
        found.username = Some(account.national_id.clone());
        found.other_ids = account.professional_claims.get("otherIds").cloned();
        found.session_state = found.sid.clone();
        Ok(found)
    }

    fn describe_refresh(&self, grant: RefreshGrant) -> Introspection {
        Introspection {
            auth_mode: Some(crate::claims::auth_mode(&grant.context.amr).to_owned()),
            azp: Some(grant.client_id.clone()),
            active: true,
            scope: Some(grant.context.scopes.join(" ")),
            client_id: Some(grant.client_id),
            token_type: Some("refresh_token"),
            exp: Some(grant.expires_at),
            iat: Some(grant.created_at),
            sub: Some(grant.subject),
            iss: Some(self.config.issuer.clone()),
            sid: Some(grant.sid),
            acr: Some(grant.context.acr),
            auth_time: Some(grant.context.auth_time),
            ..Introspection::default()
        }
    }

    /// Logout without a browser, as Keycloak offers it (`POST …/logout` with the client's
    /// credentials and its `refresh_token`): the session the refresh token belongs to ends, as
    /// any session ends (every relying party told, every token dead). A token that is not this
    /// client's, or not alive, is `invalid_grant`.
    pub async fn logout_with_refresh_token(
        &self,
        refresh_token: Option<&str>,
        creds: &ClientCredentials,
        now: i64,
    ) -> Result<(), EndpointError> {
        let client = self.authenticate_client(creds, true, now).await?;
        let token = refresh_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let grant = match self.live_refresh_token(token, now).await? {
            Some(g) if g.client_id == client.client_id => g,
            _ => return Err(OAuthError::invalid_grant("invalid refresh token").into()),
        };
        self.end_session(&grant.sid, "refresh_token_logout", now).await?;
        Ok(())
    }

    async fn live_refresh_token(&self, token: &str, now: i64) -> Result<Option<RefreshGrant>, EndpointError> {
        if token.len() > crate::token::MAX_REFRESH_TOKEN_LEN || !self.refresh_key.admits(token, &self.config.issuer) {
            return Ok(None);
        }
        let Some(grant) = self.grants.get(&sha256_hex(token.as_bytes())).await? else {
            return Ok(None);
        };
        if grant.consumed_at.is_some() || grant.revoked_at.is_some() || grant.expires_at <= now {
            return Ok(None);
        }
        if !self.sessions.is_alive(&grant.sid, now).await? {
            return Ok(None);
        }
        // The grant marker is written before the refresh table is updated: read it too.
        if self.store.get(&revoked_grant_key(&grant.grant_id)).await?.is_some() {
            return Ok(None);
        }
        Ok(Some(grant))
    }

    /// Revocation by an authenticated client, of its own tokens (RFC 7009). Unknown or foreign
    /// tokens get the same 200 answer, so that nothing is learnt from it.
    pub async fn revoke(
        &self,
        params: TokenOperationParams,
        creds: &ClientCredentials,
        now: i64,
    ) -> Result<(), EndpointError> {
        let client = self.authenticate_client(creds, true, now).await?;
        let token = exposed(&params.token).ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        if let Some(grant) = self.live_refresh_token(token, now).await? {
            if grant.client_id == client.client_id {
                self.revoke_grant(&grant.grant_id, now).await?;
                self.audit(
                    AuditEntry::new(ProtocolEvent::TokenRevoked, "success")
                        .subject(&grant.subject)
                        .client(&client.client_id)
                        .details(serde_json::json!({ "token_type": "refresh_token", "grant": grant.grant_id })),
                )
                .await;
            }
            return Ok(());
        }
        if let Some(at) = self.decode_access_token(token, now)
            && at.client_id == client.client_id
        {
            // Kept until the token would have expired anyway (its `exp` was signed by us, but
            // the distance to it is still taken without overflow).
            let ttl = Duration::from_secs(u64::try_from(at.exp.saturating_sub(now)).unwrap_or(0).saturating_add(60));
            self.store.put(&revoked_token_key(&at.jti), b"1", ttl).await?;
            self.audit(
                AuditEntry::new(ProtocolEvent::TokenRevoked, "success")
                    .subject(&at.sub)
                    .client(&client.client_id)
                    .details(serde_json::json!({ "token_type": "access_token", "jti": at.jti })),
            )
            .await;
        }
        Ok(())
    }
}

fn describe_access(at: AccessTokenClaims) -> Introspection {
    Introspection {
        active: true,
        scope: Some(at.scope),
        client_id: Some(at.client_id),
        token_type: Some("Bearer"),
        exp: Some(at.exp),
        iat: Some(at.iat),
        sub: Some(at.sub),
        aud: Some(at.aud),
        iss: Some(at.iss),
        jti: Some(at.jti),
        sid: at.sid,
        acr: at.acr,
        auth_time: at.auth_time,
        azp: at.azp,
        auth_mode: at.auth_mode,
        cnf: at.cnf,
        ..Introspection::default()
    }
}
