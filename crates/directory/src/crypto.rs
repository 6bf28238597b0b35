//! Secrets at rest: AES-256-GCM under the operator's data key, keyed hashes (HMAC-SHA256) under
//! keys derived from it for one purpose each, and SHA-256 helpers.
//!
//! Sealed layout: `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`. The
//! version byte leaves room for a future algorithm or key rotation without guessing formats.
//! The AAD names the row a ciphertext belongs to, so that copying a ciphertext into another row
//! (e.g. one's own TOTP seed onto someone else's authenticator) fails to decrypt.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::{digest, hkdf, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::DirectoryError;

const SEAL_V1: u8 = 1;
const TAG_LEN: usize = 16;

/// The master key protecting secrets at rest (authenticator seeds, signing keys).
///
/// Losing it makes those secrets unreadable; changing it requires re-encrypting them.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl DataKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        DataKey(bytes)
    }

    /// Accepts exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DirectoryError> {
        let arr: [u8; 32] =
            bytes.try_into().map_err(|_| DirectoryError::Invalid("a data key is exactly 32 bytes".into()))?;
        Ok(DataKey(arr))
    }

    /// Parses standard base64 (the form the server keeps in its key file or environment).
    pub fn from_base64(text: &str) -> Result<Self, DirectoryError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|e| DirectoryError::Invalid(format!("data key is not base64: {e}")))?,
        );
        Self::from_slice(&bytes)
    }

    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, DirectoryError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| DirectoryError::Crypto)?;
        Ok(DataKey(bytes))
    }

    /// Standard base64 of the key, for writing a generated key to the operator's key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The source of this key's purpose keys (see [`SubKeys`]).
    pub fn sub_keys(&self) -> SubKeys {
        SubKeys(hkdf::Salt::new(hkdf::HKDF_SHA256, SUBKEY_SALT).extract(&self.0))
    }
}

/// Salt of the HKDF extraction: fixed, so that every node derives the same keys from one master key.
const SUBKEY_SALT: &[u8] = b"caducee-subkeys-v1";

/// Keys derived from the master key (HKDF-SHA256), one per purpose: a keyed hash made for one
/// use (mail codes, activation codes, the audit chain, identifiers) cannot be replayed as
/// another, and none of them reveals the master key.
#[derive(Clone)]
pub struct SubKeys(hkdf::Prk);

impl SubKeys {
    /// The keyed hash for `purpose` (a stable label such as `"mail-otp"`).
    pub fn keyed_hash(&self, purpose: &str) -> KeyedHash {
        let info = [purpose.as_bytes()];
        // Expanding 32 bytes of SHA-256 output never exceeds HKDF's limit (255 blocks).
        let key = match self.0.expand(&info, hmac::HMAC_SHA256) {
            Ok(okm) => hmac::Key::from(okm),
            Err(_) => hmac::Key::new(hmac::HMAC_SHA256, purpose.as_bytes()),
        };
        KeyedHash(key)
    }
}

impl SubKeys {
    /// A 32-byte secret for `purpose`, for a MAC another library computes (an HS256 JWT).
    pub fn secret(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        struct Len32;
        impl hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let mut out = Zeroizing::new([0u8; 32]);
        let info = [purpose.as_bytes()];
        // 32 bytes never exceed HKDF's limit; should it fail, the purpose's keyed hash of
        // nothing stands in (still under the master key).
        if self.0.expand(&info, Len32).and_then(|okm| okm.fill(&mut out[..])).is_err() {
            out.copy_from_slice(&self.keyed_hash(purpose).tag(&[]));
        }
        out
    }
}

impl std::fmt::Debug for SubKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubKeys(<redacted>)")
    }
}

/// HMAC-SHA256 under a key of one purpose. Whoever reads a stored value without the master key
/// cannot test guesses against it (a 6-digit code, a national identifier), unlike a bare hash.
#[derive(Clone)]
pub struct KeyedHash(hmac::Key);

impl KeyedHash {
    /// The MAC of `parts`, each length-prefixed so that `("ab", "c")` and `("a", "bc")` differ.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// [`KeyedHash::tag`] in lower-case hex.
    pub fn hex(&self, parts: &[&[u8]]) -> String {
        hex(&self.tag(parts))
    }
}

impl std::fmt::Debug for KeyedHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHash(<redacted>)")
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// The AEAD key derived from a [`DataKey`], built once per [`crate::Directory`].
pub(crate) struct Sealer {
    key: RandomizedNonceKey,
}

impl Sealer {
    pub(crate) fn new(key: &DataKey) -> Result<Self, DirectoryError> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, key.as_bytes()).map_err(|_| DirectoryError::Crypto)?;
        Ok(Sealer { key })
    }

    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, DirectoryError> {
        // Enough room for the tag so that the buffer holding the plaintext is never reallocated
        // (which would leave a plaintext copy behind in freed memory).
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        let nonce = self.key.seal_in_place_append_tag(Aad::from(aad), &mut buf).map_err(|_| DirectoryError::Crypto)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(SEAL_V1);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, DirectoryError> {
        let (version, rest) = sealed.split_first().ok_or(DirectoryError::Crypto)?;
        if *version != SEAL_V1 || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(DirectoryError::Crypto);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| DirectoryError::Crypto)?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self.key.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| DirectoryError::Crypto)?.len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// AAD for a sealed column: a purpose label then each part length-prefixed, so that
/// `("ab", "c")` and `("a", "bc")` never collide.
pub(crate) fn aad(purpose: &str, parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in std::iter::once(&purpose).chain(parts.iter()) {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let key = DataKey::generate().unwrap();
        let sealer = Sealer::new(&key).unwrap();
        let a = aad("authenticator", &["id-1", "totp"]);
        let sealed = sealer.seal(b"secret seed", &a).unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"secret seed"));
        assert_eq!(&sealer.open(&sealed, &a).unwrap()[..], b"secret seed");

        let other_row = aad("authenticator", &["id-2", "totp"]);
        assert!(matches!(sealer.open(&sealed, &other_row), Err(DirectoryError::Crypto)));

        let other_key = Sealer::new(&DataKey::generate().unwrap()).unwrap();
        assert!(matches!(other_key.open(&sealed, &a), Err(DirectoryError::Crypto)));

        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(sealer.open(&flipped, &a), Err(DirectoryError::Crypto)));
    }

    #[test]
    fn two_seals_use_different_nonces() {
        let sealer = Sealer::new(&DataKey::from_bytes([7; 32])).unwrap();
        let x = sealer.seal(b"same", b"aad").unwrap();
        let y = sealer.seal(b"same", b"aad").unwrap();
        assert_ne!(x, y);
    }

    #[test]
    fn aad_parts_are_unambiguous() {
        assert_ne!(aad("p", &["ab", "c"]), aad("p", &["a", "bc"]));
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn purpose_keys_are_stable_distinct_and_keyed() {
        let key = DataKey::from_bytes([3; 32]);
        let a = key.sub_keys().keyed_hash("mail-otp");
        let again = DataKey::from_bytes([3; 32]).sub_keys().keyed_hash("mail-otp");
        assert_eq!(a.hex(&[b"x"]), again.hex(&[b"x"]), "same master key, same purpose: same tag");
        assert_ne!(a.hex(&[b"x"]), key.sub_keys().keyed_hash("activation").hex(&[b"x"]), "purposes differ");
        assert_ne!(a.hex(&[b"x"]), DataKey::from_bytes([4; 32]).sub_keys().keyed_hash("mail-otp").hex(&[b"x"]));
        assert_ne!(a.hex(&[b"ab", b"c"]), a.hex(&[b"a", b"bc"]), "parts are unambiguous");
        assert_ne!(a.hex(&[b"x"]), sha256_hex(b"x"));
        assert_eq!(a.hex(&[b"x"]).len(), 64);
        assert_eq!(format!("{a:?}"), "KeyedHash(<redacted>)");
    }

    #[test]
    fn data_key_base64_and_debug() {
        let key = DataKey::from_bytes([1; 32]);
        let again = DataKey::from_base64(&key.to_base64()).unwrap();
        assert_eq!(key.as_bytes(), again.as_bytes());
        assert_eq!(format!("{key:?}"), "DataKey(<redacted>)");
        assert!(DataKey::from_slice(&[0; 31]).is_err());
    }
}
