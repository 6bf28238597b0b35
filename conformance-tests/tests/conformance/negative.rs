//! What must be refused, with the exact error the specs name.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use conformance_tests::browser::{Browser, Landing};
use conformance_tests::rp::{REDIRECT, World, param};
use oidc_core::client::{ClientMetadata, TokenEndpointAuthMethod};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier};
use reqwest::{StatusCode, Url};

/// A login that stops at the code (for the token-endpoint tests).
async fn code_for(w: &World, client_id: &str, pkce: Option<&PkceCodeChallenge>) -> String {
    let mut url = Url::parse(&w.provider.url("/authorize")).unwrap();
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

async fn token(w: &World, auth: Option<(&str, &str)>, form: &[(&str, &str)]) -> (StatusCode, serde_json::Value) {
    let mut req = w.http.post(w.provider.url("/token")).form(form);
    if let Some((id, secret)) = auth {
        req = req.basic_auth(id, Some(secret));
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn unregistered_redirect_uri_is_an_error_page_never_a_redirect() {
    let w = World::start().await.unwrap();
    w.confidential("rp").await.unwrap();
    let url = Url::parse(&format!(
        "{}/authorize?client_id=rp&redirect_uri=https%3A%2F%2Fattacker.example%2Fcb&response_type=code&scope=openid&state=s",
        w.provider.base_url
    ))
    .unwrap();
    let Landing::Page { status, html } = Browser::new().navigate(&url, &w.issuer().unwrap()).await.unwrap() else {
        panic!("no redirect")
    };
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("<html lang=\"fr\">"), "a page for the person");
}

#[tokio::test]
async fn authorize_errors_are_redirected_with_the_spec_codes() {
    let w = World::start().await.unwrap();
    w.confidential("rp").await.unwrap();
    let mut public = server::testing::TestProvider::confidential_client("spa", REDIRECT);
    public.auth_method = "none".into();
    w.provider.add_client(public).await.unwrap();
    let base = format!("{}/authorize?redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=s", w.provider.base_url);
    let challenge = PkceCodeChallenge::new_random_sha256().0;
    for (query, expected) in [
        ("&client_id=rp&response_type=token&scope=openid", "unsupported_response_type"),
        (
            &format!(
                "&client_id=rp&response_type=code&scope=openid&code_challenge={}&code_challenge_method=plain",
                challenge.as_str()
            ),
            "invalid_request",
        ),
        ("&client_id=spa&response_type=code&scope=openid", "invalid_request"),
        ("&client_id=rp&response_type=code&scope=profile", "invalid_scope"),
    ] {
        let url = Url::parse(&format!("{base}{query}")).unwrap();
        let Landing::Redirect(to) = Browser::new().navigate(&url, &w.issuer().unwrap()).await.unwrap() else {
            panic!("{query}")
        };
        assert_eq!(param(&to, "error").as_deref(), Some(expected), "{query}");
        assert_eq!(param(&to, "state").as_deref(), Some("s"));
    }
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let w = World::start().await.unwrap();
    let secret = w.confidential("rp").await.unwrap();
    let code = code_for(&w, "rp", None).await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let (status, first) = token(&w, Some(("rp", &secret)), &form).await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = token(&w, Some(("rp", &secret)), &form).await;
    assert_eq!((status, again["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let ui = w
        .http
        .get(w.provider.url("/userinfo"))
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), StatusCode::UNAUTHORIZED, "tokens issued from a replayed code are revoked");
    let (status, refreshed) = token(
        &w,
        Some(("rp", &secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!((status, refreshed["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client() {
    let w = World::start().await.unwrap();
    w.confidential("rp").await.unwrap();
    let client = w.client("rp", Some("not-the-secret".into())).await.unwrap();
    let code = code_for(&w, "rp", None).await;
    let result = client.exchange_code(AuthorizationCode::new(code.clone())).unwrap().request_async(&w.http).await;
    assert!(format!("{result:?}").contains("invalid_client"), "{result:?}");
    let (status, body) = token(
        &w,
        Some(("rp", "wrong")),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
}

#[tokio::test]
async fn pkce_verifier_missing_or_wrong_is_invalid_grant() {
    let w = World::start().await.unwrap();
    let secret = w.confidential("rp").await.unwrap();
    let client = w.client("rp", Some(secret)).await.unwrap();
    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let code = code_for(&w, "rp", Some(&challenge)).await;
    let missing = client.exchange_code(AuthorizationCode::new(code)).unwrap().request_async(&w.http).await;
    assert!(format!("{missing:?}").contains("invalid_grant"), "{missing:?}");
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let code = code_for(&w, "rp", Some(&challenge)).await;
    let wrong = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new("x".repeat(64)))
        .request_async(&w.http)
        .await;
    assert!(format!("{wrong:?}").contains("invalid_grant"), "{wrong:?}");
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let w = World::start().await.unwrap();
    let secret = w.confidential("rp").await.unwrap();
    let client = w.client("rp", Some(secret)).await.unwrap();
    let (url, _, _) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let back = w.log_in(&Browser::new(), &url).await.unwrap();
    w.provider.clock.advance(61);
    let result = client
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .request_async(&w.http)
        .await;
    assert!(format!("{result:?}").contains("invalid_grant"), "{result:?}");
}

/// A `private_key_jwt` client with an ES256 key; returns the key pair and its kid.
async fn jwt_client(w: &World) -> (EcdsaKeyPair, String) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let kid = "k1".to_owned();
    let jwks = serde_json::json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]});
    let metadata = ClientMetadata {
        client_name: "jwt".into(),
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec![],
        token_endpoint_auth_method: TokenEndpointAuthMethod::PrivateKeyJwt,
        jwks: Some(jwks),
        id_token_signed_response_alg: Default::default(),
        userinfo_signed_response_alg: None,
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        allowed_scopes: vec![],
        resource_server: false,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
    };
    w.provider.add_client_metadata("jwt", metadata).await.unwrap();
    (pair, kid)
}

fn assertion(pair: &EcdsaKeyPair, kid: &str, aud: &str, jti: &str, exp: i64) -> String {
    let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": kid });
    let claims = serde_json::json!({ "iss": "jwt", "sub": "jwt", "aud": aud, "jti": jti, "exp": exp, "iat": exp - 60 });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let sig = pair.sign(&SystemRandom::new(), signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

#[tokio::test]
async fn private_key_jwt_checks_audience_and_single_use() {
    let w = World::start().await.unwrap();
    let (pair, kid) = jwt_client(&w).await;
    let exp = w.provider.clock.now() + 120;
    let token_url = w.provider.url("/token");
    let exchange = |code: String, assertion: String| {
        let form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code),
            ("redirect_uri".to_owned(), REDIRECT.to_owned()),
            ("client_assertion_type".to_owned(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
            ("client_assertion".to_owned(), assertion),
        ];
        let req = w.http.post(token_url.clone()).form(&form);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };

    let wrong_aud = assertion(&pair, &kid, "https://someone-else.example/token", "j1", exp);
    let (status, body) = exchange(code_for(&w, "jwt", None).await, wrong_aud).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "wrong aud");

    let good = assertion(&pair, &kid, &token_url, "j2", exp);
    let (status, body) = exchange(code_for(&w, "jwt", None).await, good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string());

    let (status, body) = exchange(code_for(&w, "jwt", None).await, good).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "a replayed assertion"
    );

    let far = assertion(&pair, &kid, &token_url, "j3", w.provider.clock.now() + 3600);
    let (status, _) = exchange(code_for(&w, "jwt", None).await, far).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an assertion valid for an hour is refused");
}

#[tokio::test]
async fn introspection_then_revocation() {
    let w = World::start().await.unwrap();
    let secret = w.confidential("rp").await.unwrap();
    let client = w.client("rp", Some(secret.clone())).await.unwrap();
    let (url, _, _) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let back = w.log_in(&Browser::new(), &url).await.unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .request_async(&w.http)
        .await
        .unwrap();
    let at = tokens.access_token().secret().clone();
    let rt = tokens.refresh_token().unwrap().secret().clone();
    let introspect = |token: String| {
        let req =
            w.http.post(w.provider.url("/introspect")).basic_auth("rp", Some(secret.clone())).form(&[("token", token)]);
        async move { req.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let active = introspect(at.clone()).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], "rp");
    assert_eq!(introspect(rt.clone()).await["active"], true);
    assert_eq!(introspect("garbage".into()).await, serde_json::json!({ "active": false }));

    let anonymous = w.http.post(w.provider.url("/introspect")).form(&[("token", at.as_str())]).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "introspection needs client authentication");

    let revoke = |token: String, hint: &'static str| {
        let req = w
            .http
            .post(w.provider.url("/revoke"))
            .basic_auth("rp", Some(secret.clone()))
            .form(&[("token", token), ("token_type_hint", hint.to_owned())]);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(revoke(at.clone(), "access_token").await, StatusCode::OK);
    assert_eq!(introspect(at).await["active"], false);
    assert_eq!(revoke(rt.clone(), "refresh_token").await, StatusCode::OK);
    assert_eq!(introspect(rt).await["active"], false);
    assert_eq!(revoke("unknown".into(), "refresh_token").await, StatusCode::OK, "RFC 7009: unknown tokens answer 200");
}
