//! sea-orm entities, one per table. Private to the crate: callers see the typed records of each
//! repository, never these rows (JSON columns are text here and typed there).

pub(crate) mod admin_role;
pub(crate) mod audit_log;
pub(crate) mod authenticator;
pub(crate) mod client;
pub(crate) mod logout_delivery;
pub(crate) mod professional;
pub(crate) mod push_block;
pub(crate) mod refresh_token;
pub(crate) mod signing_key;
