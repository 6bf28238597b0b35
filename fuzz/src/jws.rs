//! Compact JWS signing over arbitrary header and payload bytes, with the fixture keys: the
//! targets sign what the fuzzer writes, so that inputs reach the checks that follow a valid
//! signature (claims, times, single use) instead of stopping at the signature.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// `BASE64URL(header) . BASE64URL(payload)`, the signing input.
fn signing_input(header: &[u8], payload: &[u8]) -> String {
    let mut out = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 100);
    URL_SAFE_NO_PAD.encode_string(header, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut out);
    out
}

fn finish(mut input: String, signature: &[u8]) -> String {
    input.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut input);
    input
}

/// An ES256 (P-256) key.
pub struct EcSigner {
    pair: EcdsaKeyPair,
}

impl EcSigner {
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, aws_lc_rs::error::KeyRejected> {
        Ok(EcSigner { pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)? })
    }

    /// The public JWK, with `kid` and `alg` when given.
    pub fn public_jwk(&self, kid: Option<&str>, alg: Option<&str>) -> Value {
        let point = self.pair.public_key().as_ref();
        let (x, y) = point.get(1..33).zip(point.get(33..65)).unwrap_or_default();
        let mut jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        });
        if let Some(kid) = kid {
            jwk["kid"] = kid.into();
        }
        if let Some(alg) = alg {
            jwk["alg"] = alg.into();
        }
        jwk
    }

    /// Signs exactly these header and payload bytes.
    pub fn sign(&self, header: &[u8], payload: &[u8]) -> String {
        let input = signing_input(header, payload);
        let signature = self.pair.sign(&SystemRandom::new(), input.as_bytes());
        let bytes = signature.as_ref().map(|s| s.as_ref()).unwrap_or_default();
        finish(input, bytes)
    }

    pub fn sign_json(&self, header: &Value, claims: &Value) -> String {
        self.sign(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }
}

/// An RS256 (RSA PKCS #1 v1.5, SHA-256) key.
pub struct RsaSigner {
    pair: RsaKeyPair,
}

impl RsaSigner {
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, aws_lc_rs::error::KeyRejected> {
        Ok(RsaSigner { pair: RsaKeyPair::from_pkcs8(der)? })
    }

    pub fn sign(&self, header: &[u8], payload: &[u8]) -> String {
        let input = signing_input(header, payload);
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        if self.pair.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature).is_err()
        {
            signature.clear();
        }
        finish(input, &signature)
    }
}

/// A fuzz input written as two lines, JOSE header then claims (`header\nclaims`), to be
/// signed as they are; `None` for a one-line input, which is a token already.
pub fn split_lines(text: &str) -> Option<(&str, &str)> {
    text.split_once('\n')
}
