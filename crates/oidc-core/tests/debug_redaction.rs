//! Issue 13, item 18: the protocol's request and answer types never show a secret in their
//! `Debug` output (what `{:?}` in a log line or an error message would print), while the
//! fields that are not secret stay readable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use oidc_core::authorize::{AuthorizationRequest, AuthorizeParams, Locale};
use oidc_core::client_auth::ClientCredentials;
use oidc_core::http::oauth::ClientForm as _;
use oidc_core::logout::EndSessionParams;
use oidc_core::resource::TokenOperationParams;
use oidc_core::token::TokenParams;

const SECRETS: [&str; 8] = [
    "CODE-SplxlOBeZQQYbYS6WxSbIA",
    "VERIFIER-dBjftJeZ4CVP-mB92K27uhbUJU1p1r",
    "REFRESH-tGzv3JOkF0XG5Qx2TlKWIA",
    "CLIENTSECRET-7Fjfp0ZBr1KtDRbnfVdmIw",
    "ASSERTION-eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
    "IDTOKENHINT-eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
    "899700000042",
    "BASICSECRET-Qm9iIGlzIG5vdCBoZXJl",
];

fn assert_no_secret(what: &str, debug: String) {
    for secret in SECRETS {
        assert!(!debug.contains(secret), "{what} shows {secret}: {debug}");
    }
}

#[test]
fn item_18_debug_of_protocol_requests_shows_no_secret() {
    let form = format!(
        "grant_type=authorization_code&code={}&code_verifier={}&refresh_token={}&client_id=rp&client_secret={}\
         &client_assertion={}&client_assertion_type=jwt&redirect_uri=https%3A%2F%2Frp.example%2Fcb",
        SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3], SECRETS[4]
    );
    let params: TokenParams = serde_urlencoded::from_str(&form).unwrap();
    let debug = format!("{params:?}");
    assert_no_secret("TokenParams", debug.clone());
    assert!(debug.contains("authorization_code") && debug.contains("rp.example"), "the rest is readable: {debug}");

    let basic = base64::engine::general_purpose::STANDARD.encode(format!("rp:{}", SECRETS[7]));
    let basic = ClientCredentials::parse_basic(&format!("Basic {basic}")).and_then(Result::ok);
    assert!(basic.is_some());
    assert_no_secret("ClientCredentials", format!("{:?}", params.credentials(basic)));

    let form = format!("token={}&token_type_hint=refresh_token&client_id=rp&client_secret={}", SECRETS[2], SECRETS[3]);
    let params: TokenOperationParams = serde_urlencoded::from_str(&form).unwrap();
    assert_no_secret("TokenOperationParams", format!("{params:?}"));
    assert_no_secret("ClientCredentials", format!("{:?}", params.credentials(None)));

    let query = format!("id_token_hint={}&logout_hint={}&client_id=rp&state=xyz", SECRETS[5], SECRETS[6]);
    let params: EndSessionParams = serde_urlencoded::from_str(&query).unwrap();
    let debug = format!("{params:?}");
    assert_no_secret("EndSessionParams", debug.clone());
    assert!(debug.contains("xyz"));

    let query = format!(
        "client_id=rp&response_type=code&scope=openid&login_hint={}&id_token_hint={}&request={}",
        SECRETS[6], SECRETS[5], SECRETS[4]
    );
    let params: AuthorizeParams = serde_urlencoded::from_str(&query).unwrap();
    let debug = format!("{params:?}");
    assert_no_secret("AuthorizeParams", debug.clone());
    assert!(debug.contains("openid") && debug.contains("login_hint"), "{debug}");

    let request = AuthorizationRequest {
        client_id: "rp".into(),
        redirect_uri: "https://rp.example/cb".into(),
        scopes: vec!["openid".into()],
        state: None,
        nonce: None,
        code_challenge: None,
        prompt_none: false,
        prompt_login: false,
        max_age: None,
        login_hint: Some(SECRETS[6].into()),
        acr_values: Vec::new(),
        locale: Locale::Fr,
        hinted_subject: None,
        claims: Default::default(),
    };
    assert_no_secret("AuthorizationRequest", format!("{request:?}"));
}

/// The login's outcomes and cookies: the redirect's code and state, the session cookie and the
/// browser binding stay out of `Debug`.
#[test]
fn item_18_debug_of_login_outcomes_and_cookies_shows_no_secret() {
    use oidc_core::flow::{AuthorizeOutcome, BrowserCookies, FinishOutcome};
    use oidc_core::http::CookieJar;

    let location = format!("https://rp.example/cb?code={}&state=xyz", SECRETS[0]);
    let debug = format!("{:?}", AuthorizeOutcome::Redirect(location.clone()));
    assert_no_secret("AuthorizeOutcome", debug.clone());
    assert!(debug.contains("https://rp.example/cb"), "where it goes is readable: {debug}");
    let outcome = FinishOutcome { location, session_cookie: Some(format!("sid.{}", SECRETS[3])) };
    assert_no_secret("FinishOutcome", format!("{outcome:?}"));
    let cookies = BrowserCookies { session: Some(format!("sid.{}", SECRETS[3])), browser: Some(SECRETS[2].into()) };
    assert_no_secret("BrowserCookies", format!("{cookies:?}"));
    let mut headers = axum::http::HeaderMap::new();
    let cookie = format!("caducee_session=sid.{}; caducee_browser={}", SECRETS[3], SECRETS[2]);
    headers.insert(axum::http::header::COOKIE, cookie.parse().unwrap());
    assert_no_secret("CookieJar", format!("{:?}", CookieJar::from_headers(&headers)));
}
