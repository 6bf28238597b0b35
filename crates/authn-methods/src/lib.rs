//! Strong authentication for Caducée: proving who a person is, and at which strength.
//!
//! Owns the [`AuthMethod`] trait the methods implement (password, «Code OTP» over TOTP apps, OTP
//! tokens and activation codes, mail OTP, push approval on the phone, QR phone app, passkeys and security keys
//! ([`webauthn`]), the CPS card ([`card`]: challenge, certificate path, revocation lists)), push approval's service ([`push`], with the phones' signed requests in
//! [`push_request`]), where a login stands between steps ([`progress`]), the methods themselves, the
//! enrolment of authenticators, attempt counters and lockouts ([`lockout`]) with the device
//! cookies that tell a professional's own browser from strangers ([`device`]), and the policy that
//! turns the factors used into `acr` and `amr` and says which methods may come next
//! ([`policy`]). The [`engine::AuthEngine`] takes the steps the login pages ask for and is the
//! only place that counts failures.
//!
//! Must not depend on `oidc-core` (it knows nothing of OAuth) nor on `axum` (no HTTP here).

pub mod activation;
pub mod card;
pub mod code;
pub mod device;
pub mod engine;
pub mod enrolment;
pub mod hardware;
pub mod lockout;
pub mod mail_otp;
pub mod mailer;
pub mod method;
pub mod otp;
pub mod password;
pub mod policy;
mod progress;
pub mod pskc;
pub mod push;
pub mod push_notify;
pub mod push_request;
pub mod store_keys;
pub mod totp;
pub mod user_agent;
pub mod webauthn;

pub use engine::{AuthEngine, Login, Refusal, Shown, StepOp, StepOutcome, StepRequest, Then};
pub use method::{
    AuthContext, AuthError, AuthMethod, FactorKind, FactorResult, Failure, Input, MethodId, MethodState, Prompt, Step,
    Unusable,
};
pub use policy::{AuthResult, Policy};
