//! Who may administer (issue 13, items 6 and 12): an admin token is worth what its client is
//! worth at each call, and the certificate header a trusted proxy passes is believed once only.

use reqwest::{Method, StatusCode};
use server::testing::TestProvider;

use crate::admin::{CONSOLE_PEM, STRANGER_PEM, behind_proxy_with_console_certificate, call, escaped};
use crate::common::*;

/// Issue 13, item 12: the certificate header a trusted proxy passes is believed only when it
/// comes once. Twice means someone's copy got through beside the proxy's (or the proxy is
/// misconfigured): which one is the proxy's cannot be told, so the admin API refuses with a 400
/// instead of picking one. Other routes do not read the header at all.
#[tokio::test]
async fn item_12_a_certificate_header_sent_twice_is_refused() {
    let s = behind_proxy_with_console_certificate().await;
    let twice = |first: &str, second: &str, path: &str| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.append("x-client-cert", first.parse().unwrap());
        headers.append("x-client-cert", second.parse().unwrap());
        reqwest::Client::new().get(s.p.url(path)).headers(headers).send()
    };
    let (console, stranger) = (escaped(CONSOLE_PEM), escaped(STRANGER_PEM));
    for (first, second) in [(&console, &stranger), (&stranger, &console), (&console, &console)] {
        let r = twice(first, second, "/admin/v1/clients").await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let err: serde_json::Value = r.json().await.unwrap();
        assert_eq!(err["error"], "invalid_request");
        assert!(err["message"].as_str().unwrap().contains("more than once"), "{err}");
    }
    // Once, it still administers.
    let once = reqwest::Client::new().get(s.p.url("/admin/v1/clients")).header("x-client-cert", &console);
    assert_eq!(once.send().await.unwrap().status(), StatusCode::OK);
    // Routes that do not read the header are not disturbed by it, twice or malformed.
    assert_eq!(twice(&console, "garbage", "/healthz").await.unwrap().status(), StatusCode::OK);
    let discovery = twice(&console, "garbage", "/.well-known/openid-configuration").await.unwrap();
    assert_eq!(discovery.status(), StatusCode::OK);
}

/// A client registered for the admin API (client credentials, `caducee:admin`) and a token of it.
async fn admin_client(p: &TestProvider, client_id: &str) -> (String, String) {
    let mut add = TestProvider::confidential_client(client_id, REDIRECT);
    add.redirect_uris.clear();
    add.grant_types = vec!["client_credentials".into()];
    add.scopes = vec!["caducee:admin".into()];
    let (_, secret) = p.add_client(add).await.unwrap();
    let secret = secret.unwrap();
    let token = client_credentials_token(p, client_id, &secret).await;
    (secret, token)
}

async fn client_credentials_token(p: &TestProvider, client_id: &str, secret: &str) -> String {
    let r = reqwest::Client::new()
        .post(p.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

/// Issue 13, item 6: an admin token is worth what its client is worth now, not when the token
/// was issued. Deleting the client (even from another process: the CLI on the same database),
/// taking the admin scope or the client-credentials grant away from it, rotating its secret or
/// changing its keys ends its tokens' rights at the next call, with a 401 `invalid_token`.
#[tokio::test]
async fn item_6_admin_tokens_lose_their_rights_with_their_client() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (_, operator) = admin_client(&s.p, "operator").await;
    let (_, deleted) = admin_client(&s.p, "svc-deleted").await;
    let (_, demoted) = admin_client(&s.p, "svc-demoted").await;
    let (rotated_secret, rotated) = admin_client(&s.p, "svc-rotated").await;
    let (_, rekeyed) = admin_client(&s.p, "svc-rekeyed").await;
    for token in [&operator, &deleted, &demoted, &rotated, &rekeyed] {
        assert_eq!(call(&s.p, Method::GET, "/admin/v1/clients", Some(token), None).await.status(), StatusCode::OK);
    }
    // The changes come a second after the tokens were issued (tokens carry whole seconds).
    s.p.clock.advance(1);
    let refused = |token: String, why: &'static str| {
        let p = &s.p;
        async move {
            let r = call(p, Method::GET, "/admin/v1/clients", Some(&token), None).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{why}");
            let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.contains("error=\"invalid_token\""), "{why}: {challenge}");
            let err: serde_json::Value = r.json().await.unwrap();
            assert_eq!(err["error"], "unauthorized", "{why}");
            err["message"].as_str().unwrap().to_owned()
        }
    };

    // Deleted by an operator's command on the same database (another process: no cache of
    // this node knows of it).
    let cli = server::app::open_directory(&s.p.app.config).await.unwrap();
    assert!(cli.clients().delete("svc-deleted").await.unwrap());
    let message = refused(deleted, "deleted client").await;
    assert!(message.contains("no longer exists"), "{message}");

    // Its registration no longer holds the admin scope.
    let metadata = |scopes: &[&str], grants: &[&str], jwks: Option<serde_json::Value>| {
        let mut m = serde_json::json!({
            "redirect_uris": ["https://svc.example/cb"], "grant_types": grants, "allowed_scopes": scopes,
        });
        if let Some(jwks) = jwks {
            m["jwks"] = jwks;
        }
        serde_json::json!({ "metadata": m })
    };
    let r = call(
        &s.p,
        Method::PUT,
        "/admin/v1/clients/svc-demoted",
        Some(&operator),
        Some(metadata(&["caducee:reports"], &["client_credentials"], None)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let message = refused(demoted.clone(), "scope removed").await;
    assert!(message.contains("no longer allowed"), "{message}");
    // Given back the scope but not the grant: still nothing.
    let r = call(
        &s.p,
        Method::PUT,
        "/admin/v1/clients/svc-demoted",
        Some(&operator),
        Some(metadata(&["caducee:admin"], &["authorization_code"], None)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let message = refused(demoted, "grant removed").await;
    assert!(message.contains("no longer allowed"), "{message}");

    // Its secret rotated: tokens obtained with the old one are done; the new one gets new tokens.
    let r = call(&s.p, Method::POST, "/admin/v1/clients/svc-rotated/secret", Some(&operator), None).await;
    let new_secret = r.json::<serde_json::Value>().await.unwrap()["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, rotated_secret);
    let message = refused(rotated, "secret rotated").await;
    assert!(message.contains("credentials changed"), "{message}");
    s.p.clock.advance(1);
    let fresh = client_credentials_token(&s.p, "svc-rotated", &new_secret).await;
    assert_eq!(call(&s.p, Method::GET, "/admin/v1/clients", Some(&fresh), None).await.status(), StatusCode::OK);

    // Its keys changed (a JWK Set registered, here beside its secret).
    let jwks = serde_json::json!({ "keys": [{ "kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] });
    let r = call(
        &s.p,
        Method::PUT,
        "/admin/v1/clients/svc-rekeyed",
        Some(&operator),
        Some(metadata(&["caducee:admin"], &["client_credentials"], Some(jwks))),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    refused(rekeyed, "keys changed").await;

    // A change that touches neither rights nor credentials leaves the operator's token alone.
    let r = call(
        &s.p,
        Method::PUT,
        "/admin/v1/clients/operator",
        Some(&operator),
        Some(metadata(&["caducee:admin"], &["client_credentials"], None)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(call(&s.p, Method::GET, "/admin/v1/clients", Some(&operator), None).await.status(), StatusCode::OK);
}
