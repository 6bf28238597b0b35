//! Client authentication at the token endpoint (RFC 6749 2.3, OIDC Core 9, RFC 7523): each
//! registered method works, and only the registered one; failures are `401 invalid_client`.

use conformance_tests::assertion::{ASSERTION_TYPE, ClientKey, register_jwt_client};
use conformance_tests::browser::Browser;
use conformance_tests::rp::{REDIRECT, World, authorize, oauth_error, param};
use openidconnect::{AuthType, AuthorizationCode, OAuth2TokenResponse};
use reqwest::StatusCode;
use server::testing::TestProvider;

/// A login that stops at the code (no PKCE: these tests are about client authentication).
async fn code_for(w: &World, client_id: &str) -> String {
    let mut url = w.url("/authorize").unwrap();
    url.query_pairs_mut().extend_pairs([
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
    ]);
    let back = w.log_in(&Browser::new(), &url).await.unwrap();
    param(&back, "code").unwrap()
}

fn code_form(code: &str) -> Vec<(&str, &str)> {
    vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)]
}

/// A client registered with a secret may send it either way (as Keycloak accepts, and as
/// relying parties written for Pro Santé Connect do); never both at once, and a secret never
/// stands in for another method.
#[tokio::test]
async fn client_secret_basic_and_post_work_for_any_secret_client_but_not_both_at_once() {
    let w = World::start().await.unwrap();
    let basic = w.confidential_rp("basic").await.unwrap();
    let signed = w.sign_in(&basic, &Browser::new(), &[]).await.expect("client_secret_basic (openidconnect's default)");
    assert!(signed.tokens.refresh_token().is_some());

    let mut post = TestProvider::confidential_client("post", REDIRECT);
    post.auth_method = "client_secret_post".into();
    let (_, secret) = w.provider.add_client(post).await.unwrap();
    let secret = secret.unwrap();
    let client = w.client("post", Some(secret.clone())).await.unwrap().set_auth_type(AuthType::RequestBody);
    w.sign_in(&client, &Browser::new(), &[]).await.expect("client_secret_post");

    // The same secret through Basic: a secret either way.
    let code = code_for(&w, "post").await;
    let (status, body) = w.token_raw(Some(("post", &secret)), &code_form(&code)).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    // A wrong secret is refused either way.
    let code = code_for(&w, "post").await;
    let (status, body) = w.token_raw(Some(("post", "not-the-secret")), &code_form(&code)).await.unwrap();
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    // Two methods at once (RFC 6749 2.3: "MUST NOT use more than one").
    let mut form = code_form(&code);
    form.extend([("client_id", "post"), ("client_secret", secret.as_str())]);
    let (status, _) = w.token_raw(Some(("post", &secret)), &form).await.unwrap();
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED, "{status}");
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client() {
    let w = World::start().await.unwrap();
    w.confidential("rp").await.unwrap();
    let code = code_for(&w, "rp").await;
    let client = w.client("rp", Some("not-the-secret".into())).await.unwrap();
    let result = client.exchange_code(AuthorizationCode::new(code.clone())).unwrap().request_async(&w.http).await;
    assert_eq!(oauth_error(&result).as_deref(), Some("invalid_client"), "{result:?}");
    let r = w.http.post(w.provider.url("/token")).basic_auth("rp", Some("wrong")).form(&code_form(&code)).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Basic"), "RFC 6749 5.2: the scheme the client used: {challenge}");
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "invalid_client");
    let (status, body) = w.token_raw(Some(("nobody", "x")), &code_form(&code)).await.unwrap();
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "unknown id");
}

#[tokio::test]
async fn private_key_jwt_through_openidconnect() {
    let w = World::start().await.unwrap();
    let key = ClientKey::generate("k1").unwrap();
    register_jwt_client(&w, "jwt", &key).await.unwrap();
    let client = w.client("jwt", None).await.unwrap().set_auth_type(AuthType::RequestBody);
    let token_url = w.provider.url("/token");
    let assertion = |jti: &str| key.sign(&ClientKey::claims("jwt", &token_url, jti, w.provider.clock.now())).unwrap();

    let pending = authorize(&client, &[]);
    let back = w.log_in(&Browser::new(), &pending.url).await.unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(pending.verifier)
        .add_extra_param("client_assertion_type", ASSERTION_TYPE)
        .add_extra_param("client_assertion", assertion("a1"))
        .request_async(&w.http)
        .await
        .expect("private_key_jwt at the token endpoint");
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .add_extra_param("client_assertion_type", ASSERTION_TYPE)
        .add_extra_param("client_assertion", assertion("a2"))
        .request_async(&w.http)
        .await
        .expect("and for a refresh");
    assert_eq!(w.userinfo_status(refreshed.access_token().secret()).await.unwrap(), StatusCode::OK);
    // The issuer is an audience as good as the token endpoint (RFC 7523 3, item 3).
    let by_issuer = key.sign(&ClientKey::claims("jwt", &w.provider.base_url, "a3", w.provider.clock.now())).unwrap();
    let (status, body) = exchange_with(&w, &by_issuer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn public_clients_use_pkce_and_no_secret() {
    let w = World::start().await.unwrap();
    let mut public = TestProvider::confidential_client("spa", REDIRECT);
    public.auth_method = "none".into();
    w.provider.add_client(public).await.unwrap();
    let spa = w.client("spa", None).await.unwrap().set_auth_type(AuthType::RequestBody);
    let signed = w.sign_in(&spa, &Browser::new(), &[]).await.expect("public client with PKCE");
    let refreshed =
        spa.exchange_refresh_token(signed.tokens.refresh_token().unwrap()).unwrap().request_async(&w.http).await;
    assert!(refreshed.is_ok(), "{refreshed:?}");
    // A secret from a public client is not its registered method.
    let guessing = w.client("spa", Some("guess".into())).await.unwrap().set_auth_type(AuthType::RequestBody);
    let pending = authorize(&guessing, &[]);
    let back = w.log_in(&Browser::new(), &pending.url).await.unwrap();
    let result = guessing
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(pending.verifier)
        .request_async(&w.http)
        .await;
    assert_eq!(oauth_error(&result).as_deref(), Some("invalid_client"), "{result:?}");
}

/// Redeems a fresh code of `jwt` with `assertion`.
async fn exchange_with(w: &World, assertion: &str) -> (StatusCode, serde_json::Value) {
    let code = code_for(w, "jwt").await;
    let mut form = code_form(&code);
    form.extend([("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)]);
    w.token_raw(None, &form).await.unwrap()
}

#[tokio::test]
async fn private_key_jwt_with_a_wrong_audience_is_invalid_client() {
    let w = World::start().await.unwrap();
    let key = ClientKey::generate("k1").unwrap();
    register_jwt_client(&w, "jwt", &key).await.unwrap();
    let claims = ClientKey::claims("jwt", "https://someone-else.example/token", "j1", w.provider.clock.now());
    let (status, body) = exchange_with(&w, &key.sign(&claims).unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
}

#[tokio::test]
async fn a_replayed_private_key_jwt_assertion_is_invalid_client() {
    let w = World::start().await.unwrap();
    let key = ClientKey::generate("k1").unwrap();
    register_jwt_client(&w, "jwt", &key).await.unwrap();
    let assertion = key.sign(&ClientKey::claims("jwt", &w.provider.url("/token"), "once", w.provider.clock.now()));
    let assertion = assertion.unwrap();
    let (status, body) = exchange_with(&w, &assertion).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // OIDC Core 9: "The JWT MAY contain a jti ... the authorization server MUST only accept it once" (RFC 7523 3, 7).
    let (status, body) = exchange_with(&w, &assertion).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
}

#[tokio::test]
async fn private_key_jwt_refuses_foreign_keys_and_long_lived_assertions() {
    let w = World::start().await.unwrap();
    let key = ClientKey::generate("k1").unwrap();
    register_jwt_client(&w, "jwt", &key).await.unwrap();
    let token_url = w.provider.url("/token");
    let now = w.provider.clock.now();

    let stranger = ClientKey::generate("k1").unwrap();
    let (status, _) =
        exchange_with(&w, &stranger.sign(&ClientKey::claims("jwt", &token_url, "j1", now)).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed with a key the client did not register");

    let mut far = ClientKey::claims("jwt", &token_url, "j2", now);
    far.exp = now + 3600;
    let (status, _) = exchange_with(&w, &key.sign(&far).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an assertion valid for an hour (docs: at most 5 minutes)");

    let mut other_sub = ClientKey::claims("jwt", &token_url, "j3", now);
    other_sub.iss = "someone".into();
    let (status, _) = exchange_with(&w, &key.sign(&other_sub).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "iss must be the client id");
}

#[tokio::test]
async fn an_expired_private_key_jwt_assertion_is_invalid_client() {
    let w = World::start().await.unwrap();
    let key = ClientKey::generate("k1").unwrap();
    register_jwt_client(&w, "jwt", &key).await.unwrap();
    // The provider's clock moves ten minutes on: an assertion that expired 30 s ago, by that
    // clock, must be refused (RFC 7523 3, item 4), whatever the host's clock says.
    w.provider.clock.advance(600);
    let now = w.provider.clock.now();
    let mut claims = ClientKey::claims("jwt", &w.provider.url("/token"), "late", now);
    claims.iat = now - 90;
    claims.exp = now - 30;
    let assertion = key.sign(&claims).unwrap();
    // Introspection authenticates clients the same way, without a code that would expire too.
    let form = [("token", "anything"), ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &assertion)];
    let r = w.http.post(w.provider.url("/introspect")).form(&form).send().await.unwrap();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "{body}");
}

/// Issue 13, item 17: a client assertion's `exp` is the attacker's number. At the largest `i64`
/// the expiry arithmetic overflowed (a panic in debug builds, a wrap in release); it must be
/// judged like any other far-future expiry: `401 invalid_client`, and the provider still answers.
#[tokio::test]
async fn item_17_assertion_with_exp_at_i64_max_is_invalid_client() {
    let w = World::start().await.unwrap();
    let key = ClientKey::generate("k1").unwrap();
    register_jwt_client(&w, "jwt", &key).await.unwrap();
    let now = w.provider.clock.now();
    for (jti, exp) in [("max", i64::MAX), ("min", i64::MIN), ("near-max", i64::MAX - 4)] {
        let mut claims = ClientKey::claims("jwt", &w.provider.url("/token"), jti, now);
        claims.exp = exp;
        let assertion = key.sign(&claims).unwrap();
        let form = [("token", "anything"), ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &assertion)];
        let r = w.http.post(w.provider.url("/introspect")).form(&form).send().await.expect("an answer, not a crash");
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "exp {exp}");
    }
    // The same client still authenticates with a sound assertion.
    let sound = key.sign(&ClientKey::claims("jwt", &w.provider.url("/token"), "sound", now)).unwrap();
    let form = [("token", "anything"), ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &sound)];
    let r = w.http.post(w.provider.url("/introspect")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// OIDC Core 9 `client_secret_jwt`: an assertion MACed with the client's secret (HS256 here),
/// as Pro Santé Connect's discovery offers; a secret sent as is, or an assertion MACed with
/// another secret or signed with an asymmetric `alg`, is refused.
#[tokio::test]
async fn client_secret_jwt_assertions_are_macs_of_the_registered_secret() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let w = World::start().await.unwrap();
    let mut add = TestProvider::confidential_client("hmac", REDIRECT);
    add.auth_method = "client_secret_jwt".into();
    let (_, secret) = w.provider.add_client(add).await.unwrap();
    let secret = secret.expect("a secret to MAC with");
    let discovery: serde_json::Value =
        w.http.get(w.provider.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(discovery["token_endpoint_auth_methods_supported"].to_string().contains("client_secret_jwt"));
    assert!(discovery["token_endpoint_auth_signing_alg_values_supported"].to_string().contains("HS256"));

    let token_url = w.provider.url("/token");
    let mac = |key: &str, jti: &str, alg: Algorithm| {
        let claims = ClientKey::claims("hmac", &token_url, jti, w.provider.clock.now());
        jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(key.as_bytes())).unwrap()
    };
    let (status, body) = hmac_exchange(&w, &mac(&secret, "m1", Algorithm::HS256)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = hmac_exchange(&w, &mac(&secret, "m2", Algorithm::HS512)).await;
    assert_eq!(status, StatusCode::OK, "HS512 too");
    let (status, _) =
        hmac_exchange(&w, &mac("another-secret-of-the-same-length-1234567", "m3", Algorithm::HS256)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "MACed with another secret");
    let (status, _) = hmac_exchange(&w, &mac(&secret, "m1", Algorithm::HS256)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a jti accepted once");
    // The secret itself is not a way in for a client registered for assertions.
    let code = code_for(&w, "hmac").await;
    let (status, _) = w.token_raw(Some(("hmac", &secret)), &code_form(&code)).await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // And the stored record does not hold the secret in clear, nor its plain hash.
    let stored = w.provider.directory().clients().get("hmac").await.unwrap().unwrap().secret_hash.unwrap();
    assert!(stored.starts_with("sealed$") && !stored.contains(&secret), "{stored}");
}

/// Redeems a fresh code of `hmac` with `assertion`.
async fn hmac_exchange(w: &World, assertion: &str) -> (StatusCode, serde_json::Value) {
    let code = code_for(w, "hmac").await;
    let mut form = code_form(&code);
    form.extend([("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)]);
    w.token_raw(None, &form).await.unwrap()
}
