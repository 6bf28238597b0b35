//! Client assertions (`private_key_jwt`, RFC 7523) at the introspection endpoint, which
//! authenticates clients exactly as the token endpoint does.
//!
//! Input: one line, a token sent as it is; or `HEADER\nCLAIMS[\nFORM]`, the JOSE header and
//! claims signed as they are with `fuzz-jwt`'s registered key (so that they reach the checks
//! after the signature), `FORM` appended to the request's form. `$JTI` in the claims becomes a
//! value never used before.
//!
//! Must hold: no server error; an answer of 200, 400 or 401 (`invalid_client`); and a client
//! authenticated only by claims that deserve it: `iss` and `sub` the client, `exp` an integer
//! no more than 5 s in the past and no further ahead than the provider allows.
#![no_main]

use caducee_fuzz::jws::split_lines;
use caducee_fuzz::{JWT_CLIENT, NOW, fill, harness, text};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

const ASSERTION_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let Some(input) = text(data) else { return };
    let (assertion, claims, extra) = match split_lines(input) {
        None => (input.to_owned(), None, ""),
        Some((header, rest)) => {
            let (claims, extra) = rest.split_once('\n').unwrap_or((rest, ""));
            let claims = fill(claims, |name| (name == "JTI").then(|| format!("jti-{}", h.unique())));
            (h.client_key.sign(header.as_bytes(), claims.as_bytes()), Some(claims), extra)
        }
    };
    let body = format!(
        "token=anything&client_assertion_type={ASSERTION_TYPE}&client_assertion={}{extra}",
        utf8_percent_encode(&assertion, NON_ALPHANUMERIC)
    );
    let Some(reply) = h.post_form("/introspect", None, body.into_bytes()) else { return };
    let status = reply.status.as_u16();
    assert!(matches!(status, 200 | 400 | 401), "status {status}");
    if status == 401 {
        assert_eq!(reply.oauth_error().as_deref(), Some("invalid_client"));
    }
    if status == 200
        && let Some(claims) = claims
    {
        // Read as the provider reads them (unknown members ignored, whatever their value).
        #[derive(serde::Deserialize)]
        struct Authenticating {
            iss: String,
            sub: String,
            exp: i64,
        }
        let seen = serde_json::from_str::<Authenticating>(&claims);
        let max = h.app.provider.config().max_assertion_lifetime;
        assert!(
            seen.as_ref().is_ok_and(|c| c.exp > NOW - 5 && c.exp <= NOW + max),
            "an assertion with these claims authenticated the client: {claims}"
        );
        assert!(seen.is_ok_and(|c| c.iss == JWT_CLIENT && c.sub == JWT_CLIENT), "iss and sub must be the client");
    }
});
