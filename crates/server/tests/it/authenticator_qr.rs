//! QR-code sign-in with the real `caducee-authenticator` binary as the phone, against the real
//! provider: `scan --approve` and `--deny` online, `offline-code` typed in the page's offline
//! form, a QR code from another site refused before any PIN or request.

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::testing::TestProvider;

use crate::authenticator::enrolled;
use crate::common::*;
use crate::push::{between, plain};

/// A login page showing its QR code: the login URL, its csrf token and the code's payload.
async fn qr_login(s: &Setup, b: &Browser) -> (String, String, String) {
    let (url, html) = open_login(b, &s.p, "rp", &[("prompt", "login")]).await;
    let token = csrf(&html);
    let r = b.post_form(&url, &[("csrf_token", &token), ("method", "qr"), ("step", "begin")]).await;
    let page = plain(r.text().await.unwrap());
    let payload = format!("caducee-auth://{}", between(&page, "href=\"caducee-auth://", "\""));
    (url, token, payload)
}

fn amr_of(tokens: &Value) -> Value {
    jwt_claims(tokens["id_token"].as_str().unwrap())["amr"].clone()
}

async fn signed_in(s: &Setup, r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = query_param(&location(r.headers()), "code").expect("a code");
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

#[tokio::test]
async fn the_authenticator_scans_the_page_qr_code_and_approves_or_refuses_it() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (app, _) = enrolled(&s).await;
    let b = Browser::new();

    let (url, token, payload) = qr_login(&s, &b).await;
    let r = app.run(&["scan", &payload, "--approve"]).await;
    assert_eq!((r.code, r.json["outcome"].as_str()), (0, Some("approved")), "{r:?}");
    // What it showed came from the server: the service, the page's address, the warning.
    assert_eq!(r.json["context"]["client_name"], "rp");
    assert_eq!(r.json["context"]["source_ip"], "127.0.0.1");
    let poll = [("csrf_token", token.as_str()), ("method", "qr"), ("step", "poll")];
    let tokens = signed_in(&s, b.post_form(&url, &poll).await).await;
    assert_eq!(amr_of(&tokens), json!(["swk", "pin", "mfa"]));
    // Scanned twice: the code is spent.
    let again = app.run(&["scan", &payload, "--approve"]).await;
    assert_eq!((again.code, again.json["error"].as_str()), (1, Some("not_found")), "{again:?}");

    let (url, token, payload) = qr_login(&s, &b).await;
    let r = app.run(&["scan", &payload, "--deny"]).await;
    assert_eq!((r.code, r.json["outcome"].as_str()), (0, Some("denied")), "{r:?}");
    let poll = [("csrf_token", token.as_str()), ("method", "qr"), ("step", "poll")];
    let page = plain(b.post_form(&url, &poll).await.text().await.unwrap());
    assert!(page.contains("La connexion a été refusée sur le téléphone"), "{page}");

    // A wrong PIN answers nothing.
    let (_, _, payload) = qr_login(&s, &b).await;
    let r = app.run_with("0000", &["scan", &payload, "--approve"]).await;
    assert_eq!(r.code, 3, "{r:?}");
    let audit = s.p.directory().audit().query(directory::AuditQuery::default()).await.unwrap();
    assert_eq!(audit.iter().filter(|r| r.event == "qr_approved").count(), 1);
    assert_eq!(audit.iter().filter(|r| r.event == "qr_denied").count(), 1);
}

#[tokio::test]
async fn offline_the_authenticator_gives_an_identifier_and_a_code_for_the_page_form() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (app, _) = enrolled(&s).await;
    let b = Browser::new();
    let (url, token, payload) = qr_login(&s, &b).await;

    let r = app.run(&["offline-code", &payload]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.json["id"].as_str().unwrap().to_owned();
    let code = r.json["code"].as_str().unwrap().to_owned();
    assert_eq!((id.len(), code.len()), (10, 8));
    let form = [("csrf_token", token.as_str()), ("method", "qr"), ("qr_id", &id), ("qr_code", &code)];
    let tokens = signed_in(&s, b.post_form(&url, &form).await).await;
    assert_eq!(amr_of(&tokens), json!(["otp", "pin", "mfa"]));

    // The same code on the next QR code of the same browser: another challenge, refused.
    let (url, token, _) = qr_login(&s, &b).await;
    let form = [("csrf_token", token.as_str()), ("method", "qr"), ("qr_id", &id), ("qr_code", &code)];
    let r = b.post_form(&url, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(plain(r.text().await.unwrap()).contains("Identifiant ou mot de passe de l'application incorrect"));

    // A QR code that names another server is never answered, online or offline.
    let forged = payload.replace("server=http%3A%2F%2F127.0.0.1", "server=https%3A%2F%2Fevil.example");
    for verb in ["scan", "offline-code"] {
        let r = app.run(&[verb, &forged, "--approve"][..if verb == "scan" { 3 } else { 2 }]).await;
        assert_eq!((r.code, r.json["error"].as_str()), (2, Some("other_server")), "{verb}: {r:?}");
    }
}
