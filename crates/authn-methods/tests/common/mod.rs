//! What the engine's tests share.

use authn_methods::{AuthContext, AuthEngine, AuthError, Input, StepOp, StepOutcome, StepRequest, Then};

/// The documented one-form login (docs/login-ui.md): identifier, password and code at once.
pub async fn one_form(
    engine: &AuthEngine,
    cx: &AuthContext,
    username: &str,
    password: &str,
    otp: &str,
) -> Result<StepOutcome, AuthError> {
    let input = Input::new().with("username", username).with("password", password).with("otp", otp);
    let then = Some(Then { method: "otp", in_one_go: true });
    engine.step(cx, StepRequest { method: "pwd", op: StepOp::Submit, input: &input, then }).await
}
