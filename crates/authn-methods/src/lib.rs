//! Strong authentication for Caducée: proving who a person is, and at which strength.
//!
//! Owns the [`AuthMethod`] trait the methods implement (password, TOTP, OTP tokens, mail OTP;
//! QR phone app, CPS card and WebAuthn later), push approval on the phone ([`push`], driven by
//! the engine, with the phones' signed requests in [`push_request`]), the methods themselves, the
//! enrolment of authenticators, attempt counters and lockouts ([`lockout`]) with the device
//! cookies that tell a professional's own browser from strangers ([`device`]), and the policy that
//! turns the factors used into `acr` and `amr` ([`policy`]). The [`engine::AuthEngine`] runs the
//! methods for the login pages and is the only place that counts failures.
//!
//! Must not depend on `oidc-core` (it knows nothing of OAuth) nor on `axum` (no HTTP here).

pub mod activation;
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
pub mod pskc;
pub mod push;
pub mod push_notify;
pub mod push_request;
pub mod store_keys;
pub mod totp;
pub mod user_agent;

pub use engine::{AuthEngine, Login, LoginAttempt, MailOtpAttempt, PushAttempt, PushLogin, Refusal};
pub use method::{
    AuthContext, AuthError, AuthMethod, FactorKind, FactorResult, Failure, Input, MethodState, Prompt, Step,
};
pub use policy::{AuthResult, Policy};
