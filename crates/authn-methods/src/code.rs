//! «Code OTP»: one field for every code a professional may hold — a TOTP app, an OTP token, an
//! activation code from an administrator, the last code mailed to them. The person need not say
//! which: the code is tried against each that the account has, in that order, and the first to
//! accept it is the factor (its own method id is reported, for the audit and the wallet).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::method::{
    AuthContext, AuthError, AuthMethod, FactorKind, Failure, Input, MethodId, MethodState, Prompt, Step,
};

pub const METHOD_ID: MethodId = "otp";

pub struct OneTimeCode {
    /// Tried in order; each must take its code from the `otp` field and open without effect.
    members: Vec<Arc<dyn AuthMethod>>,
}

#[derive(Serialize, Deserialize)]
struct State {
    subject: String,
}

impl OneTimeCode {
    pub fn new(members: Vec<Arc<dyn AuthMethod>>) -> Self {
        OneTimeCode { members }
    }

    pub fn push(&mut self, member: Arc<dyn AuthMethod>) {
        self.members.push(member);
    }
}

#[async_trait]
impl AuthMethod for OneTimeCode {
    fn id(&self) -> MethodId {
        METHOD_ID
    }

    fn kind(&self) -> FactorKind {
        FactorKind::Possession
    }

    fn needs_subject(&self) -> bool {
        true
    }

    async fn available(&self, cx: &AuthContext, subject: Option<&str>) -> Result<bool, AuthError> {
        for m in &self.members {
            if m.available(cx, subject).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn begin(&self, _cx: &AuthContext, subject: Option<&str>) -> Result<Step, AuthError> {
        let Some(subject) = subject else {
            return Ok(Step::Failed(Failure::Bad));
        };
        let state = serde_json::to_value(State { subject: subject.to_owned() })
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok(Step::Continue { state: MethodState(state), prompt: Prompt::fields(&["otp"]) })
    }

    async fn submit(&self, cx: &AuthContext, state: MethodState, input: &Input) -> Result<Step, AuthError> {
        let Ok(State { subject }) = serde_json::from_value::<State>(state.0) else {
            return Ok(Step::Failed(Failure::Bad));
        };
        for m in &self.members {
            if !m.available(cx, Some(&subject)).await? {
                continue;
            }
            let Step::Continue { state, .. } = m.begin(cx, Some(&subject)).await? else {
                continue;
            };
            if let Step::Done(f) = m.submit(cx, state, input).await?
                && f.subject == subject
            {
                return Ok(Step::Done(f));
            }
        }
        // Wrong, used or expired alike: the page never says which.
        Ok(Step::Failed(Failure::Bad))
    }
}
