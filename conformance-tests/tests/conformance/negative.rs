//! What must be refused, with the exact error and status the specs name (RFC 6749 4.1.2.1 and
//! 5.2, RFC 7636, RFC 6750, RFC 7662, RFC 7009, OIDC Core 3.1.2.6).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use conformance_tests::browser::{Browser, Landing};
use conformance_tests::rp::{REDIRECT, World, oauth_error, param};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AccessToken, AuthorizationCode, CsrfToken, IntrospectionUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, TokenIntrospectionResponse, TokenResponse,
};
use reqwest::{StatusCode, Url};
use server::testing::TestProvider;

/// A login that stops at the code (for the token-endpoint tests).
async fn code_for(w: &World, client_id: &str, pkce: Option<&PkceCodeChallenge>) -> String {
    let mut url = w.url("/authorize").unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid")
            .append_pair("state", "s");
        if let Some(c) = pkce {
            q.append_pair("code_challenge", c.as_str()).append_pair("code_challenge_method", "S256");
        }
    }
    let back = w.log_in(&Browser::new(), &url).await.unwrap();
    param(&back, "code").unwrap()
}

#[tokio::test]
async fn unregistered_redirect_uri_is_an_error_page_never_a_redirect() {
    let w = World::start().await.unwrap();
    w.confidential("rp").await.unwrap();
    let cases = [
        "client_id=rp&redirect_uri=https%3A%2F%2Fattacker.example%2Fcb",
        "client_id=rp&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb%3Fx%3D1",
        "client_id=rp&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb%2Fmore",
        "client_id=rp",
        "client_id=nobody&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb",
    ];
    for case in cases {
        let url =
            Url::parse(&format!("{}/authorize?{case}&response_type=code&scope=openid&state=s", w.provider.base_url))
                .unwrap();
        // RFC 6749 4.1.2.1: "MUST NOT automatically redirect the user-agent to the invalid redirection URI".
        let Landing::Page { status, html } = Browser::new().navigate(&url, &w.issuer().unwrap()).await.unwrap() else {
            panic!("no redirect for {case}")
        };
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}");
        assert!(html.contains("<html lang=\"fr\">"), "a page for the person");
    }
}

#[tokio::test]
async fn authorize_errors_are_redirected_with_the_spec_codes() {
    let w = World::start().await.unwrap();
    w.confidential("rp").await.unwrap();
    let mut public = TestProvider::confidential_client("spa", REDIRECT);
    public.auth_method = "none".into();
    w.provider.add_client(public).await.unwrap();
    let base = format!("{}/authorize?redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=s", w.provider.base_url);
    let challenge = PkceCodeChallenge::new_random_sha256().0;
    let c = challenge.as_str();
    for (query, expected) in [
        ("&client_id=rp&response_type=token&scope=openid".to_owned(), "unsupported_response_type"),
        ("&client_id=rp&response_type=id_token&scope=openid".to_owned(), "unsupported_response_type"),
        ("&client_id=rp&scope=openid".to_owned(), "invalid_request"),
        (
            format!("&client_id=rp&response_type=code&scope=openid&code_challenge={c}&code_challenge_method=plain"),
            "invalid_request",
        ),
        (format!("&client_id=rp&response_type=code&scope=openid&code_challenge={c}"), "invalid_request"),
        ("&client_id=spa&response_type=code&scope=openid".to_owned(), "invalid_request"),
        ("&client_id=rp&response_type=code&scope=profile".to_owned(), "invalid_scope"),
        ("&client_id=rp&response_type=code&scope=openid&prompt=none%20login".to_owned(), "invalid_request"),
        ("&client_id=rp&response_type=code&scope=openid&request=e30.e30.".to_owned(), "request_not_supported"),
        (
            "&client_id=rp&response_type=code&scope=openid&request_uri=https%3A%2F%2Frp.example%2Fr".to_owned(),
            "request_uri_not_supported",
        ),
    ] {
        let url = Url::parse(&format!("{base}{query}")).unwrap();
        let Landing::Redirect(to) = Browser::new().navigate(&url, &w.issuer().unwrap()).await.unwrap() else {
            panic!("a redirect for {query}")
        };
        assert!(to.as_str().starts_with(REDIRECT), "{to}");
        assert_eq!(param(&to, "error").as_deref(), Some(expected), "{query}");
        assert_eq!(param(&to, "state").as_deref(), Some("s"), "{query}");
        assert_eq!(param(&to, "iss").as_deref(), Some(w.provider.base_url.as_str()), "{query}");
        assert!(param(&to, "code").is_none());
    }
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let w = World::start().await.unwrap();
    let secret = w.confidential("rp").await.unwrap();
    let code = code_for(&w, "rp", None).await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let r = w.http.post(w.provider.url("/token")).basic_auth("rp", Some(&secret)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store", "OIDC Core 3.1.3.3, RFC 6749 5.1");
    let first: serde_json::Value = r.json().await.unwrap();
    let (status, again) = w.token_raw(Some(("rp", &secret)), &form).await.unwrap();
    assert_eq!((status, again["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    // RFC 6749 4.1.2: "SHOULD revoke (when possible) all tokens previously issued based on that code".
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(w.userinfo_status(at).await.unwrap(), StatusCode::UNAUTHORIZED, "its access token is revoked");
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())];
    let (status, refreshed) = w.token_raw(Some(("rp", &secret)), &refresh).await.unwrap();
    assert_eq!((status, refreshed["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn pkce_verifier_missing_or_wrong_is_invalid_grant() {
    let w = World::start().await.unwrap();
    let client = w.confidential_rp("rp").await.unwrap();
    let exchange = |code: String, verifier: Option<PkceCodeVerifier>| {
        let mut req = client.exchange_code(AuthorizationCode::new(code)).unwrap();
        if let Some(v) = verifier {
            req = req.set_pkce_verifier(v);
        }
        req.request_async(&w.http)
    };
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let missing = exchange(code_for(&w, "rp", Some(&challenge)).await, None).await;
    assert_eq!(oauth_error(&missing).as_deref(), Some("invalid_grant"), "RFC 7636 4.6: {missing:?}");
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let wrong = exchange(code_for(&w, "rp", Some(&challenge)).await, Some(PkceCodeVerifier::new("x".repeat(64)))).await;
    assert_eq!(oauth_error(&wrong).as_deref(), Some("invalid_grant"), "{wrong:?}");
    // docs/protocol.md: a verifier for a code issued without a challenge is refused too.
    let injected = exchange(code_for(&w, "rp", None).await, Some(PkceCodeVerifier::new("y".repeat(64)))).await;
    assert_eq!(oauth_error(&injected).as_deref(), Some("invalid_grant"), "{injected:?}");
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let w = World::start().await.unwrap();
    let client = w.confidential_rp("rp").await.unwrap();
    let (url, _, _) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let back = w.log_in(&Browser::new(), &url).await.unwrap();
    w.provider.clock.advance(61);
    let result = client
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .request_async(&w.http)
        .await;
    assert_eq!(oauth_error(&result).as_deref(), Some("invalid_grant"), "{result:?}");
}

#[tokio::test]
async fn token_requests_that_do_not_match_the_code_are_refused() {
    let w = World::start().await.unwrap();
    let secret = w.confidential("rp").await.unwrap();
    let other = w.confidential("other").await.unwrap();

    let code = code_for(&w, "rp", None).await;
    let moved = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:9/other")];
    let (status, body) = w.token_raw(Some(("rp", &secret)), &moved).await.unwrap();
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "RFC 6749 4.1.3");

    let code = code_for(&w, "rp", None).await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let (status, body) = w.token_raw(Some(("other", &other)), &form).await.unwrap();
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "another client");

    // A refresh token presented by another client: refused, and not burnt for its owner.
    let client = w.client("rp", Some(secret.clone())).await.unwrap();
    let tokens = w.sign_in(&client, &Browser::new(), &[]).await.unwrap().tokens;
    let rt = tokens.refresh_token().unwrap().secret().as_str();
    let stolen = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let (status, body) = w.token_raw(Some(("other", &other)), &stolen).await.unwrap();
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "RFC 6749 6");
    let (status, body) = w.token_raw(Some(("rp", &secret)), &stolen).await.unwrap();
    assert_eq!(status, StatusCode::OK, "the owner's refresh still works: {body}");

    for grant in ["password", "urn:ietf:params:oauth:grant-type:device_code"] {
        let (status, body) = w.token_raw(Some(("rp", &secret)), &[("grant_type", grant)]).await.unwrap();
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unsupported_grant_type")));
    }
    // Client credentials exist, for clients registered for them only (RFC 6749 5.2).
    let (status, body) = w.token_raw(Some(("rp", &secret)), &[("grant_type", "client_credentials")]).await.unwrap();
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")));
    let (status, body) = w.token_raw(Some(("rp", &secret)), &[("grant_type", "authorization_code")]).await.unwrap();
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "no code");
}

#[tokio::test]
async fn userinfo_accepts_only_live_access_tokens() {
    let w = World::start().await.unwrap();
    let client = w.confidential_rp("rp").await.unwrap();
    let signed = w.sign_in(&client, &Browser::new(), &[]).await.unwrap();

    let bare = w.http.get(w.provider.url("/userinfo")).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let challenge = bare.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer") && !challenge.contains("error="), "RFC 6750 3.1: {challenge}");

    let id_token = signed.tokens.id_token().unwrap().to_string();
    let at = signed.tokens.access_token().secret().clone();
    // RFC 6750 2.2: the form-encoded body parameter, on POST.
    let posted = w.http.post(w.provider.url("/userinfo")).form(&[("access_token", &at)]).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::OK);
    let payload = at.split('.').nth(1).unwrap().to_owned();
    let unsigned = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#));
    let mut tampered = at.clone();
    tampered.truncate(tampered.len() - 4);
    tampered.push_str("AAAA");
    for (what, token) in [("an ID token", id_token), ("alg none", unsigned), ("a bad signature", tampered)] {
        let r = w.http.get(w.provider.url("/userinfo")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""), "{what}");
    }
    assert_eq!(w.userinfo_status(&at).await.unwrap(), StatusCode::OK);
    w.provider.clock.advance(301);
    assert_eq!(w.userinfo_status(&at).await.unwrap(), StatusCode::UNAUTHORIZED, "expired");
}

#[tokio::test]
async fn introspection_then_revocation() {
    let w = World::start().await.unwrap();
    let secret = w.confidential("rp").await.unwrap();
    let raw = w.discovery_json().await.unwrap();
    let client = w.client("rp", Some(secret.clone())).await.unwrap();
    let endpoint = IntrospectionUrl::new(raw["introspection_endpoint"].as_str().unwrap().into()).unwrap();
    let introspector = client.clone().set_introspection_url(endpoint);
    let tokens = w.sign_in(&client, &Browser::new(), &[]).await.unwrap().tokens;
    let at = tokens.access_token().clone();
    let rt = AccessToken::new(tokens.refresh_token().unwrap().secret().clone());
    let (introspector, http) = (&introspector, &w.http);
    let introspect = |token: AccessToken, hint: &'static str| async move {
        introspector.introspect(&token).set_token_type_hint(hint).request_async(http).await.expect("an RFC 7662 answer")
    };
    let active = introspect(at.clone(), "access_token").await;
    assert!(active.active());
    assert_eq!(active.client_id().map(|c| c.as_str()), Some("rp"));
    assert!(active.scopes().unwrap().iter().any(|s| s.as_str() == "openid"));
    assert!(active.exp().is_some() && active.sub().is_some());
    assert!(introspect(rt.clone(), "refresh_token").await.active());
    assert!(!introspect(AccessToken::new("garbage".into()), "access_token").await.active());

    let other = w.confidential("other").await.unwrap();
    let foreign = [("token", at.secret().as_str())];
    let r = w.http.post(w.provider.url("/introspect")).basic_auth("other", Some(&other)).form(&foreign).send().await;
    let answer: serde_json::Value = r.unwrap().json().await.unwrap();
    assert_eq!(answer, serde_json::json!({ "active": false }), "another client's token is not shown");

    let anonymous = w.http.post(w.provider.url("/introspect")).form(&[("token", at.secret())]).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "introspection needs client authentication");

    // openidconnect refuses a revocation endpoint that is not https (RFC 7009 2.1), hence raw requests.
    let revoke = |token: &str, hint: &str| {
        let form = [("token", token.to_owned()), ("token_type_hint", hint.to_owned())];
        let req = w.http.post(raw["revocation_endpoint"].as_str().unwrap()).basic_auth("rp", Some(&secret)).form(&form);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(revoke(at.secret(), "access_token").await, StatusCode::OK);
    assert!(!introspect(at.clone(), "access_token").await.active());
    assert_eq!(w.userinfo_status(at.secret()).await.unwrap(), StatusCode::UNAUTHORIZED);
    assert!(introspect(rt.clone(), "refresh_token").await.active(), "revoking an access token spares the grant");
    assert_eq!(revoke("unknown", "refresh_token").await, StatusCode::OK, "RFC 7009 2.2: unknown tokens answer 200");

    // A second login: revoking its refresh token revokes the grant's access token too (RFC 7009 2.1).
    let tokens = w.sign_in(&client, &Browser::new(), &[]).await.unwrap().tokens;
    assert_eq!(revoke(tokens.refresh_token().unwrap().secret(), "refresh_token").await, StatusCode::OK);
    assert!(
        !introspect(AccessToken::new(tokens.refresh_token().unwrap().secret().clone()), "refresh_token").await.active()
    );
    assert!(!introspect(tokens.access_token().clone(), "access_token").await.active());
    let refresh = client.exchange_refresh_token(tokens.refresh_token().unwrap()).unwrap().request_async(&w.http).await;
    assert_eq!(oauth_error(&refresh).as_deref(), Some("invalid_grant"));
}
