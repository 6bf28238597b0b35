//! Push approval as a login method: `begin` sends the push (the password was checked first: the
//! policy puts this method after it, so a push never goes out on a bare identifier) and shows
//! the number to type on the phone; `poll` takes the phone's answer, once.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{METHOD_ID, PushApprovals, PushSend, PushStatus};
use crate::method::{
    AuthContext, AuthError, AuthMethod, FactorKind, Failure, Input, MethodId, MethodState, Prompt, Step, Unusable,
};

/// How soon the page asks again.
const POLL_AFTER_MS: u64 = 2000;

pub struct PushMethod {
    push: Arc<PushApprovals>,
}

#[derive(Serialize, Deserialize)]
struct State {
    challenge: String,
    silenced: bool,
}

impl PushMethod {
    pub fn new(push: Arc<PushApprovals>) -> Self {
        PushMethod { push }
    }

    fn state(state: MethodState) -> Option<State> {
        serde_json::from_value(state.0).ok()
    }
}

fn internal(e: impl std::fmt::Display) -> AuthError {
    AuthError::Internal(e.to_string())
}

#[async_trait]
impl AuthMethod for PushMethod {
    fn id(&self) -> MethodId {
        METHOD_ID
    }

    fn kind(&self) -> FactorKind {
        FactorKind::Possession
    }

    fn needs_subject(&self) -> bool {
        true
    }

    /// Offered to everyone: who has no phone is told so only after the password.
    async fn available(&self, _cx: &AuthContext, _subject: Option<&str>) -> Result<bool, AuthError> {
        Ok(true)
    }

    async fn begin(&self, cx: &AuthContext, subject: Option<&str>) -> Result<Step, AuthError> {
        let Some(subject) = subject else {
            return Ok(Step::Failed(Failure::Bad));
        };
        Ok(match self.push.send(cx, subject, &cx.client_name).await? {
            PushSend::Sent { challenge, number, expires_at, silenced } => {
                let state = serde_json::to_value(State { challenge, silenced }).map_err(internal)?;
                Step::Pending {
                    state: MethodState(state),
                    prompt: Prompt::Number { number, expires_at, silenced },
                    expires_at,
                    poll_after_ms: POLL_AFTER_MS,
                }
            }
            PushSend::NoDevice => Step::Failed(Failure::Unusable(Unusable::NotEnrolled)),
            PushSend::Blocked => Step::Failed(Failure::Unusable(Unusable::Blocked)),
            PushSend::Throttled { retry_after } => Step::Failed(Failure::Unusable(Unusable::Throttled { retry_after })),
        })
    }

    /// «J'ai validé sur mon téléphone»: the same as asking.
    async fn submit(&self, cx: &AuthContext, state: MethodState, _input: &Input) -> Result<Step, AuthError> {
        self.poll(cx, state).await
    }

    async fn poll(&self, cx: &AuthContext, state: MethodState) -> Result<Step, AuthError> {
        let Some(st) = Self::state(state) else {
            return Ok(Step::Failed(Failure::Expired));
        };
        Ok(match self.push.status(cx, &st.challenge).await? {
            PushStatus::Waiting { number, expires_at } => {
                let silenced = st.silenced;
                let state = serde_json::to_value(st).map_err(internal)?;
                Step::Pending {
                    state: MethodState(state),
                    prompt: Prompt::Number { number, expires_at, silenced },
                    expires_at,
                    poll_after_ms: POLL_AFTER_MS,
                }
            }
            PushStatus::Approved(factor) => Step::Done(factor),
            PushStatus::Denied | PushStatus::NotMe => Step::Failed(Failure::Denied),
            PushStatus::Expired => Step::Failed(Failure::Expired),
        })
    }

    async fn waiting(&self, cx: &AuthContext, state: &MethodState) -> Result<bool, AuthError> {
        match serde_json::from_value::<State>(state.0.clone()) {
            Ok(st) => self.push.is_waiting(cx, &st.challenge).await,
            Err(_) => Ok(false),
        }
    }
}
