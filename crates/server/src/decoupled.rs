//! CIBA's [`DecoupledLogin`] on the phone app: the national identifier the relying party names
//! is looked up in the directory, and the professional's phone gets a push through the same
//! service, limits, number check and «ce n'était pas moi» block as a login page's push
//! ([`PushApprovals::send_decoupled`]); an approval becomes a login through the same policy.

use std::sync::Arc;

use async_trait::async_trait;
use authn_methods::policy::Policy;
use authn_methods::push::{DecoupledPush, PushApprovals, PushSend, PushStatus};
use directory::{AccountStatus, Directory};
use oidc_core::ciba::{DecoupledLogin, DecoupledRefusal, DecoupledRequest, DecoupledStarted, DecoupledStatus};
use oidc_core::error::ProviderError;
use oidc_core::session::LoginResult;

pub(crate) struct PhoneApproval {
    directory: Directory,
    push: Arc<PushApprovals>,
    policy: Policy,
}

impl PhoneApproval {
    pub(crate) fn new(directory: Directory, push: Arc<PushApprovals>) -> Self {
        PhoneApproval { directory, push, policy: Policy }
    }
}

fn unavailable(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Accounts(oidc_core::claims::AccountError::Unavailable(e.to_string()))
}

#[async_trait]
impl DecoupledLogin for PhoneApproval {
    async fn start(&self, request: &DecoupledRequest<'_>) -> Result<DecoupledStarted, DecoupledRefusal> {
        if !directory::is_valid_national_id(request.login_hint) {
            return Err(DecoupledRefusal::UnknownUser);
        }
        let professional = self.directory.professionals().get_by_national_id(request.login_hint).await;
        let professional = match professional.map_err(unavailable)? {
            Some(p) if p.status == AccountStatus::Active => p,
            _ => return Err(DecoupledRefusal::UnknownUser),
        };
        let sent = self
            .push
            .send_decoupled(&DecoupledPush {
                subject: &professional.subject,
                request: request.request_id,
                client_id: request.client_id,
                client_name: request.client_name,
                number: request.binding_message,
                source_ip: request.source_ip,
                now: request.now,
            })
            .await
            .map_err(unavailable)?;
        match sent {
            PushSend::Sent { challenge, expires_at, .. } => Ok(DecoupledStarted { handle: challenge, expires_at }),
            PushSend::NoDevice | PushSend::Blocked => Err(DecoupledRefusal::CannotAsk),
            PushSend::Throttled { retry_after } => Err(DecoupledRefusal::Throttled { retry_after }),
        }
    }

    async fn status(
        &self,
        handle: &str,
        request_id: &str,
        required_acr: Option<&str>,
        now: i64,
    ) -> Result<DecoupledStatus, ProviderError> {
        let status = self.push.decoupled_status(request_id, handle, now).await.map_err(unavailable)?;
        Ok(match status {
            PushStatus::Waiting { .. } => DecoupledStatus::Pending,
            PushStatus::Denied | PushStatus::NotMe => DecoupledStatus::Denied,
            PushStatus::Expired => DecoupledStatus::Gone,
            PushStatus::Approved(factor) => {
                let method = factor.method.clone();
                match self.policy.result(vec![factor], now, required_acr) {
                    Some(result) => DecoupledStatus::Approved(LoginResult {
                        subject: result.subject,
                        acr: result.acr,
                        amr: result.amr,
                        auth_time: result.auth_time,
                        methods: vec![method],
                    }),
                    // Approved, but weaker than the relying party asked.
                    None => DecoupledStatus::Denied,
                }
            }
        })
    }
}
