//! Small protocol helpers shared by the modules: random handles, hashes, constant-time comparison.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

/// A fresh random handle of 256 bits, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A shorter random identifier (128 bits) for values that are not secrets (jti, sid, kid).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `input`, base64url without padding. Used to key stored secrets by their hash, so
/// that a dump of the store does not hand out usable codes or tokens.
pub fn sha256_b64(input: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, input).as_ref())
}

/// SHA-256 of `input`, lower-case hex.
pub fn sha256_hex(input: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, input);
    let mut out = String::with_capacity(64);
    for b in d.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Compares two secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The left-most half of the SHA-256 digest, base64url: `at_hash` and `c_hash` for the SHA-256
/// family of algorithms (OIDC Core 3.1.3.6).
pub fn half_hash(input: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, input);
    let bytes = d.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// Splits a space-delimited parameter (scope, acr_values, prompt, ui_locales) into its values.
pub fn split_spaces(value: &str) -> impl Iterator<Item = &str> {
    value.split(' ').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn at_hash_matches_the_spec_example() {
        // Checked against `openssl dgst -sha256` truncated to 16 bytes.
        assert_eq!(half_hash(b"abc"), "ungWv48Bz-pBQUDeXa4iIw");
    }

    #[test]
    fn constant_time_eq_checks_length_and_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn hex_digest() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
