//! `/authorize` with any query string (GET) or form body (POST), from a new browser and from
//! one with an SSO session (which answers at once with a code). Whatever the request, the
//! answer is a redirect or a 4xx page, never a server error, and a redirect only ever goes to
//! the login pages or to a redirect URI the named client registered (no open redirect).
#![no_main]

use caducee_fuzz::{REDIRECT_URI, Reply, harness};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{AsciiSet, CONTROLS, percent_encode};

/// What an HTTP request target cannot carry as is; a browser would percent-encode it too.
const NOT_IN_QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^');

fn check(reply: &Reply) {
    assert!(
        reply.status.is_redirection() || reply.status.is_client_error(),
        "status {} for an authorization request",
        reply.status
    );
    if reply.status.is_redirection() {
        let location = reply.header("location").unwrap_or_default();
        let wallet = login_ui::wallet::wallet_redirect_uri(caducee_fuzz::ISSUER);
        let allowed = location.starts_with("/interaction/")
            || location.starts_with(&format!("{REDIRECT_URI}?"))
            || location.starts_with(&format!("{wallet}?"));
        assert!(allowed, "redirected to {location:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let query = percent_encode(data, NOT_IN_QUERY).to_string();
    for with_session in [false, true] {
        if let Some(reply) = h.get(&format!("/authorize?{query}"), with_session) {
            check(&reply);
        }
    }
    if let Some(reply) = h.post_form("/authorize", None, data.to_vec()) {
        check(&reply);
    }
});
