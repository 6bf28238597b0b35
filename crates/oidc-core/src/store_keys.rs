//! The session store's keys this crate writes, in one place ([`session_store::keys`]).

use session_store::KeyPrefix;

/// A login interaction (`ix:{id}`), until finished or expired.
pub const INTERACTION: KeyPrefix = KeyPrefix::new("ix");
/// An authorization code's record, by the code's hash.
pub const CODE: KeyPrefix = KeyPrefix::new("code");
/// An SSO session, by `sid`.
pub const SSO: KeyPrefix = KeyPrefix::new("sso");
/// The set of a professional's session ids.
pub const SSO_SUBJECT: KeyPrefix = KeyPrefix::new("sso-subject");
/// A logout waiting for the person's confirmation, by its token.
pub const LOGOUT_CONFIRMATION: KeyPrefix = KeyPrefix::new("logout");
/// A client assertion's `jti`, kept until its `exp` (single use), as `jti:{client}:{jti}`.
pub const CLIENT_ASSERTION_JTI: KeyPrefix = KeyPrefix::new("jti");
/// A revoked grant (refresh-token family), so that its access tokens die too.
pub const REVOKED_GRANT: KeyPrefix = KeyPrefix::new("revoked-grant");
/// A revoked access token, by `jti`.
pub const REVOKED_TOKEN: KeyPrefix = KeyPrefix::new("revoked-at");

/// A CIBA request, by the hash of its `auth_req_id`.
pub const CIBA_REQUEST: KeyPrefix = KeyPrefix::new("ciba");

/// Interactions started per source address.
pub const LIMIT_INTERACTIONS_PER_ADDRESS: KeyPrefix = KeyPrefix::new("interaction-address");
/// Interactions started per browser.
pub const LIMIT_INTERACTIONS_PER_BROWSER: KeyPrefix = KeyPrefix::new("interaction-browser");

/// Every family above.
pub const ALL: &[KeyPrefix] = &[
    INTERACTION,
    CODE,
    SSO,
    SSO_SUBJECT,
    LOGOUT_CONFIRMATION,
    CLIENT_ASSERTION_JTI,
    REVOKED_GRANT,
    REVOKED_TOKEN,
    CIBA_REQUEST,
];
/// Every rate limit above.
pub const LIMITS: &[KeyPrefix] = &[LIMIT_INTERACTIONS_PER_ADDRESS, LIMIT_INTERACTIONS_PER_BROWSER];
