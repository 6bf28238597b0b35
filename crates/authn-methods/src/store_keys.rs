//! The session store's keys this crate writes, in one place ([`session_store::keys`]).

use session_store::KeyPrefix;

/// Where a login stands (factors proven, method under way), by interaction.
pub const LOGIN_PROGRESS: KeyPrefix = KeyPrefix::new("login-progress");
/// A QR code shown on a login page, by challenge id.
pub const QR_CHALLENGE: KeyPrefix = KeyPrefix::new("qr-ch");
/// A push request, by challenge id.
pub const PUSH_CHALLENGE: KeyPrefix = KeyPrefix::new("push-ch");
/// A professional's pending push, by subject (one at a time).
pub const PUSH_CURRENT: KeyPrefix = KeyPrefix::new("push-current");
/// A phone enrolment code, by its hash.
pub const PUSH_ENROLMENT: KeyPrefix = KeyPrefix::new("push-enrol");
/// A phone request's `jti`, kept for the request's life (single use), as `push-jti:{scope}:{jti}`.
pub const PUSH_JTI: KeyPrefix = KeyPrefix::new("push-jti");
/// The push request a professional's phone has yet to answer, by subject (an unanswered one
/// counts toward auto-silence when the next comes).
pub const PUSH_OUTSTANDING: KeyPrefix = KeyPrefix::new("push-outstanding");
/// Refusals and unanswered requests since the last approval, by subject.
pub const PUSH_DENIALS: KeyPrefix = KeyPrefix::new("push-denials");
pub const PUSH_EXPIRIES: KeyPrefix = KeyPrefix::new("push-expiries");
/// Until when the phone is not woken (auto-silence), by subject.
pub const PUSH_SILENCE: KeyPrefix = KeyPrefix::new("push-silence");
/// A mailed one-time code's keyed hash, by subject.
pub const MAIL_OTP: KeyPrefix = KeyPrefix::new("mail-otp");
/// An activation code's keyed hash, by subject.
pub const ACTIVATION: KeyPrefix = KeyPrefix::new("activation");
/// A WebAuthn ceremony under way (sign-in or enrolment), by its random id.
pub const WEBAUTHN_CEREMONY: KeyPrefix = KeyPrefix::new("webauthn");
/// A CPS card challenge, by its nonce: the login it was issued for.
pub const CARD_CHALLENGE: KeyPrefix = KeyPrefix::new("card-ch");
/// The lockout ([`crate::lockout`]): by (identifier, source) pair, a hard lock, the wait before
/// the next attempt, the failures counted and the lock's escalation level; by identifier, the
/// failures from every source and the pairs to wipe on success.
pub const LOCK: KeyPrefix = KeyPrefix::new("lock");
pub const LOCK_WAIT: KeyPrefix = KeyPrefix::new("lock-wait");
pub const LOCK_ATTEMPTS: KeyPrefix = KeyPrefix::new("attempts");
pub const LOCK_LEVEL: KeyPrefix = KeyPrefix::new("lock-level");
pub const LOCK_FAILURES: KeyPrefix = KeyPrefix::new("lock-failures");
pub const LOCK_PAIRS: KeyPrefix = KeyPrefix::new("lock-pairs");

/// Login attempts per source address, across identifiers (password spraying).
pub const LIMIT_LOGINS_PER_ADDRESS: KeyPrefix = KeyPrefix::new("login-address");
/// Pushes per account, and per source address across accounts.
pub const LIMIT_PUSHES_PER_ACCOUNT: KeyPrefix = KeyPrefix::new("push-account");
pub const LIMIT_PUSHES_PER_ADDRESS: KeyPrefix = KeyPrefix::new("push-address");
/// Pushes a relying party asked by CIBA, across accounts.
pub const LIMIT_PUSHES_PER_CLIENT: KeyPrefix = KeyPrefix::new("push-client");
/// Mailed codes per source address, per account, and the spacing between two.
pub const LIMIT_MAILS_PER_ADDRESS: KeyPrefix = KeyPrefix::new("mail-otp-address");
pub const LIMIT_MAILS_PER_ACCOUNT: KeyPrefix = KeyPrefix::new("mail-otp-account");
pub const LIMIT_MAIL_SPACING: KeyPrefix = KeyPrefix::new("mail-otp-spacing");

/// Every family above.
pub const ALL: &[KeyPrefix] = &[
    LOGIN_PROGRESS,
    QR_CHALLENGE,
    PUSH_CHALLENGE,
    PUSH_CURRENT,
    PUSH_ENROLMENT,
    PUSH_JTI,
    PUSH_OUTSTANDING,
    PUSH_DENIALS,
    PUSH_EXPIRIES,
    PUSH_SILENCE,
    MAIL_OTP,
    ACTIVATION,
    WEBAUTHN_CEREMONY,
    CARD_CHALLENGE,
    LOCK,
    LOCK_WAIT,
    LOCK_ATTEMPTS,
    LOCK_LEVEL,
    LOCK_FAILURES,
    LOCK_PAIRS,
];
/// Every rate limit above.
pub const LIMITS: &[KeyPrefix] = &[
    LIMIT_LOGINS_PER_ADDRESS,
    LIMIT_PUSHES_PER_ACCOUNT,
    LIMIT_PUSHES_PER_ADDRESS,
    LIMIT_PUSHES_PER_CLIENT,
    LIMIT_MAILS_PER_ADDRESS,
    LIMIT_MAILS_PER_ACCOUNT,
    LIMIT_MAIL_SPACING,
];
