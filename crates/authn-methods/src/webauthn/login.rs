//! The two WebAuthn login methods: [`PasskeyLogin`] (`webauthn`), a login by itself with a
//! credential the authenticator finds without an identifier typed (a discoverable passkey), and
//! [`SecurityKeyLogin`] (`webauthn-key`), after the password, with one of that person's
//! credentials (a security key that keeps none on the device). Both require the authenticator to
//! verify its owner (PIN or biometrics).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Passkeys, Verdict, internal};
use crate::method::{
    AuthContext, AuthError, AuthMethod, FactorKind, Failure, Input, MethodId, MethodState, Prompt, Step, Unusable,
};

pub const PASSKEY_METHOD_ID: MethodId = "webauthn";
pub const KEY_METHOD_ID: MethodId = "webauthn-key";
/// The field the page's script fills with the authenticator's answer (JSON).
pub const RESPONSE_FIELD: &str = "webauthn_response";

/// The login's private state: the ceremony under way, and the options to show again if the page
/// is posted without an answer (no JavaScript, or the person cancelled).
#[derive(Serialize, Deserialize)]
struct State {
    ceremony: String,
    options: String,
}

async fn begin(passkeys: &Passkeys, cx: &AuthContext, subject: Option<&str>) -> Result<Step, AuthError> {
    let Some((ceremony, options)) = passkeys.start_sign_in(&cx.interaction, subject).await? else {
        return Ok(Step::Failed(Failure::Unusable(Unusable::NotEnrolled)));
    };
    let prompt = Prompt::Passkey { options: options.clone() };
    let state = serde_json::to_value(State { ceremony, options }).map_err(internal)?;
    Ok(Step::Continue { state: MethodState(state), prompt })
}

async fn submit(
    passkeys: &Passkeys,
    cx: &AuthContext,
    state: MethodState,
    input: &Input,
    method: MethodId,
) -> Result<Step, AuthError> {
    let Ok(st) = serde_json::from_value::<State>(state.0) else {
        return Ok(Step::Failed(Failure::Expired));
    };
    let response = input.get(RESPONSE_FIELD).unwrap_or("").trim();
    if response.is_empty() {
        // Nothing from the authenticator: the ceremony stays open for another try.
        let prompt = Prompt::Passkey { options: st.options.clone() };
        let state = serde_json::to_value(st).map_err(internal)?;
        return Ok(Step::Continue { state: MethodState(state), prompt });
    }
    Ok(match passkeys.finish_sign_in(cx, &st.ceremony, response, method).await? {
        Verdict::Done(factor) => Step::Done(factor),
        Verdict::Bad => Step::Failed(Failure::Bad),
        Verdict::Expired => Step::Failed(Failure::Expired),
    })
}

/// A passkey, alone: no identifier typed.
pub struct PasskeyLogin {
    passkeys: Arc<Passkeys>,
}

impl PasskeyLogin {
    pub fn new(passkeys: Arc<Passkeys>) -> Self {
        PasskeyLogin { passkeys }
    }
}

#[async_trait]
impl AuthMethod for PasskeyLogin {
    fn id(&self) -> MethodId {
        PASSKEY_METHOD_ID
    }

    fn kind(&self) -> FactorKind {
        FactorKind::Possession
    }

    fn also_proves(&self) -> &'static [FactorKind] {
        &[FactorKind::Knowledge]
    }

    fn needs_subject(&self) -> bool {
        false
    }

    fn retry_in_place(&self) -> bool {
        false
    }

    async fn available(&self, _cx: &AuthContext, _subject: Option<&str>) -> Result<bool, AuthError> {
        Ok(true)
    }

    async fn begin(&self, cx: &AuthContext, _subject: Option<&str>) -> Result<Step, AuthError> {
        begin(&self.passkeys, cx, None).await
    }

    async fn submit(&self, cx: &AuthContext, state: MethodState, input: &Input) -> Result<Step, AuthError> {
        submit(&self.passkeys, cx, state, input, PASSKEY_METHOD_ID).await
    }
}

/// A security key (or passkey) of the person the password identified.
pub struct SecurityKeyLogin {
    passkeys: Arc<Passkeys>,
}

impl SecurityKeyLogin {
    pub fn new(passkeys: Arc<Passkeys>) -> Self {
        SecurityKeyLogin { passkeys }
    }
}

#[async_trait]
impl AuthMethod for SecurityKeyLogin {
    fn id(&self) -> MethodId {
        KEY_METHOD_ID
    }

    fn kind(&self) -> FactorKind {
        FactorKind::Possession
    }

    fn also_proves(&self) -> &'static [FactorKind] {
        &[FactorKind::Knowledge]
    }

    fn needs_subject(&self) -> bool {
        true
    }

    fn retry_in_place(&self) -> bool {
        false
    }

    async fn available(&self, _cx: &AuthContext, subject: Option<&str>) -> Result<bool, AuthError> {
        match subject {
            Some(s) => self.passkeys.has_credentials(s).await,
            None => Ok(false),
        }
    }

    async fn begin(&self, cx: &AuthContext, subject: Option<&str>) -> Result<Step, AuthError> {
        let Some(subject) = subject else {
            return Ok(Step::Failed(Failure::Bad));
        };
        begin(&self.passkeys, cx, Some(subject)).await
    }

    async fn submit(&self, cx: &AuthContext, state: MethodState, input: &Input) -> Result<Step, AuthError> {
        submit(&self.passkeys, cx, state, input, KEY_METHOD_ID).await
    }
}
