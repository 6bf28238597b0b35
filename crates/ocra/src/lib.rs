//! OCRA, the OATH Challenge-Response Algorithm (RFC 6287): the one-time answer a phone computes
//! from a challenge and a secret it shares with the provider, so that a professional can sign in
//! by typing it when the phone has no network («connexion par QR code», offline code).
//!
//! What it owns:
//! - the OCRA suite ([`Suite`]): parsing and checking `OCRA-1:HOTP-SHA256-8:QH32` and the like;
//! - the response ([`Suite::compute`]): the data input built exactly as RFC 6287's reference
//!   implementation does, its HMAC, HOTP's dynamic truncation, zero-padded to the suite's digits;
//! - the check of a typed response in constant time ([`verify`]).
//!
//! What it must not depend on: any other crate of this workspace. The provider and the phone app
//! (`caducee-authenticator`, which knows the provider only through its HTTP protocol) both use it,
//! so it stays a leaf: `aws-lc-rs` for HMAC and digests, `subtle` for the comparison, nothing else.
//!
//! What is supported:
//! - `CryptoFunction`: `HOTP-SHA1-t`, `HOTP-SHA256-t`, `HOTP-SHA512-t` with `t` from 4 to 10
//!   digits. `t = 0` (the whole HMAC, no truncation) is refused as [`OcraError::Unsupported`].
//! - `DataInput`: an optional counter `C` (8 bytes, big-endian), the question `QFxx` (mandatory;
//!   `F` is `A` alphanumeric, `N` numeric or `H` hexadecimal; `xx`, from 04 to 64, its maximum
//!   length) and an optional PIN hash `PSHA1`, `PSHA256` or `PSHA512`.
//! - Not supported, refused with [`OcraError::Unsupported`]: session information `Snnn` and
//!   timestamps `TG`. Nothing here needs them; a suite naming them is never silently computed
//!   without them.
//!
//! The question is encoded as the RFC's reference implementation does: a numeric question is the
//! decimal number written in hexadecimal (any size: the conversion works on digit vectors), a
//! hexadecimal question is taken as given, an alphanumeric question is its ASCII bytes in
//! hexadecimal; the hexadecimal digits are then right-padded with `0` to 256 digits, 128 bytes.
//! The data input is the suite's text, a `0x00` byte, the counter, the question's 128 bytes and
//! the PIN hash, each when the suite has them.
//!
//! Nothing here panics, whatever the suite, the question or the key.
//!
//! ```
//! use ocra::{DataInput, Suite};
//!
//! let suite = Suite::parse("OCRA-1:HOTP-SHA1-6:QN08")?;
//! let input = DataInput { question: "11111111", ..DataInput::default() };
//! assert_eq!(suite.compute(b"12345678901234567890", &input)?, "243178");
//! assert!(ocra::verify("243178", "243178"));
//! # Ok::<(), ocra::OcraError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::{digest, hmac};
use subtle::ConstantTimeEq as _;

/// The question's length once encoded: 128 bytes (256 hexadecimal digits).
pub const QUESTION_BYTES: usize = 128;

/// What can be wrong with a suite or with what is given to compute a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcraError {
    /// The suite is not written as RFC 6287 says.
    #[error("malformed OCRA suite: {0}")]
    MalformedSuite(&'static str),
    /// The suite is well formed but asks for something not implemented here (`S`, `T`, `t = 0`…).
    #[error("unsupported OCRA suite: {0}")]
    Unsupported(&'static str),
    /// The question does not fit the suite's `QFxx` (wrong characters, empty, too long).
    #[error("invalid OCRA question: {0}")]
    InvalidQuestion(&'static str),
    /// The suite has `C` and no counter was given.
    #[error("the OCRA suite takes a counter (C) and none was given")]
    MissingCounter,
    /// A counter was given to a suite without `C`.
    #[error("a counter was given but the OCRA suite takes none")]
    UnexpectedCounter,
    /// The suite has `P` and no PIN hash was given.
    #[error("the OCRA suite takes a PIN hash (P) and none was given")]
    MissingPasswordHash,
    /// A PIN hash was given to a suite without `P`.
    #[error("a PIN hash was given but the OCRA suite takes none")]
    UnexpectedPasswordHash,
    /// The PIN hash is not as long as the suite's `P` hash function makes them.
    #[error("the PIN hash has {got} bytes, the OCRA suite's hash function makes {expected}")]
    PasswordHashLength { expected: usize, got: usize },
    /// An empty key.
    #[error("empty OCRA key")]
    EmptyKey,
}

/// A hash function, of the HMAC (`HOTP-SHAx`) or of the PIN (`PSHAx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFunction {
    Sha1,
    Sha256,
    Sha512,
}

impl HashFunction {
    fn parse(name: &str) -> Result<HashFunction, OcraError> {
        match name {
            "SHA1" => Ok(HashFunction::Sha1),
            "SHA256" => Ok(HashFunction::Sha256),
            "SHA512" => Ok(HashFunction::Sha512),
            "" => Err(OcraError::MalformedSuite("hash function missing")),
            _ => Err(OcraError::Unsupported("hash functions are SHA1, SHA256 and SHA512")),
        }
    }

    /// Its name in a suite (`SHA256`).
    pub fn name(self) -> &'static str {
        match self {
            HashFunction::Sha1 => "SHA1",
            HashFunction::Sha256 => "SHA256",
            HashFunction::Sha512 => "SHA512",
        }
    }

    /// Its output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashFunction::Sha1 => 20,
            HashFunction::Sha256 => 32,
            HashFunction::Sha512 => 64,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            HashFunction::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            HashFunction::Sha256 => hmac::HMAC_SHA256,
            HashFunction::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            HashFunction::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashFunction::Sha256 => &digest::SHA256,
            HashFunction::Sha512 => &digest::SHA512,
        }
    }
}

/// The kind of question a suite takes (`F` in `QFxx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuestionKind {
    /// `A`: ASCII letters and digits.
    Alphanumeric,
    /// `N`: decimal digits.
    Numeric,
    /// `H`: hexadecimal digits (either case).
    Hexadecimal,
}

/// The question a suite takes: its kind and maximum length (`QFxx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuestionFormat {
    pub kind: QuestionKind,
    /// At most this many characters (4 to 64).
    pub max_len: usize,
}

/// A parsed OCRA suite, such as `OCRA-1:HOTP-SHA256-8:QH32`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Suite {
    text: String,
    hash: HashFunction,
    digits: u32,
    counter: bool,
    question: QuestionFormat,
    password: Option<HashFunction>,
}

/// What a response is computed from besides the key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataInput<'a> {
    /// The counter, when the suite has `C`.
    pub counter: Option<u64>,
    /// The question, as the suite's `QFxx` says (decimal, hexadecimal or alphanumeric text).
    pub question: &'a str,
    /// The PIN's hash, when the suite has `P` ([`Suite::hash_password`] makes it).
    pub password_hash: Option<&'a [u8]>,
}

impl Suite {
    /// Parses and checks a suite. Errors say whether it is malformed or merely unsupported
    /// (`S`, `T`, no truncation).
    pub fn parse(text: &str) -> Result<Suite, OcraError> {
        let mut parts = text.split(':');
        let (Some(version), Some(function), Some(data), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OcraError::MalformedSuite("three parts separated by ':' expected"));
        };
        if version != "OCRA-1" {
            return Err(match version.strip_prefix("OCRA-") {
                Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                    OcraError::Unsupported("only version OCRA-1 is supported")
                }
                _ => OcraError::MalformedSuite("the version must be OCRA-1"),
            });
        }
        let (hash, digits) = parse_function(function)?;
        let mut elements = data.split('-').peekable();
        let counter = elements.next_if_eq(&"C").is_some();
        let question = match elements.next() {
            Some(q) if q.starts_with('Q') => parse_question_format(q)?,
            Some("C") => return Err(OcraError::MalformedSuite("C given twice")),
            _ => {
                return Err(OcraError::MalformedSuite(
                    "the data input must have a question (QFxx) after the optional C",
                ));
            }
        };
        let mut password = None;
        for element in elements {
            match element.as_bytes().first() {
                Some(b'P') => {
                    if password.is_some() {
                        return Err(OcraError::MalformedSuite("P given twice"));
                    }
                    password = Some(HashFunction::parse(&element[1..])?);
                }
                Some(b'S') => return Err(OcraError::Unsupported("session information (S) is not supported")),
                Some(b'T') => return Err(OcraError::Unsupported("timestamps (T) are not supported")),
                Some(b'C') => return Err(OcraError::MalformedSuite("C must come first in the data input")),
                Some(b'Q') => return Err(OcraError::MalformedSuite("one question (QFxx) only")),
                _ => return Err(OcraError::MalformedSuite("unknown data input element")),
            }
        }
        Ok(Suite { text: text.to_owned(), hash, digits, counter, question, password })
    }

    /// The suite as written (it is part of the data input).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The HMAC's hash function.
    pub fn hash_function(&self) -> HashFunction {
        self.hash
    }

    /// How many digits a response has (4 to 10).
    pub fn digits(&self) -> u32 {
        self.digits
    }

    /// Whether the suite takes a counter (`C`).
    pub fn has_counter(&self) -> bool {
        self.counter
    }

    /// The question the suite takes.
    pub fn question_format(&self) -> QuestionFormat {
        self.question
    }

    /// The PIN's hash function, if the suite takes a PIN hash (`P`).
    pub fn password_hash_function(&self) -> Option<HashFunction> {
        self.password
    }

    /// The PIN's hash as the suite's `P` wants it, or `None` if the suite takes no PIN.
    pub fn hash_password(&self, pin: &[u8]) -> Option<Vec<u8>> {
        self.password.map(|h| digest::digest(h.digest(), pin).as_ref().to_vec())
    }

    /// The response to `input` under `key`: the suite's digits, zero-padded.
    pub fn compute(&self, key: &[u8], input: &DataInput<'_>) -> Result<String, OcraError> {
        let message = self.data_input(input)?;
        if key.is_empty() {
            return Err(OcraError::EmptyKey);
        }
        let tag = hmac::sign(&hmac::Key::new(self.hash.hmac(), key), &message);
        Ok(truncate(tag.as_ref(), self.digits))
    }

    /// The bytes that are HMACed: suite || 0x00 || C || Q || P.
    fn data_input(&self, input: &DataInput<'_>) -> Result<Vec<u8>, OcraError> {
        let question = encode_question(self.question, input.question)?;
        let mut message = Vec::with_capacity(self.text.len() + 1 + 8 + QUESTION_BYTES + 64);
        message.extend_from_slice(self.text.as_bytes());
        message.push(0);
        match (self.counter, input.counter) {
            (true, Some(c)) => message.extend_from_slice(&c.to_be_bytes()),
            (true, None) => return Err(OcraError::MissingCounter),
            (false, Some(_)) => return Err(OcraError::UnexpectedCounter),
            (false, None) => {}
        }
        message.extend_from_slice(&question);
        match (self.password, input.password_hash) {
            (Some(h), Some(hash)) if hash.len() == h.output_len() => message.extend_from_slice(hash),
            (Some(h), Some(hash)) => {
                return Err(OcraError::PasswordHashLength { expected: h.output_len(), got: hash.len() });
            }
            (Some(_), None) => return Err(OcraError::MissingPasswordHash),
            (None, Some(_)) => return Err(OcraError::UnexpectedPasswordHash),
            (None, None) => {}
        }
        Ok(message)
    }
}

impl FromStr for Suite {
    type Err = OcraError;

    fn from_str(s: &str) -> Result<Suite, OcraError> {
        Suite::parse(s)
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether the response typed matches the one expected, in time independent of where they
/// differ. The caller normalises what was typed (spaces…) first: this compares bytes.
pub fn verify(expected: &str, typed: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(typed.as_bytes()))
}

/// `HOTP-SHAx-t`.
fn parse_function(function: &str) -> Result<(HashFunction, u32), OcraError> {
    let Some(rest) = function.strip_prefix("HOTP-") else {
        return Err(OcraError::MalformedSuite("the crypto function must be HOTP-SHAx-t"));
    };
    let Some((hash, digits)) = rest.split_once('-') else {
        return Err(OcraError::MalformedSuite("the crypto function must be HOTP-SHAx-t"));
    };
    let hash = HashFunction::parse(hash)?;
    let canonical = !digits.is_empty() && digits.len() <= 2 && !(digits.len() == 2 && digits.starts_with('0'));
    if !canonical || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OcraError::MalformedSuite("the digits must be 0 or 4 to 10"));
    }
    match digits.parse::<u32>() {
        Ok(0) => Err(OcraError::Unsupported("responses without truncation (t = 0) are not supported")),
        Ok(t @ 4..=10) => Ok((hash, t)),
        _ => Err(OcraError::MalformedSuite("the digits must be 0 or 4 to 10")),
    }
}

/// `QFxx`.
fn parse_question_format(element: &str) -> Result<QuestionFormat, OcraError> {
    let bytes = element.as_bytes();
    let [b'Q', kind, d1 @ b'0'..=b'9', d2 @ b'0'..=b'9'] = *bytes else {
        return Err(OcraError::MalformedSuite("the question must be QFxx (F one of A, N, H; xx two digits)"));
    };
    let kind = match kind {
        b'A' => QuestionKind::Alphanumeric,
        b'N' => QuestionKind::Numeric,
        b'H' => QuestionKind::Hexadecimal,
        _ => return Err(OcraError::MalformedSuite("the question's format must be A, N or H")),
    };
    let max_len = usize::from(d1 - b'0') * 10 + usize::from(d2 - b'0');
    if !(4..=64).contains(&max_len) {
        return Err(OcraError::MalformedSuite("the question's length must be 04 to 64"));
    }
    Ok(QuestionFormat { kind, max_len })
}

/// The question's 128 bytes: its hexadecimal digits right-padded with zeros.
fn encode_question(format: QuestionFormat, question: &str) -> Result<[u8; QUESTION_BYTES], OcraError> {
    if question.is_empty() {
        return Err(OcraError::InvalidQuestion("empty"));
    }
    if question.len() > format.max_len {
        return Err(OcraError::InvalidQuestion("longer than the suite allows"));
    }
    let nibbles: Vec<u8> = match format.kind {
        QuestionKind::Numeric => {
            if !question.bytes().all(|b| b.is_ascii_digit()) {
                return Err(OcraError::InvalidQuestion("a numeric question has decimal digits only"));
            }
            decimal_to_hex(question.bytes().map(|b| b - b'0').collect())
        }
        QuestionKind::Hexadecimal => question
            .bytes()
            .map(hex_value)
            .collect::<Option<Vec<u8>>>()
            .ok_or(OcraError::InvalidQuestion("a hexadecimal question has hexadecimal digits only"))?,
        QuestionKind::Alphanumeric => {
            if !question.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(OcraError::InvalidQuestion("an alphanumeric question has ASCII letters and digits only"));
            }
            question.bytes().flat_map(|b| [b >> 4, b & 0x0f]).collect()
        }
    };
    // At most 54 digits for 64 decimal ones, 64 for hexadecimal, 128 for alphanumeric.
    if nibbles.len() > 2 * QUESTION_BYTES {
        return Err(OcraError::InvalidQuestion("longer than 128 bytes once encoded"));
    }
    let mut out = [0u8; QUESTION_BYTES];
    for (i, nibble) in nibbles.iter().enumerate() {
        let shift = if i % 2 == 0 { 4 } else { 0 };
        out[i / 2] |= nibble << shift;
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A decimal number (its digits, most significant first) in hexadecimal digits, most
/// significant first, without leading zeros (`0` for zero), as `BigInteger.toString(16)`.
fn decimal_to_hex(mut decimal: Vec<u8>) -> Vec<u8> {
    let mut hex = Vec::new();
    // Long division by 16, one hexadecimal digit (the remainder) per pass.
    loop {
        let first = decimal.iter().position(|&d| d != 0);
        let Some(first) = first else { break };
        decimal.drain(..first);
        let mut remainder: u32 = 0;
        for digit in decimal.iter_mut() {
            let current = remainder * 10 + u32::from(*digit);
            // current < 160, so the quotient is a decimal digit.
            *digit = (current / 16) as u8;
            remainder = current % 16;
        }
        hex.push(remainder as u8);
    }
    if hex.is_empty() {
        hex.push(0);
    }
    hex.reverse();
    hex
}

/// HOTP's dynamic truncation (RFC 4226 §5.3), `digits` digits zero-padded.
fn truncate(tag: &[u8], digits: u32) -> String {
    let offset = usize::from(tag.last().copied().unwrap_or(0) & 0x0f);
    let word = tag.get(offset..offset + 4).map(|b| u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]])).unwrap_or(0);
    let code = u64::from(word) % 10u64.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decimal_questions_become_hexadecimal_like_big_integer_to_string_16() {
        let hex = |s: &str| decimal_to_hex(s.bytes().map(|b| b - b'0').collect());
        assert_eq!(hex("0"), vec![0]);
        assert_eq!(hex("00000000"), vec![0]);
        assert_eq!(hex("15"), vec![15]);
        assert_eq!(hex("16"), vec![1, 0]);
        assert_eq!(hex("12345678"), vec![0xb, 0xc, 6, 1, 4, 0xe]);
        // 2^64 = 18446744073709551616 = 0x1_0000_0000_0000_0000
        let mut two_64 = vec![1];
        two_64.extend([0; 16]);
        assert_eq!(hex("18446744073709551616"), two_64);
        assert_eq!(hex(&"9".repeat(64)).len(), 54);
    }

    #[test]
    fn questions_are_right_padded_to_128_bytes() {
        let n = QuestionFormat { kind: QuestionKind::Numeric, max_len: 8 };
        let q = encode_question(n, "12345678").unwrap();
        assert_eq!(&q[..3], &[0xbc, 0x61, 0x4e]);
        assert!(q[3..].iter().all(|&b| b == 0));
        let odd = encode_question(n, "1").unwrap();
        assert_eq!(odd[0], 0x10);
        let a = QuestionFormat { kind: QuestionKind::Alphanumeric, max_len: 64 };
        let q = encode_question(a, &"z".repeat(64)).unwrap();
        assert!(q[..64].iter().all(|&b| b == b'z') && q[64..].iter().all(|&b| b == 0));
        let h = QuestionFormat { kind: QuestionKind::Hexadecimal, max_len: 32 };
        let q = encode_question(h, "ABCdef0").unwrap();
        assert_eq!(&q[..4], &[0xab, 0xcd, 0xef, 0x00]);
    }

    #[test]
    fn truncation_is_hotps() {
        // RFC 4226 §5.4's example: offset 10, 0x50ef7f19 = 1357872921.
        let tag = [
            0x1f, 0x86, 0x98, 0x69, 0x0e, 0x02, 0xca, 0x16, 0x61, 0x85, 0x50, 0xef, 0x7f, 0x19, 0xda, 0x8e, 0x94, 0x5b,
            0x55, 0x5a,
        ];
        assert_eq!(truncate(&tag, 6), "872921");
        assert_eq!(truncate(&tag, 10), "1357872921");
    }
}
