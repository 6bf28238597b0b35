//! Device cookies (OWASP, «Slow Down Online Guessing Attacks with Device Cookies»): after a
//! successful sign-in, the browser keeps a cookie saying «this identifier signed in here». An
//! attempt from a browser holding one for the identifier it names is counted apart from every
//! other source ([`crate::lockout::Source::TrustedDevice`]), so that the professional's own
//! browser keeps working while strangers hammer their public identifier.
//!
//! The cookie carries no secret and no identifier in clear: up to [`MAX_ENTRIES`] entries
//! `nonce.tag`, where `tag` is a keyed hash of the identifier and the random nonce under a key
//! derived from the master key. Without that key nobody can make an entry, and an entry made
//! for one identifier is worth nothing for another. A shared workstation keeps one entry for
//! each of the last few professionals who signed in there.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use directory::KeyedHash;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

/// The cookie's name.
pub const DEVICE_COOKIE: &str = "caducee_device";
/// How long a browser stays known: half a year.
pub const DEVICE_COOKIE_MAX_AGE_SECS: i64 = 183 * 24 * 3600;
/// Professionals remembered per browser (a shared workstation in a practice or a ward).
pub const MAX_ENTRIES: usize = 5;
/// Longer values are not ours: they are ignored, not parsed.
const MAX_COOKIE_LEN: usize = 512;
const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 16;

/// Reads and writes device cookies.
#[derive(Clone, Debug)]
pub struct DeviceCookies {
    key: KeyedHash,
}

impl DeviceCookies {
    pub fn new(key: KeyedHash) -> Self {
        DeviceCookies { key }
    }

    fn tag(&self, identifier: &str, nonce: &str) -> [u8; TAG_LEN] {
        let full = self.key.tag(&[b"device", identifier.as_bytes(), nonce.as_bytes()]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    fn verifies(&self, identifier: &str, nonce: &str, tag: &str) -> bool {
        let Ok(presented) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        bool::from(presented.as_slice().ct_eq(&self.tag(identifier, nonce)))
    }

    /// The nonce of the entry `cookie` holds for `identifier`, if one verifies: the browser
    /// signed in as this identifier before.
    pub fn trusted_nonce(&self, cookie: Option<&str>, identifier: &str) -> Option<String> {
        entries(cookie?).find(|(nonce, tag)| self.verifies(identifier, nonce, tag)).map(|(nonce, _)| nonce.to_owned())
    }

    /// The cookie's new value after a successful sign-in as `identifier`: a fresh entry for it
    /// first, then the other identifiers' entries, at most [`MAX_ENTRIES`].
    pub fn after_sign_in(&self, cookie: Option<&str>, identifier: &str) -> String {
        let mut bytes = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut bytes);
        let nonce = URL_SAFE_NO_PAD.encode(bytes);
        let fresh = format!("{nonce}.{}", URL_SAFE_NO_PAD.encode(self.tag(identifier, &nonce)));
        let others = cookie
            .into_iter()
            .flat_map(entries)
            .filter(|(nonce, tag)| !self.verifies(identifier, nonce, tag))
            .map(|(nonce, tag)| format!("{nonce}.{tag}"));
        std::iter::once(fresh).chain(others).take(MAX_ENTRIES).collect::<Vec<_>>().join("~")
    }
}

/// The well-formed entries of a cookie value (a forged or damaged one simply verifies nothing).
fn entries(cookie: &str) -> impl Iterator<Item = (&str, &str)> {
    let cookie = if cookie.len() > MAX_COOKIE_LEN { "" } else { cookie };
    cookie.split('~').take(MAX_ENTRIES).filter_map(|entry| {
        let (nonce, tag) = entry.split_once('.')?;
        let shaped = |s: &str, len: usize| {
            s.len() == (len * 4).div_ceil(3) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        (shaped(nonce, NONCE_LEN) && shaped(tag, TAG_LEN)).then_some((nonce, tag))
    })
}

#[cfg(test)]
mod tests {
    use directory::DataKey;

    use super::*;

    fn cookies(seed: u8) -> DeviceCookies {
        DeviceCookies::new(DataKey::from_bytes([seed; 32]).sub_keys().keyed_hash("device-cookie"))
    }

    #[test]
    fn a_browser_is_trusted_for_the_identifiers_that_signed_in_there_only() {
        let c = cookies(1);
        let value = c.after_sign_in(None, "899700000001");
        assert!(c.trusted_nonce(Some(&value), "899700000001").is_some());
        assert!(c.trusted_nonce(Some(&value), "899700000002").is_none(), "bound to its identifier");
        assert!(cookies(2).trusted_nonce(Some(&value), "899700000001").is_none(), "bound to the key");
        assert!(c.trusted_nonce(None, "899700000001").is_none());
        assert!(!value.contains("899700000001"), "no identifier in clear");
    }

    #[test]
    fn a_shared_browser_keeps_the_last_few_professionals() {
        let c = cookies(1);
        let mut value = c.after_sign_in(None, "a");
        value = c.after_sign_in(Some(&value), "b");
        let b_nonce = c.trusted_nonce(Some(&value), "b");
        value = c.after_sign_in(Some(&value), "b");
        assert_ne!(c.trusted_nonce(Some(&value), "b"), b_nonce, "a new sign-in renews the entry");
        assert_eq!(value.split('~').count(), 2, "one entry per identifier");
        for id in ["c", "d", "e", "f"] {
            value = c.after_sign_in(Some(&value), id);
        }
        assert_eq!(value.split('~').count(), MAX_ENTRIES);
        assert!(c.trusted_nonce(Some(&value), "f").is_some());
        assert!(c.trusted_nonce(Some(&value), "a").is_none(), "the oldest is forgotten");
    }

    #[test]
    fn forged_or_damaged_values_trust_nothing() {
        let c = cookies(1);
        let value = c.after_sign_in(None, "a");
        let (nonce, _) = value.split_once('.').unwrap_or_default();
        let forged = format!("{nonce}.AAAAAAAAAAAAAAAAAAAAAA");
        assert!(c.trusted_nonce(Some(&forged), "a").is_none());
        assert!(c.trusted_nonce(Some("garbage"), "a").is_none());
        assert!(c.trusted_nonce(Some(&"x.".repeat(1000)), "a").is_none());
        let long = format!("{value}~{}", "y".repeat(600));
        assert!(c.trusted_nonce(Some(&long), "a").is_none(), "an oversized value is ignored whole");
    }
}
