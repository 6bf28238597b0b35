//! The phone's key and the signed requests it makes: a P-256 key generated here at enrolment
//! (it never leaves the device, sealed in the state file), and compact ES256 JWS carrying
//! `aud` (the `/push/v1` URL), `iat` (now, in seconds) and a random `jti` besides each verb's
//! claims. The enrolment request carries the public key in the header (`jwk`); every later
//! one names the device (`kid`).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::Error;

/// Who a request says it comes from.
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    /// Enrolment: the new public key rides in the header.
    NewKey,
    /// Afterwards: the device id the server gave.
    Device(&'a str),
}

/// The device's private key (PKCS#8 DER), wiped from memory on drop.
pub struct DeviceKey {
    pkcs8: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey").field("pkcs8", &"<redacted>").finish()
    }
}

impl DeviceKey {
    /// A new P-256 key.
    pub fn generate() -> Result<DeviceKey, Error> {
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| Error::Crypto("génération de la clé P-256"))?;
        DeviceKey::from_pkcs8(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// The key as sealed in the state.
    pub fn from_pkcs8(pkcs8: Zeroizing<Vec<u8>>) -> Result<DeviceKey, Error> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(|_| Error::Crypto("clé de l'appareil illisible"))?;
        let public = pair.public_key().as_ref().to_vec();
        if public.len() != 65 {
            return Err(Error::Crypto("clé publique P-256 inattendue"));
        }
        Ok(DeviceKey { pkcs8, public })
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as a JWK (EC P-256, public parts only).
    pub fn public_jwk(&self) -> Result<Jwk, Error> {
        let (x, y) = self.public[1..].split_at(32);
        serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        }))
        .map_err(|_| Error::Crypto("JWK de la clé publique"))
    }

    /// Signs `claims` (an object) for `audience`, adding `aud`, `iat` and `jti`.
    pub fn sign(&self, signer: Signer<'_>, audience: &str, mut claims: Value, now: i64) -> Result<String, Error> {
        let mut header = Header::new(Algorithm::ES256);
        match signer {
            Signer::NewKey => header.jwk = Some(self.public_jwk()?),
            Signer::Device(id) => header.kid = Some(id.to_owned()),
        }
        let object = claims.as_object_mut().ok_or(Error::Crypto("les revendications doivent être un objet"))?;
        object.insert("aud".into(), json!(audience));
        object.insert("iat".into(), json!(now));
        object.insert("jti".into(), json!(random_b64(16)?));
        let key = EncodingKey::from_ec_der(&self.pkcs8);
        jsonwebtoken::encode(&header, &claims, &key).map_err(|_| Error::Crypto("signature ES256"))
    }
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, Error> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new().fill(&mut bytes).map_err(|_| Error::Crypto("générateur aléatoire"))?;
    Ok(bytes)
}

/// `n` random bytes, base64url without padding.
pub fn random_b64(n: usize) -> Result<String, Error> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes(n)?))
}

/// The current time in seconds since the epoch.
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn a_request_verifies_with_the_public_key_and_carries_aud_iat_jti() {
        let key = DeviceKey::generate().unwrap();
        let jws = key.sign(Signer::NewKey, "https://idp.example/push/v1", json!({ "action": "list" }), 1_800_000_000);
        let jws = jws.unwrap();
        let header = jsonwebtoken::decode_header(&jws).unwrap();
        let jwk = header.jwk.unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        validation.set_audience(&["https://idp.example/push/v1"]);
        let data = jsonwebtoken::decode::<Value>(&jws, &DecodingKey::from_jwk(&jwk).unwrap(), &validation).unwrap();
        assert_eq!(data.claims["iat"], 1_800_000_000);
        assert_eq!(data.claims["action"], "list");
        assert_eq!(data.claims["jti"].as_str().unwrap().len(), 22);
        let again = DeviceKey::from_pkcs8(Zeroizing::new(key.pkcs8().to_vec())).unwrap();
        let jws = again.sign(Signer::Device("dev-1"), "aud", json!({}), 1).unwrap();
        assert_eq!(jsonwebtoken::decode_header(&jws).unwrap().kid.as_deref(), Some("dev-1"));
    }
}
