//! The push approval phones' API (`/push/v1`): every body is a compact JWS the phone signs.
//!
//! Input: a first line naming the endpoint (`devices`, `challenges`, anything else means
//! `answers`), then either one line, the body as it is, or `HEADER\nCLAIMS`, signed as they are
//! with the fixture phone key, enrolled as [`caducee_fuzz::SUBJECT`]'s phone. Placeholders,
//! filled just before the request: in the header `$KID` (that phone's device id) and `$JWK`
//! (its public key); in the claims `$JTI` (never used before), `$CH` and `$NUM` (a push just
//! sent to that phone, and the number the login page shows), `$CODE` (an enrolment code of
//! another professional, whose phone an earlier input may have enrolled is removed first).
//!
//! Must hold: no server error; only the answers the API documents; a signed request is
//! accepted only if its `iat` is within the allowed skew of the provider's clock.
#![no_main]

use caducee_fuzz::{NOW, fill, harness, text};
use libfuzzer_sys::fuzz_target;

/// `push.clock_skew`'s default.
const SKEW: i64 = 60;

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let Some(input) = text(data) else { return };
    let (endpoint, rest) = input.split_once('\n').unwrap_or((input, ""));
    let path = match endpoint {
        "devices" => "/push/v1/devices",
        "challenges" => "/push/v1/challenges",
        _ => "/push/v1/answers",
    };
    let mut push = None;
    let (body, claims) = match rest.split_once('\n') {
        None => (rest.to_owned(), None),
        Some((header, claims)) => {
            let header = fill(header, |name| match name {
                "KID" => Some(h.phone_device.clone()),
                "JWK" => Some(h.phone_key.public_jwk(None, None).to_string()),
                _ => None,
            });
            let claims = fill(claims, |name| match name {
                "JTI" => Some(format!("jti-{}", h.unique())),
                "CH" | "NUM" => {
                    if push.is_none() {
                        push = h.fresh_push();
                    }
                    let (challenge, number) = push.clone()?;
                    Some(if name == "CH" { challenge } else { number })
                }
                "CODE" => h.fresh_enrolment_code(),
                _ => None,
            });
            (h.phone_key.sign(header.as_bytes(), claims.as_bytes()), Some(claims))
        }
    };
    let Some(reply) = h.post(path, &[("content-type", b"application/jose")], body.into_bytes()) else { return };
    let status = reply.status.as_u16();
    assert!(matches!(status, 200 | 201 | 400 | 401 | 404 | 409 | 413), "status {status} from {path}");
    if reply.status.is_success()
        && let Some(claims) = claims
    {
        #[derive(serde::Deserialize)]
        struct Dated {
            iat: i64,
        }
        let seen = serde_json::from_str::<Dated>(&claims);
        assert!(
            seen.is_ok_and(|c| c.iat.abs_diff(NOW) <= SKEW.unsigned_abs()),
            "a request with these claims was accepted: {claims}"
        );
    }
});
