//! The authorization code grant (RFC 6749 4.1.3, OIDC Core 3.1.3): a code redeemed once, with
//! its PKCE verifier, for the tokens of the login it came from; a code used twice revokes what
//! it gave.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{TokenParams, TokenResponse};
use crate::client::{Client, GrantType};
use crate::error::{EndpointError, OAuthError, ProviderError};
use crate::flow::{CodeRecord, code_key, grant_id_for_code};
use crate::grants::GrantContext;
use crate::provider::{AuditEntry, ProtocolEvent, Provider};
use crate::secret::exposed;
use crate::util::{constant_time_eq, sha256_b64};

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

impl Provider {
    pub(super) async fn code_grant(
        &self,
        client: &Client,
        params: TokenParams,
        now: i64,
    ) -> Result<TokenResponse, EndpointError> {
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
        // Whether the account is still active is checked by issue_for_login, which needs it anyway.

        let context = GrantContext {
            scopes: record.scopes,
            nonce: record.nonce,
            auth_time: record.auth_time,
            acr: record.acr,
            amr: record.amr,
            claims: record.claims,
        };
        self.issue_for_login(
            client,
            &session,
            &grant_id,
            &context,
            params.cnf.as_ref(),
            GrantType::AuthorizationCode,
            now,
        )
        .await
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
            AuditEntry::new(ProtocolEvent::CodeReplay, if by_its_client { "revoked" } else { "revoked_grant_only" })
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
