//! The token, revocation and introspection endpoints with any form body and `Authorization`
//! header: the form parsing, `Basic` decoding, client authentication (`none` and
//! `private_key_jwt`), the code and refresh grants, PKCE.
//!
//! Input: a first line `PATH [AUTHORIZATION]` (`/token`, `/revoke` or `/introspect`; anything
//! else means `/token`), then the body. Placeholders in the body, minted just before the
//! request: `$CODE` (a fresh code of `fuzz-public`, challenge from RFC 7636's verifier),
//! `$JWT_CODE` (of `fuzz-jwt`), `$REFRESH` (a refresh token of `fuzz-public`), `$ASSERTION` (a
//! valid client assertion of `fuzz-jwt`).
//!
//! Must hold: no server error; 200, 400 or 401 only, a 401 with its `WWW-Authenticate`
//! challenge; every error body an OAuth error; a 200 from `/token` carries tokens.
#![no_main]

use caducee_fuzz::{JWT_CLIENT, PUBLIC_CLIENT, fill, harness};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let (first, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let (path, authorization) = match first.iter().position(|b| *b == b' ') {
        Some(at) => (&first[..at], Some(&first[at + 1..])),
        None => (first, None),
    };
    let path = match path {
        b"/revoke" => "/revoke",
        b"/introspect" => "/introspect",
        _ => "/token",
    };
    let body = match std::str::from_utf8(body) {
        Ok(text) if text.contains('$') => fill(text, |name| {
            let value = match name {
                "CODE" => h.fresh_code(PUBLIC_CLIENT)?,
                "JWT_CODE" => h.fresh_code(JWT_CLIENT)?,
                "REFRESH" => h.fresh_refresh_token()?,
                "ASSERTION" => h.fresh_assertion(),
                _ => return None,
            };
            Some(utf8_percent_encode(&value, NON_ALPHANUMERIC).to_string())
        })
        .into_bytes(),
        _ => body.to_vec(),
    };
    let Some(reply) = h.post_form(path, authorization, body) else { return };
    let status = reply.status.as_u16();
    assert!(matches!(status, 200 | 400 | 401), "status {status} from {path}");
    if status == 401 {
        assert!(reply.header("www-authenticate").is_some(), "401 without a challenge");
    }
    if status != 200 {
        assert!(reply.oauth_error().is_some(), "an error without an OAuth error code");
    } else if path == "/token" {
        let json = reply.json().unwrap_or_default();
        assert!(json["access_token"].is_string() && json["token_type"] == "Bearer", "a 200 without tokens");
    }
});
