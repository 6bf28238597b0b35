//! Secrets carried by requests and answers (client secrets and assertions, codes, PKCE
//! verifiers, tokens, ID token hints) are [`SecretString`]s: their `Debug` says `[REDACTED]`,
//! so no log line or error message built from a request can carry one, and they are wiped
//! when dropped. Reading one is explicit ([`ExposeSecret::expose_secret`]).

pub use secrecy::{ExposeSecret, SecretString};

/// The text of an optional secret, for code that reads it.
pub fn exposed(secret: &Option<SecretString>) -> Option<&str> {
    secret.as_ref().map(ExposeSecret::expose_secret)
}

/// Writes a secret as its plain text, for answers that hand it over (`serialize_with`).
pub fn serialize<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

/// [`serialize`] for an optional secret.
pub fn serialize_option<S: serde::Serializer>(secret: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(s) => serializer.serialize_some(s.expose_secret()),
        None => serializer.serialize_none(),
    }
}
