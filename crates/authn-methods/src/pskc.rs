//! Reading token seeds from PSKC files (RFC 6030), as OTP token vendors ship them: plain or
//! encrypted key containers (pre-shared AES key, or a key derived from a passphrase with
//! PBKDF2), with the MAC of every encrypted value checked before anything is trusted.
//!
//! Only what Caducée can verify is accepted (HOTP and TOTP keys answering in decimal digits);
//! anything else is refused with a typed error rather than guessed at.

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
const HOTP_URIS: [&str; 2] = ["urn:ietf:params:xml:ns:keyprov:pskc:hotp", "urn:ietf:params:xml:ns:keyprov:pskc#hotp"];
const TOTP_URIS: [&str; 2] = ["urn:ietf:params:xml:ns:keyprov:pskc:totp", "urn:ietf:params:xml:ns:keyprov:pskc#totp"];

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
    /// TOTP: the time step (seconds), its origin, and the known drift in steps.
    pub time_step: u64,
    pub t0: i64,
    pub drift: i64,
}

impl std::fmt::Debug for PskcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PskcKey")
            .field("serial", &self.serial)
            .field("kind", &self.kind)
            .field("digits", &self.digits)
            .field("counter", &self.counter)
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
    #[error("unsupported {what}: {value}")]
    Unsupported { what: &'static str, value: String },
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("the MAC of key {0} does not match: wrong key or passphrase, or the file was altered")]
    BadMac(String),
    #[error("cannot decrypt key {0}: wrong key or passphrase, or the file was altered")]
    Decrypt(String),
    #[error("key {0} has no secret")]
    NoSecret(String),
    #[error("the container holds no key")]
    Empty,
}

fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.is_element() && c.tag_name().name() == name)
}

fn path<'a, 'i>(node: Node<'a, 'i>, names: &[&str]) -> Option<Node<'a, 'i>> {
    names.iter().try_fold(node, |n, name| child(n, name))
}

fn text(node: Option<Node<'_, '_>>) -> Option<String> {
    node.and_then(|n| n.text()).map(|t| t.split_whitespace().collect::<String>()).filter(|t| !t.is_empty())
}

fn b64(value: &str, what: &'static str) -> Result<Vec<u8>, PskcError> {
    STANDARD.decode(value.split_whitespace().collect::<String>()).map_err(|_| PskcError::Malformed(what))
}

/// The container's encryption and MAC keys, once unlocked.
struct Keys {
    encryption: Option<Zeroizing<Vec<u8>>>,
    mac: Option<(hmac::Algorithm, Zeroizing<Vec<u8>>)>,
}

/// Reads every key of a PSKC document.
pub fn parse(xml: &str, unlock: &ContainerKey) -> Result<Vec<PskcKey>, PskcError> {
    let doc = Document::parse(xml).map_err(|e| PskcError::NotPskc(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "KeyContainer" || root.tag_name().namespace() != Some(PSKC_NS) {
        return Err(PskcError::NotPskc("the root is not a PSKC KeyContainer".into()));
    }
    match root.attribute("Version") {
        Some("1.0") => {}
        Some(v) => return Err(PskcError::Version(v.into())),
        None => return Err(PskcError::Version("(none)".into())),
    }
    let encryption = encryption_key(root, unlock)?;
    let mac = match child(root, "MACMethod") {
        None => None,
        Some(m) => {
            let alg = match m.attribute("Algorithm").unwrap_or("") {
                "http://www.w3.org/2000/09/xmldsig#hmac-sha1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256" => hmac::HMAC_SHA256,
                "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512" => hmac::HMAC_SHA512,
                other => return Err(PskcError::Unsupported { what: "MAC algorithm", value: other.into() }),
            };
            let key_node = child(m, "MACKey").ok_or(PskcError::Malformed("MACKey"))?;
            let key = decrypt_value(key_node, encryption.as_ref().map(|k| k.as_slice()), "MACKey")?;
            Some((alg, key))
        }
    };
    let keys = Keys { encryption, mac };
    let mut out = Vec::new();
    for package in root.children().filter(|c| c.is_element() && c.tag_name().name() == "KeyPackage") {
        for key in package.children().filter(|c| c.is_element() && c.tag_name().name() == "Key") {
            out.push(read_key(package, key, &keys)?);
        }
    }
    if out.is_empty() {
        return Err(PskcError::Empty);
    }
    Ok(out)
}

fn encryption_key(root: Node<'_, '_>, unlock: &ContainerKey) -> Result<Option<Zeroizing<Vec<u8>>>, PskcError> {
    let Some(enc) = child(root, "EncryptionKey") else {
        return Ok(None);
    };
    if let Some(derived) = child(enc, "DerivedKey") {
        let ContainerKey::Passphrase(passphrase) = unlock else {
            return Err(if matches!(unlock, ContainerKey::None) {
                PskcError::KeyNeeded
            } else {
                PskcError::WrongKeyKind("pre-shared key")
            });
        };
        let method = child(derived, "KeyDerivationMethod").ok_or(PskcError::Malformed("KeyDerivationMethod"))?;
        let alg = method.attribute("Algorithm").unwrap_or("");
        if !alg.ends_with("pkcs-5v2-0#pbkdf2") {
            return Err(PskcError::Unsupported { what: "key derivation", value: alg.into() });
        }
        let params = child(method, "PBKDF2-params").ok_or(PskcError::Malformed("PBKDF2-params"))?;
        let salt = b64(&text(path(params, &["Salt", "Specified"])).ok_or(PskcError::Malformed("Salt"))?, "Salt")?;
        let iterations: u32 = text(child(params, "IterationCount"))
            .and_then(|t| t.parse().ok())
            .ok_or(PskcError::Malformed("IterationCount"))?;
        let length: usize = text(child(params, "KeyLength")).and_then(|t| t.parse().ok()).unwrap_or(16);
        let prf = child(params, "PRF").and_then(|p| p.attribute("Algorithm")).unwrap_or("");
        let algorithm = match prf {
            "" | "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#hmac-sha1" => pbkdf2::PBKDF2_HMAC_SHA1,
            p if p.ends_with("hmac-sha256") => pbkdf2::PBKDF2_HMAC_SHA256,
            p if p.ends_with("hmac-sha512") => pbkdf2::PBKDF2_HMAC_SHA512,
            other => return Err(PskcError::Unsupported { what: "PBKDF2 PRF", value: other.into() }),
        };
        if !matches!(length, 16 | 24 | 32) {
            return Err(PskcError::Unsupported { what: "derived key length", value: length.to_string() });
        }
        let iterations = NonZeroU32::new(iterations).ok_or(PskcError::Malformed("IterationCount"))?;
        let mut key = Zeroizing::new(vec![0u8; length]);
        pbkdf2::derive(algorithm, iterations, &salt, passphrase.as_bytes(), &mut key);
        return Ok(Some(key));
    }
    if child(enc, "KeyName").is_some() {
        return match unlock {
            ContainerKey::PreShared(k) => Ok(Some(k.clone())),
            ContainerKey::None => Err(PskcError::KeyNeeded),
            ContainerKey::Passphrase(_) => Err(PskcError::WrongKeyKind("passphrase")),
        };
    }
    Err(PskcError::Unsupported { what: "EncryptionKey", value: "neither KeyName nor DerivedKey".into() })
}

/// Decrypts an `EncryptedValue`-like node (`xenc:EncryptionMethod` + `xenc:CipherData`): the IV
/// is the first block of the cipher value; padding is checked by its last byte (xmlenc allows
/// arbitrary padding bytes before it).
fn decrypt_value(node: Node<'_, '_>, key: Option<&[u8]>, label: &str) -> Result<Zeroizing<Vec<u8>>, PskcError> {
    let key = key.ok_or(PskcError::KeyNeeded)?;
    let alg = child(node, "EncryptionMethod").and_then(|m| m.attribute("Algorithm")).unwrap_or("");
    let (cipher, key_len) = match alg {
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc" => (&AES_128, 16),
        "http://www.w3.org/2001/04/xmlenc#aes192-cbc" => (&AES_192, 24),
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc" => (&AES_256, 32),
        other => return Err(PskcError::Unsupported { what: "encryption algorithm", value: other.into() }),
    };
    if key.len() != key_len {
        return Err(PskcError::Decrypt(label.into()));
    }
    let raw = b64(
        &text(path(node, &["CipherData", "CipherValue"])).ok_or(PskcError::Malformed("CipherValue"))?,
        "CipherValue",
    )?;
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

/// A `Data` element's value: plain (base64 or integer text) or encrypted, MAC checked.
fn data_value(
    data: Node<'_, '_>,
    name: &str,
    keys: &Keys,
    key_id: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, PskcError> {
    let Some(node) = child(data, name) else {
        return Ok(None);
    };
    if let Some(plain) = text(child(node, "PlainValue")) {
        // Secrets are base64; counters and times are decimal integers.
        return Ok(Some(Zeroizing::new(if name == "Secret" {
            b64(&plain, "PlainValue")?
        } else {
            plain.into_bytes()
        })));
    }
    let Some(encrypted) = child(node, "EncryptedValue") else {
        return Ok(None);
    };
    if let Some((alg, mac_key)) = &keys.mac {
        let expected = text(child(node, "ValueMAC")).ok_or_else(|| PskcError::BadMac(key_id.into()))?;
        let expected = b64(&expected, "ValueMAC")?;
        // RFC 6030 6.1.1: the MAC covers the IV and the cipher text as transmitted.
        let cipher_value =
            b64(&text(path(encrypted, &["CipherData", "CipherValue"])).unwrap_or_default(), "CipherValue")?;
        let mac_key = hmac::Key::new(*alg, mac_key);
        hmac::verify(&mac_key, &cipher_value, &expected).map_err(|_| PskcError::BadMac(key_id.into()))?;
    } else if keys.encryption.is_some() {
        // An encrypted value without a MAC could have been swapped: refuse it.
        return Err(PskcError::BadMac(key_id.into()));
    }
    let value = decrypt_value(encrypted, keys.encryption.as_ref().map(|k| k.as_slice()), key_id)?;
    if name == "Secret" {
        return Ok(Some(value));
    }
    // Encrypted integers are big-endian bytes; keep them as decimal text like the plain ones.
    let n = value.iter().fold(0u64, |acc, b| acc.wrapping_shl(8) | u64::from(*b));
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
    let params = child(key, "AlgorithmParameters");
    let format = params.and_then(|p| child(p, "ResponseFormat"));
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
    let suite = text(params.and_then(|p| child(p, "Suite"))).unwrap_or_default().to_ascii_uppercase();
    let algorithm = if suite.contains("SHA512") {
        HashAlgorithm::Sha512
    } else if suite.contains("SHA256") {
        HashAlgorithm::Sha256
    } else {
        HashAlgorithm::Sha1
    };
    let data = child(key, "Data").ok_or_else(|| PskcError::NoSecret(key_id.clone()))?;
    let secret = data_value(data, "Secret", keys, &key_id)?.ok_or_else(|| PskcError::NoSecret(key_id.clone()))?;
    let counter = integer(data_value(data, "Counter", keys, &key_id)?, "Counter")?.unwrap_or(0);
    let t0 = integer(data_value(data, "Time", keys, &key_id)?, "Time")?.unwrap_or(0);
    let step = integer(data_value(data, "TimeInterval", keys, &key_id)?, "TimeInterval")?.unwrap_or(30);
    let drift = integer(data_value(data, "TimeDrift", keys, &key_id)?, "TimeDrift")?.unwrap_or(0);
    let device = child(package, "DeviceInfo");
    let serial = text(device.and_then(|d| child(d, "SerialNo"))).unwrap_or_else(|| key_id.clone());
    if serial.is_empty() {
        return Err(PskcError::Malformed("serial number or key Id"));
    }
    Ok(PskcKey {
        serial,
        manufacturer: text(device.and_then(|d| child(d, "Manufacturer"))),
        issuer: text(child(key, "Issuer")),
        key_id,
        kind,
        secret,
        digits,
        algorithm,
        counter: u64::try_from(counter).map_err(|_| PskcError::Malformed("Counter"))?,
        time_step: u64::try_from(step).ok().filter(|s| *s > 0).ok_or(PskcError::Malformed("TimeInterval"))?,
        t0,
        drift,
    })
}
