//! Passkeys and security keys through the provider's own forms, with a software authenticator
//! (webauthn-authenticator-rs's CTAP2 token): the security key after the password signs into a
//! relying party with the operator's level and RFC 8176 `amr`, and the wallet adds a key only
//! right after a sign-in.

use reqwest::StatusCode;
use server::testing::TestProvider;
use url::Url;
use webauthn_authenticator_rs::AuthenticatorBackend as _;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs_proto::{PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions};

use crate::common::*;
use crate::wallet::open_wallet;

async fn provider() -> Setup {
    let p = TestProvider::start_with(server::testing::Storage::Embedded, |c| {
        c.login.methods = vec!["otp".into(), "webauthn".into(), "webauthn-key".into()];
    })
    .await
    .unwrap();
    setup(p).await
}

/// The value of attribute `name` in `html`, unescaped.
fn attribute(html: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    let raw = html[start..].split('"').next().unwrap();
    raw.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn a_security_key_after_the_password_signs_in_with_the_operators_level() {
    let s = provider().await;
    let origin = Url::parse(&s.p.base_url).unwrap();
    // The key, enrolled as the wallet does it (the wallet's pages are the browser test's).
    let mut key = SoftToken::new(true).unwrap().0;
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    let passkeys = s.p.app.passkeys.as_ref().expect("webauthn is on");
    let start = passkeys.start_enrolment(&subject, USER, "Jeanne Martin").await.unwrap();
    let options: PublicKeyCredentialCreationOptions = serde_json::from_str(&start.options).unwrap();
    let answer = key.perform_register(origin.clone(), options, 10_000).unwrap();
    let actor = authn_methods::webauthn::Actor { subject: &subject, source_ip: None, now: s.p.clock.now() };
    passkeys.finish_enrolment(&actor, &start.ceremony, &serde_json::to_string(&answer).unwrap(), "Clé").await.unwrap();

    let b = Browser::new();
    let (login_url, html) = open_login(&b, &s.p, "rp", &[]).await;
    assert!(
        html.contains("Clé d&#39;accès") || html.contains("Clé d'accès") || html.contains("Clé d&#x27;accès"),
        "the passkey is offered"
    );
    let token = csrf(&html);
    let form = [
        ("csrf_token", token.as_str()),
        ("method", "pwd"),
        ("then", "webauthn-key"),
        ("username", USER),
        ("password", PASSWORD),
    ];
    let page = b.post_form(&login_url, &form).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("id=\"passkey-form\"") && page.contains("/assets/webauthn.js"), "{page}");
    let options: PublicKeyCredentialRequestOptions = serde_json::from_str(&attribute(&page, "data-options")).unwrap();
    assert_eq!(options.allow_credentials.len(), 1, "the person's key, named to the browser");

    // Posted without an answer (no script): the same ceremony, shown again.
    let again =
        b.post_form(&login_url, &[("csrf_token", &token), ("method", "webauthn-key"), ("webauthn_response", "")]).await;
    assert!(again.text().await.unwrap().contains("id=\"passkey-form\""));

    let assertion = key.perform_auth(origin, options, 10_000).unwrap();
    let response = serde_json::to_string(&assertion).unwrap();
    let r = b
        .post_form(&login_url, &[("csrf_token", &token), ("method", "webauthn-key"), ("webauthn_response", &response)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(r.headers());
    let code = query_param(&to, "code").expect("a code for the relying party");
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK);
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "eidas2");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "hwk", "user", "pin", "mfa"]));
    let access = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["authMode"], "MOBILE");
}

#[tokio::test]
async fn the_wallet_adds_a_key_only_right_after_a_sign_in() {
    let s = provider().await;
    let b = Browser::new();
    let home = open_wallet(&b, &s, 0).await;
    assert!(home.contains("id=\"passkey-add\""), "a key can be added right after signing in");
    let token = csrf(&home);
    let page = b.post_form(&s.p.url("/wallet/webauthn"), &[("csrf_token", &token), ("name", "Clé")]).await;
    let page = page.text().await.unwrap();
    assert!(page.contains("data-mode=\"create\""), "the enrolment page");
    let options: PublicKeyCredentialCreationOptions = serde_json::from_str(&attribute(&page, "data-options")).unwrap();
    assert_eq!(options.rp.id, "127.0.0.1", "the RP ID is the issuer's host");
    assert_eq!(
        options.authenticator_selection.as_ref().map(|a| a.user_verification),
        Some(webauthn_rs_proto::UserVerificationPolicy::Required)
    );

    // Five minutes later, the same wallet session asks for a fresh sign-in first.
    s.p.clock.advance(301);
    let home = b.get(&s.p.url("/wallet")).await.text().await.unwrap();
    assert!(!home.contains("id=\"passkey-add\"") && home.contains("/wallet/reauth"), "no adding on an old sign-in");
    let refused = b.post_form(&s.p.url("/wallet/webauthn"), &[("csrf_token", &token), ("name", "Clé")]).await;
    let refused = refused.text().await.unwrap();
    assert!(!refused.contains("data-mode=\"create\"") && refused.contains("moins de cinq minutes"), "{refused}");
    let r = b.get(&s.p.url("/wallet/reauth")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(r.headers()).contains("prompt=login"));
}

#[tokio::test]
async fn an_administrator_lists_and_removes_a_professionals_passkey() {
    let s = provider().await;
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    let passkeys = s.p.app.passkeys.as_ref().expect("webauthn is on");
    let mut key = SoftToken::new(true).unwrap().0;
    let start = passkeys.start_enrolment(&subject, USER, "Jeanne Martin").await.unwrap();
    let options: PublicKeyCredentialCreationOptions = serde_json::from_str(&start.options).unwrap();
    let answer = key.perform_register(Url::parse(&s.p.base_url).unwrap(), options, 10_000).unwrap();
    let actor = authn_methods::webauthn::Actor { subject: &subject, source_ip: None, now: s.p.clock.now() };
    let response = serde_json::to_string(&answer).unwrap();
    passkeys.finish_enrolment(&actor, &start.ceremony, &response, "Clé du cabinet").await.unwrap();

    let admin = crate::admin::admin_token(&s.p, &["caducee:admin"]).await;
    let path = format!("/admin/v1/professionals/{USER}/authenticators");
    let list: serde_json::Value =
        crate::admin::call(&s.p, reqwest::Method::GET, &path, Some(&admin), None).await.json().await.unwrap();
    let key_row = list.as_array().unwrap().iter().find(|a| a["kind"] == "webauthn").expect("the passkey is listed");
    assert_eq!(key_row["label"], "Clé du cabinet");
    assert!(key_row["serial"].as_str().unwrap().starts_with("webauthn:"));
    let id = key_row["id"].as_str().unwrap();
    let one = format!("{path}/{id}");
    let removed = crate::admin::call(&s.p, reqwest::Method::DELETE, &one, Some(&admin), None).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);

    // The security key is no longer a way in for this account.
    let b = Browser::new();
    let (login_url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let token = csrf(&html);
    let form = [
        ("csrf_token", token.as_str()),
        ("method", "pwd"),
        ("then", "webauthn-key"),
        ("username", USER),
        ("password", PASSWORD),
    ];
    let page = b.post_form(&login_url, &form).await.text().await.unwrap();
    assert!(!page.contains("id=\"passkey-form\""));
    assert!(page.contains("Aucune clé de sécurité"), "{page}");
}
