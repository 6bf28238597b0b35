//! Refresh tokens as relying parties written for Keycloak read them: JWTs (`typ` `Refresh`,
//! with `exp`), MACed (HS256) under a key of the provider's own, derived from the master key,
//! as Keycloak does: only the provider verifies them, so no signature of ours is spent on them.
//! They stay single-use and server-side: what makes one valid is its record, found by the hash
//! of the whole token; the MAC only turns away forged ones before any lookup.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The `typ` claim Keycloak gives refresh tokens.
pub const REFRESH_TYP: &str = "Refresh";

/// What a refresh token says of itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshClaims {
    pub iss: String,
    /// Keycloak's: the realm itself.
    pub aud: String,
    pub sub: String,
    pub typ: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    /// 128 random bits: what no one can guess.
    pub jti: String,
    pub sid: String,
    pub session_state: String,
    pub scope: String,
}

/// The provider's key for refresh tokens.
pub struct RefreshTokenKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for RefreshTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshTokenKey(<redacted>)")
    }
}

impl RefreshTokenKey {
    pub fn new(secret: &[u8]) -> Self {
        RefreshTokenKey { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }

    pub(crate) fn mint(&self, claims: &RefreshClaims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// Whether `token` may be one of ours: a JWT of ours with an intact MAC (then what it says
    /// of itself can be trusted: it was written by this provider), or an opaque token from
    /// before they were JWTs (its record decides). Expiry is the record's to judge.
    /// Whether [`Self::admit`] lets `token` through to its record.
    pub(crate) fn admits(&self, token: &str, issuer: &str) -> bool {
        !matches!(self.admit(token, issuer), Admitted::Rejected)
    }

    pub(crate) fn admit(&self, token: &str, issuer: &str) -> Admitted {
        if !token.contains('.') {
            return Admitted::Opaque;
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["iss"]);
        validation.set_issuer(&[issuer]);
        match jsonwebtoken::decode::<RefreshClaims>(token, &self.decoding, &validation) {
            Ok(data) if data.claims.typ == REFRESH_TYP => Admitted::Jwt(Box::new(data.claims)),
            _ => Admitted::Rejected,
        }
    }
}

/// What [`RefreshTokenKey::admit`] makes of a presented token.
#[derive(Debug)]
pub(crate) enum Admitted {
    /// One of ours, intact.
    Jwt(Box<RefreshClaims>),
    /// Opaque: perhaps one from before refresh tokens were JWTs.
    Opaque,
    /// Forged, altered, another provider's or another kind of token.
    Rejected,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> RefreshClaims {
        RefreshClaims {
            iss: "https://idp".into(),
            aud: "https://idp".into(),
            sub: "s".into(),
            typ: REFRESH_TYP.into(),
            azp: "rp".into(),
            exp: 100,
            iat: 0,
            jti: "j".into(),
            sid: "sid".into(),
            session_state: "sid".into(),
            scope: "openid".into(),
        }
    }

    #[test]
    fn only_our_intact_refresh_tokens_are_admitted() {
        let key = RefreshTokenKey::new(&[7u8; 32]);
        let token = key.mint(&claims()).unwrap();
        match key.admit(&token, "https://idp") {
            Admitted::Jwt(c) => assert_eq!((c.azp.as_str(), c.sid.as_str()), ("rp", "sid")),
            other => panic!("expired or not, the record decides: {other:?}"),
        }
        assert!(!key.admits(&token, "https://other"));
        assert!(!RefreshTokenKey::new(&[8u8; 32]).admits(&token, "https://idp"), "another key");
        let mut forged = token.clone();
        forged.push('A');
        assert!(!key.admits(&forged, "https://idp"));
        let access = key.mint(&RefreshClaims { typ: "Bearer".into(), ..claims() }).unwrap();
        assert!(!key.admits(&access, "https://idp"), "another typ");
        assert!(matches!(key.admit("opaque-token-from-before", "https://idp"), Admitted::Opaque));
    }
}
