//! Sign-in by QR code with the phone app, online and offline, over HTTP against the real
//! provider: the page's QR code and link, the phone's trusted view of it, approval, refusal,
//! expiry (clock moved), replays, pushes blocked, and the offline code (OCRA) typed in the form.
//! The same flows with the real `caducee-authenticator` binary as the phone are in
//! `authenticator.rs`; the page in a real browser in `browser.rs`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use server::testing::TestProvider;

use crate::common::*;
use crate::push::{Phone, between, enrolled_phone, plain};

/// The login page after «QR code»: the page, its csrf token, and the QR code's payload.
struct QrPage {
    url: String,
    token: String,
    html: String,
    payload: url::Url,
}

impl QrPage {
    fn challenge(&self) -> String {
        self.payload.query_pairs().find(|(k, _)| k == "challenge").unwrap().1.into_owned()
    }

    fn param(&self, name: &str) -> String {
        self.payload.query_pairs().find(|(k, _)| k == name).unwrap().1.into_owned()
    }
}

async fn show_qr(b: &Browser, s: &Setup) -> QrPage {
    // `prompt=login`: a browser that signed in already still gets the page.
    let (url, html) = open_login(b, &s.p, "rp", &[("prompt", "login")]).await;
    // The list offers it as a button that starts at once (nothing to type first).
    assert!(html.contains("name=\"method\" value=\"qr\""), "{html}");
    let token = csrf(&html);
    let r = b.post_form(&url, &[("csrf_token", &token), ("method", "qr"), ("step", "begin")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'"), "the waiting page runs its own script: {csp}");
    let html = plain(r.text().await.unwrap());
    assert!(html.contains("<svg") && html.contains("Scannez le QR code"), "{html}");
    let payload = format!("caducee-auth://{}", between(&html, "href=\"caducee-auth://", "\""));
    QrPage { url, token, payload: url::Url::parse(&payload).unwrap(), html }
}

async fn poll(b: &Browser, page: &QrPage) -> reqwest::Response {
    b.post_form(&page.url, &[("csrf_token", &page.token), ("method", "qr"), ("step", "poll")]).await
}

async fn waiting(b: &Browser, s: &Setup, page: &QrPage) -> bool {
    let state = between(&page.html, "data-state=\"", "\"");
    b.get(&s.p.url(state)).await.json::<Value>().await.unwrap()["waiting"].as_bool().unwrap()
}

/// The ID token of a login that reached the relying party.
async fn id_token_of(s: &Setup, r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = query_param(&location(r.headers()), "code").expect("a code");
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

async fn answer(phone: &Phone, s: &Setup, challenge: &str, decision: &str) -> (StatusCode, Value) {
    phone.qr(&s.p, json!({ "action": "answer", "challenge": challenge, "decision": decision })).await
}

#[tokio::test]
async fn a_scanned_and_approved_qr_code_signs_in_without_a_password() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    let b = Browser::new();
    // The clock is the system's: a second may turn while the page is drawn.
    let before = s.p.clock.now();
    let page = show_qr(&b, &s).await;
    let after = s.p.clock.now();
    assert_eq!(page.param("server"), s.p.url("/push/v1"));
    assert_eq!(page.param("client"), "rp", "the relying party's registered name");
    let expires_at = page.param("expires_at").parse::<i64>().unwrap();
    assert!((before + 120..=after + 120).contains(&expires_at), "two minutes");
    let challenge = page.challenge();
    assert_eq!(challenge.len(), 32);
    assert!(page.html.contains("id=\"countdown\""), "a visible countdown");
    assert!(waiting(&b, &s, &page).await);
    // Not yet: the page waits.
    let r = poll(&b, &page).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(plain(r.text().await.unwrap()).contains("Scannez le QR code"));

    // The phone asks the server what the code is for: nothing is taken from the code itself.
    let (status, view) = phone.qr(&s.p, json!({ "action": "lookup", "challenge": challenge })).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["client_name"], "rp");
    assert_eq!(view["source_ip"], "127.0.0.1");
    assert!(view["warning"].as_str().unwrap().contains("Nous ne vous demanderons jamais"));
    assert!(view["expires_at"].as_i64().unwrap() > s.p.clock.now());

    let (status, outcome) = answer(&phone, &s, &challenge, "approve").await;
    assert_eq!((status, outcome["outcome"].as_str()), (StatusCode::OK, Some("approved")));
    let (status, again) = answer(&phone, &s, &challenge, "approve").await;
    assert_eq!((status, again["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "answered once");
    assert!(!waiting(&b, &s, &page).await, "the page's script now submits");

    let id_token = id_token_of(&s, poll(&b, &page).await).await;
    assert_eq!(id_token["acr"], "eidas1");
    assert_eq!(id_token["amr"], json!(["swk", "pin", "mfa"]), "the phone's key and its PIN");
    // The approval signed in once: the same page cannot take it again.
    assert_eq!(poll(&b, &page).await.status(), StatusCode::BAD_REQUEST);
    let audit = s.p.directory().audit().query(directory::AuditQuery::default()).await.unwrap();
    assert!(audit.iter().any(|r| r.event == "qr_approved" && r.details["client"] == "rp"));
}

#[tokio::test]
async fn a_refused_or_expired_qr_code_signs_nobody_in_and_a_scan_works_while_pushes_are_blocked() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    let b = Browser::new();

    let page = show_qr(&b, &s).await;
    let (_, outcome) = answer(&phone, &s, &page.challenge(), "deny").await;
    assert_eq!(outcome["outcome"], "denied");
    let r = poll(&b, &page).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(plain(r.text().await.unwrap()).contains("La connexion a été refusée sur le téléphone"));

    // Two minutes later the code is dead for the phone and for the page.
    let page = show_qr(&b, &s).await;
    s.p.clock.advance(121);
    let (status, _) = phone.qr(&s.p, json!({ "action": "lookup", "challenge": page.challenge() })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = answer(&phone, &s, &page.challenge(), "approve").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let r = poll(&b, &page).await;
    assert!(plain(r.text().await.unwrap()).contains("Le QR code a expiré"));
    // «Afficher un nouveau QR code»: a new one, which works.
    let page = show_qr(&b, &s).await;
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    let push = s.p.app.push.clone();
    push.block(&subject, "not_me", None, s.p.clock.now()).await.unwrap();
    let (_, outcome) = answer(&phone, &s, &page.challenge(), "approve").await;
    assert_eq!(outcome["outcome"], "approved", "the professional scans on purpose: blocked pushes do not stop it");
    let id_token = id_token_of(&s, poll(&b, &page).await).await;
    assert_eq!(id_token["sub"], subject);

    // A code from one login cannot be lifted into another one's page.
    let other = Browser::new();
    let theirs = show_qr(&other, &s).await;
    let mine = show_qr(&b, &s).await;
    answer(&phone, &s, &theirs.challenge(), "approve").await;
    let r = poll(&b, &mine).await;
    assert_eq!(r.status(), StatusCode::OK, "my page still waits for my code");
}

#[tokio::test]
async fn offline_the_app_derives_an_identifier_and_a_code_the_form_takes_once() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    let (offline_id, secret) = phone.offline.clone().unwrap();
    assert_eq!(offline_id.len(), 10);
    let suite = ocra::Suite::parse("OCRA-1:HOTP-SHA256-8:QH32").unwrap();
    let code_for = |challenge: &str| {
        suite.compute(&secret, &ocra::DataInput { counter: None, question: challenge, password_hash: None }).unwrap()
    };
    let b = Browser::new();
    let page = show_qr(&b, &s).await;
    // Clicking the QR code opens the offline form.
    let href = between(&page.html, "<p class=\"qr\"><a href=\"", "\"").to_owned();
    assert!(href.ends_with("?offline=1&lang=fr"), "{href}");
    let form = plain(b.get(&s.p.url(&href)).await.text().await.unwrap());
    assert!(
        form.contains("Connexion hors réseau") && form.contains("name=\"qr_id\"") && form.contains("name=\"qr_code\"")
    );
    let post = |id: &str, code: &str| {
        let fields = [
            ("csrf_token", page.token.clone()),
            ("method", "qr".to_owned()),
            ("qr_id", id.to_owned()),
            ("qr_code", code.to_owned()),
        ];
        let b = &b;
        let url = page.url.clone();
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post_form(&url, &fields).await
        }
    };
    let right = code_for(&page.challenge());
    let wrong = if right == "00000000" { "00000001" } else { "00000000" };
    let r = post(&offline_id, wrong).await;
    assert_eq!(r.status(), StatusCode::OK);
    let again = plain(r.text().await.unwrap());
    assert!(again.contains("Identifiant ou mot de passe de l'application incorrect"), "{again}");
    assert!(again.contains("name=\"qr_code\""), "the offline form again");
    let r = post("0000000000", &right).await;
    assert_eq!(r.status(), StatusCode::OK, "another phone's ID does not go with this code");

    let id_token = id_token_of(&s, post(&format!(" {offline_id} "), &right).await).await;
    assert_eq!(id_token["amr"], json!(["otp", "pin", "mfa"]));
    assert_eq!(id_token["acr"], "eidas1");
    let audit = s.p.directory().audit().query(directory::AuditQuery::default()).await.unwrap();
    let failures: Vec<_> = audit.iter().filter(|r| r.event == "login_failed").collect();
    assert_eq!(failures.len(), 2, "each wrong code counts");
    assert!(failures.iter().all(|r| r.details.get("identifier").is_none()), "an offline ID is no national identifier");
    // The wallet shows the phone's offline ID, and the sign-in among recent activity.
    let home = plain(crate::wallet::open_wallet(&Browser::new(), &s, 1).await);
    assert!(home.contains(&format!("(ID hors réseau {offline_id})")), "{home}");
    assert!(home.contains("QR code validé dans l'application"), "{home}");

    // Once: the same code on a new page of the same login process is refused, and a code
    // outlives neither its QR code nor the login.
    let page = show_qr(&b, &s).await;
    let code = code_for(&page.challenge());
    s.p.clock.advance(121);
    let fields = [("csrf_token", page.token.as_str()), ("method", "qr"), ("qr_id", &offline_id), ("qr_code", &code)];
    let r = b.post_form(&page.url, &fields).await;
    assert!(plain(r.text().await.unwrap()).contains("Le QR code a expiré"));
}
