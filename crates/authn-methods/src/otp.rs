//! HOTP (RFC 4226) and its time-based form TOTP (RFC 6238), over HMAC from aws-lc-rs, for OTP
//! tokens whose parameters (digits, hash, step, origin) come from their PSKC file.

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashAlgorithm {
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "SHA256")]
    Sha256,
    #[serde(rename = "SHA512")]
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Hotp,
    Totp,
}

/// The code for `counter` (RFC 4226 5.3: dynamic truncation, then modulo 10^digits).
pub fn hotp(secret: &[u8], counter: u64, digits: u32, algorithm: HashAlgorithm) -> String {
    let alg = match algorithm {
        HashAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlgorithm::Sha256 => hmac::HMAC_SHA256,
        HashAlgorithm::Sha512 => hmac::HMAC_SHA512,
    };
    let tag = hmac::sign(&hmac::Key::new(alg, secret), &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    let modulus = 10u64.pow(digits.min(10));
    format!("{:0width$}", u64::from(binary) % modulus, width = usize::try_from(digits).unwrap_or(6))
}

/// The TOTP time step of `now` for a token with `step` seconds and origin `t0`. `t0` comes from
/// the vendor's file and may be anything: the difference saturates rather than overflows.
pub fn time_step(now: i64, t0: i64, step: u64) -> i64 {
    now.saturating_sub(t0).div_euclid(i64::try_from(step).unwrap_or(30).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4226 Appendix D.
    #[test]
    fn hotp_rfc4226_vectors() {
        let secret = b"12345678901234567890";
        let expected =
            ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64, 6, HashAlgorithm::Sha1), *code);
        }
    }

    /// RFC 6238 Appendix B (8 digits).
    #[test]
    fn totp_rfc6238_vectors() {
        let sha1 = b"12345678901234567890";
        let sha256 = b"12345678901234567890123456789012";
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234";
        for (time, c1, c256, c512) in [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ] {
            let t = time_step(time, 0, 30) as u64;
            assert_eq!(hotp(sha1, t, 8, HashAlgorithm::Sha1), c1);
            assert_eq!(hotp(sha256, t, 8, HashAlgorithm::Sha256), c256);
            assert_eq!(hotp(sha512, t, 8, HashAlgorithm::Sha512), c512);
        }
    }
}
