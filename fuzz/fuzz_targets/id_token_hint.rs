//! The JWTs the provider reads back from the outside, all through `KeyRing::verify`:
//! `id_token_hint` at `/end_session` and `/authorize`, the ID tokens of the wallet (the
//! provider's own relying party), and access tokens at `/userinfo`. No code path here parses
//! back-channel logout tokens: the provider signs them and relying parties verify them.
//!
//! Input: one line, a token used as it is; or `HEADER\nCLAIMS`, signed as they are with the
//! provider's own key (RS256 when the header says so, else ES256; the fixtures' kids are
//! `fuzz-es256` and `fuzz-rs256`), so that the claims reach the checks after the signature.
//!
//! Must hold: no panic, no server error; a token is accepted only with this issuer and, where
//! expiry counts, not expired at the provider's clock; redirects only to registered URIs.
#![no_main]

use caducee_fuzz::jws::split_lines;
use caducee_fuzz::{ISSUER, NOW, PKCE_CHALLENGE, POST_LOGOUT_URI, PUBLIC_CLIENT, REDIRECT_URI, harness, text};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let Some(input) = text(data) else { return };
    let token = match split_lines(input) {
        None => input.to_owned(),
        Some((header, claims)) if header.contains("RS256") => {
            h.provider_rs256.sign(header.as_bytes(), claims.as_bytes())
        }
        Some((header, claims)) => h.provider_es256.sign(header.as_bytes(), claims.as_bytes()),
    };
    let claims_of = |t: &str| -> serde_json::Value {
        use base64::Engine as _;
        let payload = t.split('.').nth(1).unwrap_or_default();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    };

    let provider = &h.app.provider;
    if provider.verify_id_token_hint(&token, NOW).is_some() {
        assert_eq!(claims_of(&token)["iss"], ISSUER, "a hint from another issuer was accepted");
    }
    if let Some(claims) = provider.verify_id_token(&token, PUBLIC_CLIENT, NOW) {
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["aud"], PUBLIC_CLIENT);
        assert!(claims["exp"].as_i64().is_some_and(|exp| exp > NOW), "an expired ID token was accepted");
    }

    let hint = utf8_percent_encode(&token, NON_ALPHANUMERIC).to_string();
    let logout = format!(
        "/end_session?id_token_hint={hint}&post_logout_redirect_uri={}&state=s",
        utf8_percent_encode(POST_LOGOUT_URI, NON_ALPHANUMERIC)
    );
    if let Some(reply) = h.get(&logout, false) {
        assert!(!reply.status.is_server_error(), "status {} at end_session", reply.status);
        if reply.status.is_redirection() {
            let location = reply.header("location").unwrap_or_default();
            assert!(location.starts_with(&format!("{POST_LOGOUT_URI}?")), "logout redirected to {location:?}");
        }
    }
    let authorize = format!(
        "/authorize?client_id={PUBLIC_CLIENT}&redirect_uri={}&response_type=code&scope=openid&state=s\
         &code_challenge={PKCE_CHALLENGE}&code_challenge_method=S256&id_token_hint={hint}",
        utf8_percent_encode(REDIRECT_URI, NON_ALPHANUMERIC)
    );
    if let Some(reply) = h.get(&authorize, false) {
        assert!(reply.status.is_redirection(), "status {} at authorize", reply.status);
        let location = reply.header("location").unwrap_or_default();
        assert!(
            location.starts_with("/interaction/") || location.starts_with(&format!("{REDIRECT_URI}?")),
            "authorize redirected to {location:?}"
        );
    }
    if let Some(reply) = h.post("/userinfo", &[("authorization", format!("Bearer {token}").as_bytes())], Vec::new()) {
        let status = reply.status.as_u16();
        assert!(matches!(status, 200 | 400 | 401), "status {status} at userinfo");
        if status == 200 {
            let claims = claims_of(&token);
            assert_eq!(claims["iss"], ISSUER);
            assert!(claims["exp"].as_i64().is_some_and(|exp| exp > NOW), "an expired access token was accepted");
        }
    }
});
