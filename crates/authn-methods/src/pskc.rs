//! Reading token seeds from PSKC files (RFC 6030), as OTP token vendors ship them: plain or
//! encrypted key containers (pre-shared AES key, or a key derived from a passphrase with
//! PBKDF2), with the MAC of every encrypted value checked before anything is trusted.
//!
//! Only what Caducée can verify is accepted (HOTP and TOTP keys answering in decimal digits);
//! anything else is refused with a typed error rather than guessed at. Elements are matched by
//! namespace and name, so a look-alike element from another vocabulary is never read as ours.
//!
//! A key's `Policy` is honoured as RFC 6030 4.3.4 requires (anything in it we do not understand
//! makes the key unusable, so it is refused): validity dates are carried to the token, `KeyUsage`
//! must allow OTP, and a PIN may only be checked on the device itself (`PINUsageMode="Local"`);
//! the PIN keys such policies point to are the device's business and are skipped. An XML
//! signature (`ds:Signature`) on the container is not verified: the file is trusted as far as
//! its encryption and MACs go.

use std::collections::HashSet;
use std::num::NonZeroU32;

use aws_lc_rs::cipher::{AES_128, AES_192, AES_256, DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{hmac, pbkdf2};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::{Document, Node};
use zeroize::Zeroizing;

use crate::otp::{HashAlgorithm, TokenKind};

const PSKC_NS: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";
const PKCS5_NS: &str = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#";
const PBKDF2_URI: &str = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2";
const HOTP_URIS: [&str; 2] = ["urn:ietf:params:xml:ns:keyprov:pskc:hotp", "urn:ietf:params:xml:ns:keyprov:pskc#hotp"];
const TOTP_URIS: [&str; 2] = ["urn:ietf:params:xml:ns:keyprov:pskc:totp", "urn:ietf:params:xml:ns:keyprov:pskc#totp"];
const PIN_URIS: [&str; 2] = ["urn:ietf:params:xml:ns:keyprov:pskc:pin", "urn:ietf:params:xml:ns:keyprov:pskc#pin"];
/// A vendor file asking for more is broken or hostile: the import would hang the CLI.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// What unlocks an encrypted container.
#[derive(Clone)]
pub enum ContainerKey {
    None,
    /// The pre-shared key (`ds:KeyName`), as bytes.
    PreShared(Zeroizing<Vec<u8>>),
    /// The passphrase from which PBKDF2 derives the key (`xenc11:DerivedKey`).
    Passphrase(Zeroizing<String>),
}

/// One token seed read from a container.
pub struct PskcKey {
    /// The device serial number (`DeviceInfo/SerialNo`), else the key's `Id`.
    pub serial: String,
    pub key_id: String,
    pub manufacturer: Option<String>,
    pub issuer: Option<String>,
    pub kind: TokenKind,
    pub secret: Zeroizing<Vec<u8>>,
    pub digits: u32,
    pub algorithm: HashAlgorithm,
    /// HOTP: the next counter value.
    pub counter: u64,
    /// TOTP: the time step (seconds), its origin (`Time`, Unix seconds), and the known drift in
    /// steps (`TimeDrift`).
    pub time_step: u64,
    pub t0: i64,
    pub drift: i64,
    /// Validity (Unix seconds) from the key's policy and the device's dates, when given.
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
}

impl std::fmt::Debug for PskcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PskcKey")
            .field("serial", &self.serial)
            .field("key_id", &self.key_id)
            .field("kind", &self.kind)
            .field("digits", &self.digits)
            .field("algorithm", &self.algorithm)
            .field("counter", &self.counter)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PskcError {
    #[error("not a PSKC document: {0}")]
    NotPskc(String),
    #[error("unsupported PSKC version {0}")]
    Version(String),
    #[error("the container is encrypted: give its pre-shared key or passphrase")]
    KeyNeeded,
    #[error("the container is not encrypted with a {0}")]
    WrongKeyKind(&'static str),
    #[error("the pre-shared key has {given} bytes, the container's cipher needs {needed}")]
    KeyLength { given: usize, needed: usize },
    #[error("unsupported {what}: {value}")]
    Unsupported { what: &'static str, value: String },
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("key {0} is encrypted without a MAC: refusing a value that could have been swapped")]
    NoMac(String),
    #[error("the MAC of key {0} does not match: wrong key or passphrase, or the file was altered")]
    BadMac(String),
    #[error("cannot decrypt key {0}: wrong key or passphrase, or the file was altered")]
    Decrypt(String),
    #[error("key {0} has no secret")]
    NoSecret(String),
    #[error("the container holds no key")]
    Empty,
}

fn is(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| is(*c, ns, name))
}

fn children<'a, 'i: 'a>(node: Node<'a, 'i>, ns: &'a str, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |c| is(*c, ns, name))
}

/// A PSKC element below `node`, one name per level.
fn pskc<'a, 'i>(node: Node<'a, 'i>, names: &[&str]) -> Option<Node<'a, 'i>> {
    names.iter().try_fold(node, |n, name| child(n, PSKC_NS, name))
}

/// A child of `pkcs5:PBKDF2-params`: RFC 6030's own Figure 7 leaves them unqualified (no
/// namespace), the PKCS #5 schema qualifies them; both mean the same.
fn pbkdf2_param<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| {
        c.is_element() && c.tag_name().name() == name && matches!(c.tag_name().namespace(), None | Some(PKCS5_NS))
    })
}

fn text(node: Option<Node<'_, '_>>) -> Option<String> {
    node.and_then(|n| n.text()).map(|t| t.split_whitespace().collect::<String>()).filter(|t| !t.is_empty())
}

fn b64(value: &str, what: &'static str) -> Result<Vec<u8>, PskcError> {
    STANDARD.decode(value.split_whitespace().collect::<String>()).map_err(|_| PskcError::Malformed(what))
}

fn date(node: Option<Node<'_, '_>>, what: &'static str) -> Result<Option<i64>, PskcError> {
    match text(node) {
        None => Ok(None),
        // xs:dateTime without a zone names no instant: refused rather than read as UTC.
        Some(t) => t.parse::<jiff::Timestamp>().map(|ts| Some(ts.as_second())).map_err(|_| PskcError::Malformed(what)),
    }
}

/// The container's encryption and MAC keys, once unlocked.
struct Keys {
    encryption: Option<Zeroizing<Vec<u8>>>,
    mac: Option<(hmac::Algorithm, Zeroizing<Vec<u8>>)>,
}

/// Reads every OTP key of a PSKC document.
pub fn parse(xml: &str, unlock: &ContainerKey) -> Result<Vec<PskcKey>, PskcError> {
    let doc = Document::parse(xml).map_err(|e| PskcError::NotPskc(e.to_string()))?;
    let root = doc.root_element();
    if !is(root, PSKC_NS, "KeyContainer") {
        return Err(PskcError::NotPskc("the root is not a PSKC KeyContainer".into()));
    }
    match root.attribute("Version") {
        Some("1.0") => {}
        Some(v) => return Err(PskcError::Version(v.into())),
        None => return Err(PskcError::Version("(none)".into())),
    }
    let encryption = encryption_key(root, unlock)?;
    let mac = match child(root, PSKC_NS, "MACMethod") {
        None => None,
        Some(m) => {
            let alg = match m.attribute("Algorithm").unwrap_or("") {
                "http://www.w3.org/2000/09/xmldsig#hmac-sha1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256" => hmac::HMAC_SHA256,
                "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512" => hmac::HMAC_SHA512,
                other => return Err(PskcError::Unsupported { what: "MAC algorithm", value: other.into() }),
            };
            let key_node = child(m, PSKC_NS, "MACKey").ok_or(PskcError::Malformed("MACKey"))?;
            let key = decrypt_value(key_node, encryption.as_ref().map(|k| k.as_slice()), "MACKey")?;
            Some((alg, key))
        }
    };
    let keys = Keys { encryption, mac };
    let local_pins = local_pin_keys(root);
    let mut out = Vec::new();
    for package in children(root, PSKC_NS, "KeyPackage") {
        for key in children(package, PSKC_NS, "Key") {
            let algorithm = key.attribute("Algorithm").unwrap_or("");
            if PIN_URIS.contains(&algorithm) && key.attribute("Id").is_some_and(|id| local_pins.contains(id)) {
                continue;
            }
            out.push(read_key(package, key, &keys)?);
        }
    }
    if out.is_empty() {
        return Err(PskcError::Empty);
    }
    Ok(out)
}

/// Ids of the PIN keys that OTP keys say their device checks itself.
fn local_pin_keys<'a>(root: Node<'a, '_>) -> HashSet<&'a str> {
    root.descendants()
        .filter(|n| is(*n, PSKC_NS, "PINPolicy") && n.attribute("PINUsageMode") == Some("Local"))
        .filter_map(|n| n.attribute("PINKeyId"))
        .collect()
}

fn encryption_key(root: Node<'_, '_>, unlock: &ContainerKey) -> Result<Option<Zeroizing<Vec<u8>>>, PskcError> {
    let Some(enc) = child(root, PSKC_NS, "EncryptionKey") else {
        return Ok(None);
    };
    if let Some(derived) = child(enc, XENC11_NS, "DerivedKey") {
        let ContainerKey::Passphrase(passphrase) = unlock else {
            return Err(if matches!(unlock, ContainerKey::None) {
                PskcError::KeyNeeded
            } else {
                PskcError::WrongKeyKind("pre-shared key")
            });
        };
        return derive(derived, passphrase).map(Some);
    }
    if child(enc, DS_NS, "KeyName").is_some() {
        return match unlock {
            ContainerKey::PreShared(k) => Ok(Some(k.clone())),
            ContainerKey::None => Err(PskcError::KeyNeeded),
            ContainerKey::Passphrase(_) => Err(PskcError::WrongKeyKind("passphrase")),
        };
    }
    let found = enc.children().find(|c| c.is_element()).map(|c| c.tag_name().name().to_owned());
    Err(PskcError::Unsupported { what: "EncryptionKey", value: found.unwrap_or_else(|| "(empty)".into()) })
}

/// RFC 6030 6.2: PBKDF2 (RFC 8018) from the passphrase, PRF HMAC-SHA1 unless named.
fn derive(derived: Node<'_, '_>, passphrase: &str) -> Result<Zeroizing<Vec<u8>>, PskcError> {
    let method = child(derived, XENC11_NS, "KeyDerivationMethod").ok_or(PskcError::Malformed("KeyDerivationMethod"))?;
    let alg = method.attribute("Algorithm").unwrap_or("");
    if alg != PBKDF2_URI {
        return Err(PskcError::Unsupported { what: "key derivation", value: alg.into() });
    }
    let params = child(method, PKCS5_NS, "PBKDF2-params").ok_or(PskcError::Malformed("PBKDF2-params"))?;
    let salt_node = pbkdf2_param(params, "Salt").and_then(|s| pbkdf2_param(s, "Specified"));
    let salt = b64(&text(salt_node).ok_or(PskcError::Malformed("Salt"))?, "Salt")?;
    let iterations = text(pbkdf2_param(params, "IterationCount"))
        .and_then(|t| t.parse::<u32>().ok())
        .and_then(NonZeroU32::new)
        .ok_or(PskcError::Malformed("IterationCount"))?;
    if iterations.get() > MAX_PBKDF2_ITERATIONS {
        return Err(PskcError::Unsupported { what: "PBKDF2 iteration count", value: iterations.to_string() });
    }
    let length = match text(pbkdf2_param(params, "KeyLength")) {
        None => 16,
        Some(t) => t.parse::<usize>().map_err(|_| PskcError::Malformed("KeyLength"))?,
    };
    if !matches!(length, 16 | 24 | 32) {
        return Err(PskcError::Unsupported { what: "derived key length", value: length.to_string() });
    }
    let prf = pbkdf2_param(params, "PRF").and_then(|p| p.attribute("Algorithm")).unwrap_or("");
    let algorithm = match prf {
        "" | "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#hmac-sha1" => pbkdf2::PBKDF2_HMAC_SHA1,
        "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#hmac-sha256"
        | "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256" => pbkdf2::PBKDF2_HMAC_SHA256,
        "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#hmac-sha512"
        | "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512" => pbkdf2::PBKDF2_HMAC_SHA512,
        other => return Err(PskcError::Unsupported { what: "PBKDF2 PRF", value: other.into() }),
    };
    let mut key = Zeroizing::new(vec![0u8; length]);
    pbkdf2::derive(algorithm, iterations, &salt, passphrase.as_bytes(), &mut key);
    Ok(key)
}

/// Decrypts an `EncryptedValue`-like node (`xenc:EncryptionMethod` + `xenc:CipherData`): the IV
/// is the first block of the cipher value; padding is checked by its last byte (xmlenc allows
/// arbitrary padding bytes before it).
fn decrypt_value(node: Node<'_, '_>, key: Option<&[u8]>, label: &str) -> Result<Zeroizing<Vec<u8>>, PskcError> {
    let key = key.ok_or(PskcError::KeyNeeded)?;
    let alg = child(node, XENC_NS, "EncryptionMethod")
        .and_then(|m| m.attribute("Algorithm"))
        .ok_or(PskcError::Malformed("EncryptionMethod"))?;
    let (cipher, key_len) = match alg {
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc" => (&AES_128, 16),
        "http://www.w3.org/2001/04/xmlenc#aes192-cbc" => (&AES_192, 24),
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc" => (&AES_256, 32),
        other => return Err(PskcError::Unsupported { what: "encryption algorithm", value: other.into() }),
    };
    if key.len() != key_len {
        return Err(PskcError::KeyLength { given: key.len(), needed: key_len });
    }
    let raw = Zeroizing::new(b64(&cipher_value_text(node)?, "CipherValue")?);
    if raw.len() < 32 || raw.len() % 16 != 0 {
        return Err(PskcError::Decrypt(label.into()));
    }
    let (iv, data) = raw.split_at(16);
    let mut iv_bytes = [0u8; 16];
    iv_bytes.copy_from_slice(iv);
    let unbound = UnboundCipherKey::new(cipher, key).map_err(|_| PskcError::Decrypt(label.into()))?;
    let decrypting = DecryptingKey::cbc(unbound).map_err(|_| PskcError::Decrypt(label.into()))?;
    let mut buf = Zeroizing::new(data.to_vec());
    let plain = decrypting
        .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv_bytes)))
        .map_err(|_| PskcError::Decrypt(label.into()))?;
    let pad = usize::from(*plain.last().ok_or(PskcError::Decrypt(label.into()))?);
    if pad == 0 || pad > 16 || pad > plain.len() {
        return Err(PskcError::Decrypt(label.into()));
    }
    Ok(Zeroizing::new(plain[..plain.len() - pad].to_vec()))
}

fn cipher_value_text(node: Node<'_, '_>) -> Result<String, PskcError> {
    let data = child(node, XENC_NS, "CipherData");
    text(data.and_then(|d| child(d, XENC_NS, "CipherValue"))).ok_or(PskcError::Malformed("CipherValue"))
}

/// A `Data` element's value: plain (base64 or integer text) or encrypted, MAC checked first.
fn data_value(
    data: Node<'_, '_>,
    name: &str,
    keys: &Keys,
    key_id: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, PskcError> {
    let Some(node) = child(data, PSKC_NS, name) else {
        return Ok(None);
    };
    if let Some(plain) = text(child(node, PSKC_NS, "PlainValue")) {
        let plain = Zeroizing::new(plain);
        // Secrets are base64; counters and times are decimal integers.
        return Ok(Some(Zeroizing::new(if name == "Secret" {
            b64(&plain, "PlainValue")?
        } else {
            plain.as_bytes().to_vec()
        })));
    }
    let Some(encrypted) = child(node, PSKC_NS, "EncryptedValue") else {
        return Ok(None);
    };
    let Some((alg, mac_key)) = &keys.mac else {
        // AES-CBC has no integrity of its own (RFC 6030 6.1.1): without a MAC a value could
        // have been swapped or altered unnoticed.
        return Err(PskcError::NoMac(key_id.into()));
    };
    let expected = text(child(node, PSKC_NS, "ValueMAC")).ok_or_else(|| PskcError::NoMac(key_id.into()))?;
    let expected = b64(&expected, "ValueMAC")?;
    // RFC 6030 6.1.1: the MAC covers the IV and the cipher text as transmitted.
    let cipher_value = b64(&cipher_value_text(encrypted)?, "CipherValue")?;
    // `verify` compares in constant time.
    hmac::verify(&hmac::Key::new(*alg, mac_key), &cipher_value, &expected)
        .map_err(|_| PskcError::BadMac(key_id.into()))?;
    let value = decrypt_value(encrypted, keys.encryption.as_ref().map(|k| k.as_slice()), key_id)?;
    if name == "Secret" {
        return Ok(Some(value));
    }
    // Encrypted integers are big-endian bytes; keep them as decimal text like the plain ones.
    if value.len() > 8 {
        return Err(PskcError::Malformed("encrypted integer"));
    }
    let n = value.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    Ok(Some(Zeroizing::new(n.to_string().into_bytes())))
}

fn integer(bytes: Option<Zeroizing<Vec<u8>>>, what: &'static str) -> Result<Option<i64>, PskcError> {
    match bytes {
        None => Ok(None),
        Some(b) => {
            std::str::from_utf8(&b).ok().and_then(|s| s.trim().parse().ok()).map(Some).ok_or(PskcError::Malformed(what))
        }
    }
}

/// The hash of a key's `Suite`: HOTP is HMAC-SHA1 (RFC 4226); TOTP may use SHA-256 or SHA-512.
fn suite(key: Node<'_, '_>, kind: TokenKind) -> Result<HashAlgorithm, PskcError> {
    let Some(raw) = text(pskc(key, &["AlgorithmParameters", "Suite"])) else {
        return Ok(HashAlgorithm::Sha1);
    };
    let algorithm = match raw.to_ascii_uppercase().replace(['-', '_'], "").as_str() {
        "SHA1" | "HMACSHA1" => HashAlgorithm::Sha1,
        "SHA256" | "HMACSHA256" => HashAlgorithm::Sha256,
        "SHA512" | "HMACSHA512" => HashAlgorithm::Sha512,
        _ => return Err(PskcError::Unsupported { what: "algorithm suite", value: raw }),
    };
    if kind == TokenKind::Hotp && algorithm != HashAlgorithm::Sha1 {
        return Err(PskcError::Unsupported { what: "HOTP algorithm suite", value: raw });
    }
    Ok(algorithm)
}

/// The validity a key's `Policy` gives, refusing what it does not understand (RFC 6030 4.3.4:
/// key usage is then not permitted).
fn policy(key: Node<'_, '_>) -> Result<(Option<i64>, Option<i64>), PskcError> {
    let Some(policy) = child(key, PSKC_NS, "Policy") else {
        return Ok((None, None));
    };
    let (mut not_before, mut not_after) = (None, None);
    let mut usages = Vec::new();
    for item in policy.children().filter(|c| c.is_element()) {
        let name = item.tag_name().name();
        if item.tag_name().namespace() != Some(PSKC_NS) {
            return Err(PskcError::Unsupported { what: "key policy", value: name.into() });
        }
        match name {
            "StartDate" => not_before = date(Some(item), "StartDate")?,
            "ExpiryDate" => not_after = date(Some(item), "ExpiryDate")?,
            "KeyUsage" => usages.extend(text(Some(item))),
            "PINPolicy" => pin_policy(item)?,
            other => return Err(PskcError::Unsupported { what: "key policy", value: other.into() }),
        }
    }
    if !usages.is_empty() && !usages.iter().any(|u| u == "OTP") {
        return Err(PskcError::Unsupported { what: "key usage", value: usages.join(" ") });
    }
    Ok((not_before, not_after))
}

/// Only a PIN the device checks itself leaves the server nothing to do.
fn pin_policy(node: Node<'_, '_>) -> Result<(), PskcError> {
    const KNOWN: [&str; 6] = ["PINKeyId", "PINUsageMode", "MaxFailedAttempts", "MinLength", "MaxLength", "PINEncoding"];
    if let Some(a) = node.attributes().find(|a| a.namespace().is_some() || !KNOWN.contains(&a.name())) {
        return Err(PskcError::Unsupported { what: "PIN policy", value: a.name().into() });
    }
    match node.attribute("PINUsageMode") {
        Some("Local") => Ok(()),
        other => Err(PskcError::Unsupported { what: "PIN usage mode", value: other.unwrap_or("(none)").into() }),
    }
}

fn read_key(package: Node<'_, '_>, key: Node<'_, '_>, keys: &Keys) -> Result<PskcKey, PskcError> {
    let key_id = key.attribute("Id").unwrap_or("").to_owned();
    let algorithm_uri = key.attribute("Algorithm").unwrap_or("");
    let kind = if HOTP_URIS.contains(&algorithm_uri) {
        TokenKind::Hotp
    } else if TOTP_URIS.contains(&algorithm_uri) {
        TokenKind::Totp
    } else {
        return Err(PskcError::Unsupported { what: "key algorithm", value: algorithm_uri.into() });
    };
    let format = pskc(key, &["AlgorithmParameters", "ResponseFormat"]);
    let digits = match format.and_then(|f| f.attribute("Length")) {
        None => 6,
        Some(l) => l.parse::<u32>().map_err(|_| PskcError::Malformed("ResponseFormat Length"))?,
    };
    if !(6..=10).contains(&digits) {
        return Err(PskcError::Unsupported { what: "code length", value: digits.to_string() });
    }
    match format.and_then(|f| f.attribute("Encoding")) {
        None | Some("DECIMAL") => {}
        Some(other) => return Err(PskcError::Unsupported { what: "code encoding", value: other.into() }),
    }
    if format.and_then(|f| f.attribute("CheckDigits")).is_some_and(|c| c == "true" || c == "1") {
        return Err(PskcError::Unsupported { what: "code format", value: "CheckDigits".into() });
    }
    let algorithm = suite(key, kind)?;
    let (mut not_before, mut not_after) = policy(key)?;
    let device = child(package, PSKC_NS, "DeviceInfo");
    // The device's own dates bound its keys' too.
    if let Some(d) = date(device.and_then(|d| child(d, PSKC_NS, "StartDate")), "StartDate")? {
        not_before = Some(not_before.map_or(d, |n| n.max(d)));
    }
    if let Some(d) = date(device.and_then(|d| child(d, PSKC_NS, "ExpiryDate")), "ExpiryDate")? {
        not_after = Some(not_after.map_or(d, |n| n.min(d)));
    }
    let data = child(key, PSKC_NS, "Data");
    let secret = match data {
        Some(data) => data_value(data, "Secret", keys, &key_id)?,
        None => None,
    };
    let Some(secret) = secret else {
        if child(key, PSKC_NS, "KeyReference").is_some() {
            // RFC 6030 Figure 4: the server would derive the seed from a master key it holds.
            return Err(PskcError::Unsupported { what: "key without a seed", value: "KeyReference".into() });
        }
        return Err(PskcError::NoSecret(key_id));
    };
    let value = |name: &'static str| -> Result<Option<i64>, PskcError> {
        match data {
            Some(data) => integer(data_value(data, name, keys, &key_id)?, name),
            None => Ok(None),
        }
    };
    let counter = value("Counter")?.unwrap_or(0);
    let t0 = value("Time")?.unwrap_or(0);
    let step = value("TimeInterval")?.unwrap_or(30);
    if step <= 0 {
        return Err(PskcError::Malformed("TimeInterval"));
    }
    let drift = value("TimeDrift")?.unwrap_or(0);
    // The origin is an instant and the drift a number of steps: either one beyond any date
    // (years -9999 to 9999) is a broken file, refused here rather than kept as a token that
    // can match no code.
    if jiff::Timestamp::from_second(t0).is_err() {
        return Err(PskcError::Malformed("Time"));
    }
    if drift.checked_mul(step).is_none_or(|shift| jiff::Timestamp::from_second(t0.saturating_add(shift)).is_err()) {
        return Err(PskcError::Malformed("TimeDrift"));
    }
    let serial = text(device.and_then(|d| child(d, PSKC_NS, "SerialNo"))).unwrap_or_else(|| key_id.clone());
    if serial.is_empty() {
        return Err(PskcError::Malformed("serial number or key Id"));
    }
    Ok(PskcKey {
        serial,
        manufacturer: text(device.and_then(|d| child(d, PSKC_NS, "Manufacturer"))),
        issuer: text(child(key, PSKC_NS, "Issuer")),
        key_id,
        kind,
        secret,
        digits,
        algorithm,
        counter: u64::try_from(counter).map_err(|_| PskcError::Malformed("Counter"))?,
        time_step: u64::try_from(step).map_err(|_| PskcError::Malformed("TimeInterval"))?,
        t0,
        drift,
        not_before,
        not_after,
    })
}
