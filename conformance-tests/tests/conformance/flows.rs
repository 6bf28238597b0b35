//! The flows a relying party runs: discovery, code flow with PKCE, ID token and userinfo, refresh,
//! SSO, prompt=none, logout, and each client authentication method.

use conformance_tests::browser::{Browser, Landing, hidden_field};
use conformance_tests::rp::{REDIRECT, USER, World, param};
use openidconnect::JsonWebKey as _;
use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, Scope,
    TokenResponse,
};
use reqwest::{StatusCode, Url};
use server::testing::TestProvider;

#[tokio::test]
async fn discovery_advertises_working_endpoints_and_both_key_types() {
    let w = World::start().await.unwrap();
    let meta = w.metadata().await.unwrap();
    assert_eq!(meta.issuer().as_str(), w.provider.base_url);
    let raw: serde_json::Value =
        w.http.get(w.provider.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        let url = raw[key].as_str().unwrap_or_else(|| panic!("{key} advertised"));
        let status = w.http.get(url).send().await.unwrap().status();
        assert_ne!(status, StatusCode::NOT_FOUND, "{key} answers");
    }
    assert_eq!(raw["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(raw["response_types_supported"], serde_json::json!(["code"]));
    let algs: Vec<String> = meta.jwks().keys().iter().map(|k| format!("{:?}", k.signing_alg())).collect();
    assert!(algs.iter().any(|a| a.contains("Rsa")), "an RS256 key: {algs:?}");
    assert!(algs.iter().any(|a| a.contains("Ecdsa")), "an ES256 key: {algs:?}");
}

#[tokio::test]
async fn code_flow_with_pkce_yields_verified_id_token_and_userinfo() {
    let w = World::start().await.unwrap();
    let secret = w.confidential("rp").await.unwrap();
    let client = w.client("rp", Some(secret)).await.unwrap();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = w.log_in(&Browser::new(), &auth_url).await.unwrap();
    assert!(back.as_str().starts_with(REDIRECT));
    assert_eq!(param(&back, "state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(param(&back, "iss").as_deref(), Some(w.provider.base_url.as_str()), "RFC 9207 iss");

    let code = AuthorizationCode::new(param(&back, "code").unwrap());
    let tokens = client.exchange_code(code).unwrap().set_pkce_verifier(verifier).request_async(&w.http).await.unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).expect("a valid ID token");
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some("eidas1"));
    let amr: Vec<String> = claims.auth_method_refs().unwrap().iter().map(|a| a.as_str().to_owned()).collect();
    assert!(["pwd", "otp", "mfa"].iter().all(|x| amr.iter().any(|a| a == x)), "{amr:?}");
    assert!(claims.auth_time().is_some());
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected);
    let raw = id_token.to_string();
    let payload: serde_json::Value = serde_json::from_slice(&base64_decode(raw.split('.').nth(1).unwrap())).unwrap();
    assert!(payload["sid"].is_string() && payload["azp"] == "rp");

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&w.http)
        .await
        .unwrap();
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.preferred_username().unwrap().as_str(), USER);
    assert!(info.given_name().is_some() && info.family_name().is_some() && info.email().is_some());
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}

#[tokio::test]
async fn scope_all_releases_pro_sante_connect_claims() {
    let w = World::start().await.unwrap();
    let secret = w.confidential("rp").await.unwrap();
    let client = w.client("rp", Some(secret)).await.unwrap();
    let (auth_url, _, _) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("scope_all".into()))
        .url();
    let back = w.log_in(&Browser::new(), &auth_url).await.unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .request_async(&w.http)
        .await
        .unwrap();
    // PSC relying parties read these as plain JSON: check the raw answer, key by key.
    let info: serde_json::Value = w
        .http
        .get(w.provider.url("/userinfo"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["SubjectNameID"], USER);
    assert_eq!(info["preferred_username"], USER);
    assert_eq!(info["SubjectRefPro"]["codeCivilite"], "MME");
    assert_eq!(info["SubjectRefPro"]["exercices"][0]["codeProfession"], "10");
    assert_eq!(info["SubjectRole"], serde_json::json!(["10^1.2.250.1.213.1.1.5.5"]));
    assert!(info["Palier_Authentification"].as_str().unwrap().starts_with("APPPRIP"));
}

#[tokio::test]
async fn es256_id_tokens_and_signed_userinfo_for_clients_that_register_them() {
    let w = World::start().await.unwrap();
    let mut add = TestProvider::confidential_client("es", REDIRECT);
    add.id_token_alg = "ES256".into();
    add.userinfo_alg = Some("RS256".into());
    let (_, secret) = w.provider.add_client(add).await.unwrap();
    let client = w.client("es", secret).await.unwrap();
    let (auth_url, _, nonce) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let back = w.log_in(&Browser::new(), &auth_url).await.unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .request_async(&w.http)
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    assert_eq!(id_token.signing_alg().unwrap(), &CoreJwsSigningAlgorithm::EcdsaP256Sha256);
    let verifier = client.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .require_signed_response(true)
        .request_async(&w.http)
        .await
        .expect("a signed userinfo JWT verified by openidconnect");
    assert_eq!(info.subject(), claims.subject());
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let w = World::start().await.unwrap();
    let secret = w.confidential("rp").await.unwrap();
    let client = w.client("rp", Some(secret)).await.unwrap();
    let (auth_url, _, _) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let back = w.log_in(&Browser::new(), &auth_url).await.unwrap();
    let first = client
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .request_async(&w.http)
        .await
        .unwrap();
    let rt1 = first.refresh_token().unwrap().clone();

    let second = client.exchange_refresh_token(&rt1).unwrap().request_async(&w.http).await.unwrap();
    let rt2 = second.refresh_token().unwrap().clone();
    assert_ne!(rt1.secret(), rt2.secret(), "rotated");
    assert_ne!(first.access_token().secret(), second.access_token().secret());
    assert!(second.id_token().is_some());
    let status = |t: &str| {
        let req = w.http.get(w.provider.url("/userinfo")).bearer_auth(t.to_owned());
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(status(second.access_token().secret()).await, StatusCode::OK);

    // The old one again: refused, and the whole family dies with it.
    let reuse = client.exchange_refresh_token(&rt1).unwrap().request_async(&w.http).await;
    assert!(format!("{reuse:?}").contains("invalid_grant"), "{reuse:?}");
    let after = client.exchange_refresh_token(&rt2).unwrap().request_async(&w.http).await;
    assert!(format!("{after:?}").contains("invalid_grant"), "the newest refresh token is revoked too");
    assert_eq!(status(second.access_token().secret()).await, StatusCode::UNAUTHORIZED, "and its access tokens");
}

#[tokio::test]
async fn sso_signs_a_second_client_in_without_asking_unless_told_otherwise() {
    let w = World::start().await.unwrap();
    let a = w.client("a", Some(w.confidential("a").await.unwrap())).await.unwrap();
    let b = w.client("b", Some(w.confidential("b").await.unwrap())).await.unwrap();
    let browser = Browser::new();
    let (url_a, _, _) =
        a.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    w.log_in(&browser, &url_a).await.unwrap();

    let (url_b, _, _) =
        b.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    match browser.navigate(&url_b, &w.issuer().unwrap()).await.unwrap() {
        Landing::Redirect(to) => assert!(param(&to, "code").is_some(), "signed in silently: {to}"),
        other => panic!("expected SSO, got {other:?}"),
    }
    let (forced, _, _) = b
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_prompt(openidconnect::core::CoreAuthPrompt::Login)
        .url();
    assert!(
        matches!(browser.navigate(&forced, &w.issuer().unwrap()).await.unwrap(), Landing::LoginForm { .. }),
        "prompt=login asks again"
    );
    w.provider.clock.advance(5);
    let (aged, _, _) = b
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_max_age(std::time::Duration::from_secs(1))
        .url();
    assert!(
        matches!(browser.navigate(&aged, &w.issuer().unwrap()).await.unwrap(), Landing::LoginForm { .. }),
        "max_age asks again"
    );
    let (stronger, _, _) = b
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_auth_context_value(openidconnect::AuthenticationContextClass::new("eidas3".into()))
        .url();
    assert!(
        matches!(browser.navigate(&stronger, &w.issuer().unwrap()).await.unwrap(), Landing::LoginForm { .. }),
        "a stronger acr asks again"
    );
}

#[tokio::test]
async fn prompt_none_without_a_session_returns_login_required() {
    let w = World::start().await.unwrap();
    let client = w.client("rp", Some(w.confidential("rp").await.unwrap())).await.unwrap();
    let (url, state, _) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_prompt(openidconnect::core::CoreAuthPrompt::None)
        .url();
    let Landing::Redirect(to) = Browser::new().navigate(&url, &w.issuer().unwrap()).await.unwrap() else {
        panic!("redirected")
    };
    assert_eq!(param(&to, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&to, "state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(param(&to, "iss").as_deref(), Some(w.provider.base_url.as_str()));
}

#[tokio::test]
async fn end_session_logs_out_and_kills_the_tokens() {
    let w = World::start().await.unwrap();
    let mut add = TestProvider::confidential_client("rp", REDIRECT);
    add.post_logout_redirect_uris = vec!["http://127.0.0.1:9/bye".into()];
    let (_, secret) = w.provider.add_client(add).await.unwrap();
    let client = w.client("rp", secret).await.unwrap();
    let browser = Browser::new();
    let (url, _, _) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let back = w.log_in(&browser, &url).await.unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .request_async(&w.http)
        .await
        .unwrap();

    let raw: serde_json::Value =
        w.http.get(w.provider.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let end = openidconnect::EndSessionUrl::new(raw["end_session_endpoint"].as_str().unwrap().to_owned()).unwrap();
    let logout = openidconnect::LogoutRequest::from(end)
        .set_id_token_hint(tokens.id_token().unwrap())
        .set_post_logout_redirect_uri(
            openidconnect::PostLogoutRedirectUrl::new("http://127.0.0.1:9/bye".into()).unwrap(),
        )
        .set_state(CsrfToken::new("after-logout".into()))
        .http_get_url();
    let Landing::Redirect(to) = browser.navigate(&logout, &w.issuer().unwrap()).await.unwrap() else {
        panic!("redirect")
    };
    assert!(to.as_str().starts_with("http://127.0.0.1:9/bye"));
    assert_eq!(param(&to, "state").as_deref(), Some("after-logout"));

    let ui = w.http.get(w.provider.url("/userinfo")).bearer_auth(tokens.access_token().secret()).send().await.unwrap();
    assert_eq!(ui.status(), StatusCode::UNAUTHORIZED);
    assert!(ui.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let refresh = client.exchange_refresh_token(tokens.refresh_token().unwrap()).unwrap().request_async(&w.http).await;
    assert!(format!("{refresh:?}").contains("invalid_grant"));
    let (none, _, _) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_prompt(openidconnect::core::CoreAuthPrompt::None)
        .url();
    let Landing::Redirect(to) = browser.navigate(&none, &w.issuer().unwrap()).await.unwrap() else {
        panic!("redirect")
    };
    assert_eq!(param(&to, "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn end_session_without_id_token_hint_asks_the_person() {
    let w = World::start().await.unwrap();
    let client = w.client("rp", Some(w.confidential("rp").await.unwrap())).await.unwrap();
    let browser = Browser::new();
    let (url, _, _) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    w.log_in(&browser, &url).await.unwrap();
    let end = Url::parse(&w.provider.url("/end_session")).unwrap();
    let Landing::Page { status, html } = browser.navigate(&end, &w.issuer().unwrap()).await.unwrap() else {
        panic!("a page")
    };
    assert_eq!(status, StatusCode::OK);
    let confirmation = hidden_field(&html, "confirmation").expect("a confirmation form");
    let r = browser
        .post(
            Url::parse(&w.provider.url("/end_session/confirm")).unwrap(),
            &[("confirmation", &confirmation), ("action", "logout")],
        )
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("déconnecté"));
    let (none, _, _) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_prompt(openidconnect::core::CoreAuthPrompt::None)
        .url();
    let Landing::Redirect(to) = browser.navigate(&none, &w.issuer().unwrap()).await.unwrap() else {
        panic!("redirect")
    };
    assert_eq!(param(&to, "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn client_secret_post_and_public_clients_with_pkce() {
    let w = World::start().await.unwrap();
    let mut post = TestProvider::confidential_client("post", REDIRECT);
    post.auth_method = "client_secret_post".into();
    let (_, secret) = w.provider.add_client(post).await.unwrap();
    let client = w.client("post", secret).await.unwrap().set_auth_type(AuthType::RequestBody);
    let browser = Browser::new();
    let (url, _, _) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let back = w.log_in(&browser, &url).await.unwrap();
    client
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .request_async(&w.http)
        .await
        .expect("client_secret_post");

    let mut public = TestProvider::confidential_client("spa", REDIRECT);
    public.auth_method = "none".into();
    w.provider.add_client(public).await.unwrap();
    let spa = w.client("spa", None).await.unwrap().set_auth_type(AuthType::RequestBody);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = spa
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let back = w.log_in(&browser, &url).await.unwrap();
    let tokens = spa
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&w.http)
        .await
        .expect("public client with PKCE");
    assert!(tokens.refresh_token().is_some());
}
