//! Push approval: a phone (a real P-256 key signing real requests) enrolled from the wallet,
//! pushes that are only sent after the right password, approved by typing the number the page
//! shows, spent by a wrong number, expired after their validity, rate-limited; and «ce n'était
//! pas moi», which blocks pushes and logs the account out everywhere (relying parties told).

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testing::{Storage, TestProvider};

use crate::admin::{admin_token, call, cluster};
use crate::backchannel::{listener, register, serve_rp, wait_for};
use crate::common::*;
use crate::wallet::open_wallet;

/// The Caducée phone app, as far as the provider can tell: a key pair and signed requests.
pub(crate) struct Phone {
    key: EncodingKey,
    jwk: Jwk,
    pub(crate) device: Option<String>,
    endpoint: String,
    /// The offline ID and secret the enrolment answer gave (QR-code sign-in without network).
    pub(crate) offline: Option<(String, Vec<u8>)>,
}

impl Phone {
    pub(crate) fn new(p: &TestProvider) -> Phone {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let public = pair.public_key().as_ref().to_vec();
        assert_eq!(public.len(), 65, "uncompressed P-256 point");
        let jwk: Jwk = serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&public[33..]),
        }))
        .unwrap();
        Phone {
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
            device: None,
            endpoint: p.url("/push/v1"),
            offline: None,
        }
    }

    fn sign(&self, p: &TestProvider, body: Value, with_jwk: bool) -> String {
        self.sign_for(body, with_jwk, &self.endpoint, p.clock.now())
    }

    fn sign_for(&self, body: Value, with_jwk: bool, aud: &str, iat: i64) -> String {
        let mut header = Header::new(Algorithm::ES256);
        if with_jwk {
            header.jwk = Some(self.jwk.clone());
        } else {
            header.kid = self.device.clone();
        }
        let mut claims = body;
        claims["aud"] = json!(aud);
        claims["iat"] = json!(iat);
        claims["jti"] = json!(
            URL_SAFE_NO_PAD.encode(aws_lc_rs::rand::generate::<[u8; 16]>(&SystemRandom::new()).unwrap().expose())
        );
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    async fn post(p: &TestProvider, path: &str, jws: String) -> (StatusCode, Value) {
        let r = reqwest::Client::new()
            .post(p.url(path))
            .header("content-type", "application/jose")
            .body(jws)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }

    pub(crate) async fn enrol(&mut self, p: &TestProvider, code: &str) -> (StatusCode, Value) {
        let jws = self.sign(p, json!({ "action": "enrol", "code": code, "label": "Pixel de Jeanne" }), true);
        let (status, body) = Self::post(p, "/push/v1/devices", jws).await;
        if status == StatusCode::CREATED {
            self.device = Some(body["device_id"].as_str().unwrap().to_owned());
            let secret = URL_SAFE_NO_PAD.decode(body["offline_secret"].as_str().unwrap()).unwrap();
            self.offline = Some((body["offline_id"].as_str().unwrap().to_owned(), secret));
        }
        (status, body)
    }

    /// A request about a QR code it scanned (`lookup`, or `answer` with a decision).
    pub(crate) async fn qr(&self, p: &TestProvider, body: Value) -> (StatusCode, Value) {
        Self::post(p, "/push/v1/qr", self.sign(p, body, false)).await
    }

    pub(crate) async fn pending(&self, p: &TestProvider) -> Vec<Value> {
        let (status, body) =
            Self::post(p, "/push/v1/challenges", self.sign(p, json!({ "action": "list" }), false)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["challenges"].as_array().unwrap().clone()
    }

    /// The list, held by the provider up to `wait` seconds until a request comes (long poll).
    pub(crate) async fn pending_waiting(&self, p: &TestProvider, wait: u64) -> Vec<Value> {
        let body = json!({ "action": "list", "wait": wait });
        let (status, body) = Self::post(p, "/push/v1/challenges", self.sign(p, body, false)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["challenges"].as_array().unwrap().clone()
    }

    pub(crate) async fn answer(
        &self,
        p: &TestProvider,
        challenge: &str,
        decision: &str,
        number: &str,
    ) -> (StatusCode, Value) {
        let body = json!({ "action": "answer", "challenge": challenge, "decision": decision, "number": number });
        Self::post(p, "/push/v1/answers", self.sign(p, body, false)).await
    }
}

/// The page as a person reads it (askama escapes quotes and URL characters).
pub(crate) fn plain(html: String) -> String {
    html.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x3f;", "?")
        .replace("&#x3d;", "=")
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

pub(crate) fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let a = html.find(start).unwrap_or_else(|| panic!("{start:?} in page")) + start.len();
    let b = html[a..].find(end).unwrap() + a;
    &html[a..b]
}

/// Enrols a phone for the setup's professional, from the wallet.
pub(crate) async fn enrolled_phone(s: &Setup) -> Phone {
    let b = Browser::new();
    let home = plain(open_wallet(&b, s, 0).await);
    assert!(home.contains("Téléphone d'approbation") && home.contains("Bloquer les notifications"));
    let csrf = between(&home, "name=\"csrf_token\" value=\"", "\"").to_owned();
    let page = b.post_form(&s.p.url("/wallet/push"), &[("csrf_token", &csrf)]).await.text().await.map(plain).unwrap();
    assert!(page.contains("<svg"), "a QR code for the app");
    let code = between(&page, "<code class=\"secret\">", "</code>").to_owned();
    assert!(page.contains(&s.p.url("/push/v1")), "the address the app talks to");

    let mut phone = Phone::new(&s.p);
    let (status, body) = phone.enrol(&s.p, &code).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The code is spent: a second phone cannot use it.
    let (status, body) = Phone::new(&s.p).enrol(&s.p, &code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    let home = b.get(&s.p.url("/wallet")).await.text().await.map(plain).unwrap();
    assert!(home.contains("Pixel de Jeanne"), "the phone is listed among the authenticators");
    // One phone per account: another enrolment is refused until this one is removed.
    let again = b.post_form(&s.p.url("/wallet/push"), &[("csrf_token", &csrf)]).await.text().await.map(plain).unwrap();
    assert!(again.contains("déjà enregistré"));
    phone
}

/// Asks for a push from the login page; returns the response.
pub(crate) async fn ask_push(b: &Browser, login_url: &str, html: &str, password: &str) -> reqwest::Response {
    let token = csrf(html);
    b.post_form(
        login_url,
        &[("username", USER), ("password", password), ("otp", ""), ("csrf_token", &token), ("action", "send_push")],
    )
    .await
}

/// The number the waiting page shows, and the URL its script asks whether the phone answered.
pub(crate) fn waiting(html: &str) -> (String, String) {
    let shown = between(html, "<p class=\"push-number\">", "</p>");
    let number = between(shown, "<span aria-hidden=\"true\">", "</span>").to_owned();
    // Screen readers hear the digits one by one.
    let spoken = between(shown, "<span class=\"visually-hidden\">", "</span>");
    assert_eq!(spoken.replace(' ', ""), number);
    let state = between(html, "data-state=\"", "\"").to_owned();
    (number, state)
}

/// «J'ai validé sur mon téléphone» on the waiting page.
pub(crate) async fn check(b: &Browser, login_url: &str, html: &str) -> reqwest::Response {
    b.post_form(login_url, &[("csrf_token", &csrf(html)), ("action", "check_push")]).await
}

/// What the waiting page's script reads.
async fn still_waiting(b: &Browser, p: &TestProvider, state_url: &str) -> bool {
    let r = b.get(&p.url(state_url)).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["waiting"].as_bool().unwrap()
}

#[tokio::test]
async fn a_phone_enrolled_from_the_wallet_approves_a_sign_in_by_typing_the_number_shown() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    let b = Browser::new();
    let (login_url, html) = open_login(&b, &s.p, "rp", &[]).await;
    assert!(html.contains("Validation sur téléphone"));

    // Never on an identifier alone: a wrong password sends nothing.
    let r = ask_push(&b, &login_url, &html, "wrong password").await;
    assert!(r.text().await.map(plain).unwrap().contains("aucune demande n'a été envoyée"));
    assert!(phone.pending(&s.p).await.is_empty());

    let r = ask_push(&b, &login_url, &html, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.map(plain).unwrap();
    let (number, state) = waiting(&page);
    assert_eq!(number.len(), 2, "two digits: {number}");
    let pending = phone.pending(&s.p).await;
    assert_eq!(pending.len(), 1);
    assert!(pending[0].get("number").is_none(), "the phone never learns the number: {}", pending[0]);
    let challenge = pending[0]["id"].as_str().unwrap().to_owned();

    // Still waiting: «J'ai validé» too early shows the same number again.
    assert!(still_waiting(&b, &s.p, &state).await);
    let again = check(&b, &login_url, &page).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(again.text().await.map(plain).unwrap().contains(&number));
    // Another browser learns nothing of this login.
    assert_eq!(Browser::new().get(&s.p.url(&state)).await.json::<Value>().await.unwrap()["waiting"], false);

    let (status, body) = phone.answer(&s.p, &challenge, "approve", &number).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("approved")), "{body}");
    assert!(!still_waiting(&b, &s.p, &state).await, "the script now submits the page");
    assert!(!still_waiting(&b, &s.p, &state).await, "reading the state consumes nothing");
    let done = check(&b, &login_url, &page).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let code = query_param(&location(done.headers()), "code").expect("a code for the relying party");
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK);
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(id_token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["acr"], "eidas1");
    assert_eq!(claims["amr"], json!(["pwd", "swk", "mfa"]));

    // An approval is used once; answering again finds nothing.
    let (status, _) = phone.answer(&s.p, &challenge, "approve", &number).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let events: Vec<String> =
        s.p.directory()
            .audit()
            .query(directory::AuditQuery { limit: Some(1000), ..Default::default() })
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event)
            .collect();
    for e in ["push_device_enrolled", "push_sent", "push_approved"] {
        assert!(events.iter().any(|x| x == e), "{e} audited: {events:?}");
    }
}

#[tokio::test]
async fn a_wrong_number_spends_the_push_and_forged_or_replayed_requests_are_refused() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    let b = Browser::new();
    let (login_url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let page = ask_push(&b, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap();
    let (number, _) = waiting(&page);
    let challenge = phone.pending(&s.p).await[0]["id"].as_str().unwrap().to_owned();

    // Requests that are not the phone's own, fresh, for this provider.
    let impostor = Phone { device: phone.device.clone(), ..Phone::new(&s.p) };
    let (status, body) = impostor.answer(&s.p, &challenge, "approve", &number).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let replayed = phone.sign(&s.p, json!({ "action": "list" }), false);
    assert_eq!(Phone::post(&s.p, "/push/v1/challenges", replayed.clone()).await.0, StatusCode::OK);
    let (status, body) = Phone::post(&s.p, "/push/v1/challenges", replayed).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "{body}");
    let list = json!({ "action": "list" });
    let elsewhere = phone.sign_for(list.clone(), false, "https://other.example/push/v1", s.p.clock.now());
    assert_eq!(Phone::post(&s.p, "/push/v1/challenges", elsewhere).await.0, StatusCode::BAD_REQUEST);
    let stale = phone.sign_for(list, false, &phone.endpoint, s.p.clock.now() - 300);
    let (status, body) = Phone::post(&s.p, "/push/v1/challenges", stale).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error_description"].as_str().unwrap().contains("iat"), "{body}");
    let (status, _) = Phone::post(&s.p, "/push/v1/challenges", "not a jws".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let wrong = if number == "10" { "11" } else { "10" };
    let (status, body) = phone.answer(&s.p, &challenge, "approve", wrong).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("wrong_number")));
    let (status, _) = phone.answer(&s.p, &challenge, "approve", &number).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the push is spent");
    let answer = check(&b, &login_url, &page).await.text().await.map(plain).unwrap();
    assert!(answer.contains("refusée sur le téléphone"), "the login page says so");
    assert!(
        s.p.directory()
            .audit()
            .query(directory::AuditQuery { limit: Some(1000), ..Default::default() })
            .await
            .unwrap()
            .iter()
            .any(|r| r.event == "push_denied" && r.outcome == "wrong_number")
    );
}

/// Issue 13, item 17: the `iat` of a phone's request is the sender's number. Far from the
/// provider's clock at either end of `i64` (where the age arithmetic overflowed: a panic in
/// debug builds), it is refused as stale like any other, and the phone's next request works.
#[tokio::test]
async fn item_17_phone_request_with_iat_at_the_ends_of_i64_is_refused_as_stale() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    for iat in [i64::MIN, i64::MIN + 1, i64::MAX] {
        let request = phone.sign_for(json!({ "action": "list" }), false, &phone.endpoint, iat);
        let (status, body) = Phone::post(&s.p, "/push/v1/challenges", request).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "iat {iat}");
        assert!(body["error_description"].as_str().unwrap().contains("iat"), "{body}");
    }
    assert!(phone.pending(&s.p).await.is_empty(), "the phone's fresh requests still work");
}

#[tokio::test]
async fn a_push_expires_after_sixty_seconds_and_pushes_are_rate_limited() {
    // Every request for a push also counts toward the identifier's lockout (5 attempts) until a
    // login completes; a lower push limit shows the push throttle on its own.
    let p = TestProvider::start_with(Storage::Embedded, |c| c.push.max_per_account = 2).await.unwrap();
    let s = setup(p).await;
    let phone = enrolled_phone(&s).await;
    let b = Browser::new();
    let (login_url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let page = ask_push(&b, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap();
    let (number, _) = waiting(&page);
    let challenge = phone.pending(&s.p).await[0]["id"].as_str().unwrap().to_owned();
    s.p.clock.advance(61);
    assert!(phone.pending(&s.p).await.is_empty(), "an expired push is no longer offered");
    assert_eq!(phone.answer(&s.p, &challenge, "approve", &number).await.0, StatusCode::NOT_FOUND);
    assert!(check(&b, &login_url, &page).await.text().await.map(plain).unwrap().contains("a expiré sans réponse"));

    // Two pushes per window here (one already sent): the third is refused with Retry-After.
    let r = ask_push(&b, &login_url, &html, PASSWORD).await;
    let (number, _) = waiting(&r.text().await.map(plain).unwrap());
    // Two answers racing (two taps): exactly one decides.
    let challenge = phone.pending(&s.p).await[0]["id"].as_str().unwrap().to_owned();
    let (one, two) =
        tokio::join!(phone.answer(&s.p, &challenge, "approve", &number), phone.answer(&s.p, &challenge, "deny", ""));
    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::NOT_FOUND], "{one:?} {two:?}");
    let r = ask_push(&b, &login_url, &html, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    let text = r.text().await.map(plain).unwrap();
    assert!(text.contains("Trop de demandes"), "{text}");
}

#[tokio::test]
async fn not_me_blocks_pushes_and_logs_the_account_out_everywhere_until_unblocked() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    let (l, port) = listener().await;
    register(&s.p, "rp-bc", port).await;
    let rp = serve_rp(&s.p, "rp-bc", l, Duration::ZERO).await;

    // The professional's own session, with tokens at a relying party.
    let own = Browser::new();
    let code = login(&own, &s.p, "rp", USER, &s.totp, 1).await;
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let r = own.get(&authorize_url(&s.p, "rp-bc", &[])).await;
    assert!(query_param(&location(r.headers()), "code").is_some(), "SSO into the back-channel relying party");
    assert_eq!(userinfo(&s.p, &access).await, StatusCode::OK);

    // An impostor who knows the password asks for a push; the professional answers «not me».
    let impostor = Browser::new();
    let (login_url, html) = open_login(&impostor, &s.p, "rp", &[]).await;
    let page = ask_push(&impostor, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap();
    let challenge = phone.pending(&s.p).await[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = phone.answer(&s.p, &challenge, "not_me", "").await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("blocked")), "{body}");
    // The professional's own session and the wallet's (from the enrolment) both end.
    assert_eq!(body["sessions_ended"], 2);

    let got = wait_for(&rp, 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "the relying party was told");
    assert_eq!(userinfo(&s.p, &access).await, StatusCode::UNAUTHORIZED, "tokens of the session are dead");
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&s.p, "rp", &s.secret, refresh_token).await.0, StatusCode::BAD_REQUEST);
    let hash = directory::sha256_hex(refresh_token.as_bytes());
    let record = s.p.directory().refresh_tokens().get(&hash).await.unwrap().unwrap();
    assert!(record.revoked_at.is_some(), "every refresh token of the professional is revoked");
    assert!(check(&impostor, &login_url, &page).await.text().await.map(plain).unwrap().contains("refusée"));
    let blocked = ask_push(&impostor, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap();
    assert!(blocked.contains("sont bloquées pour votre compte"));
    assert!(phone.pending(&s.p).await.is_empty());

    // The professional sees it in the wallet and lifts the block there.
    let b = Browser::new();
    // A TOTP code is used once: the next sign-in waits for a later time step.
    s.p.clock.advance(60);
    let home = plain(open_wallet(&b, &s, 0).await);
    assert!(home.contains("Ce n'était pas moi"), "the reason is shown");
    assert!(home.contains("notifications bloquées, sessions fermées"), "the event is in the recent activity");
    let csrf = between(&home, "name=\"csrf_token\" value=\"", "\"").to_owned();
    let done =
        b.post_form(&s.p.url("/wallet/push/unblock"), &[("csrf_token", &csrf)]).await.text().await.map(plain).unwrap();
    assert!(done.contains("sont débloquées"));
    let (login_url, html) = open_login(&impostor, &s.p, "rp", &[]).await;
    assert!(
        ask_push(&impostor, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap().contains("push-number")
    );

    // The wallet's switch blocks them again.
    let done =
        b.post_form(&s.p.url("/wallet/push/block"), &[("csrf_token", &csrf)]).await.text().await.map(plain).unwrap();
    assert!(done.contains("Les notifications d'approbation sont bloquées"));
    assert!(phone.pending(&s.p).await.is_empty(), "the pending push died with the block");
}

#[tokio::test]
async fn administrators_block_and_unblock_pushes_through_the_api_and_every_call_is_audited() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    let token = admin_token(&s.p, &["caducee:admin"]).await;
    let path = format!("/admin/v1/professionals/{USER}/push");
    let r = call(&s.p, Method::GET, &path, Some(&token), None).await;
    assert_eq!(r.json::<Value>().await.unwrap()["blocked"], false);
    assert_eq!(call(&s.p, Method::POST, &format!("{path}/block"), None, None).await.status(), StatusCode::UNAUTHORIZED);

    let r = call(&s.p, Method::POST, &format!("{path}/block"), Some(&token), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let view: Value = r.json().await.unwrap();
    assert_eq!((view["blocked"].as_bool(), view["reason"].as_str()), (Some(true), Some("admin")));
    let b = Browser::new();
    let (login_url, html) = open_login(&b, &s.p, "rp", &[]).await;
    assert!(ask_push(&b, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap().contains("sont bloquées"));
    assert!(phone.pending(&s.p).await.is_empty());

    let r = call(&s.p, Method::POST, &format!("{path}/unblock"), Some(&token), None).await;
    assert_eq!(r.json::<Value>().await.unwrap()["blocked"], false);
    assert!(ask_push(&b, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap().contains("push-number"));
    assert_eq!(phone.pending(&s.p).await.len(), 1);
    let unknown = call(&s.p, Method::POST, "/admin/v1/professionals/000/push/unblock", Some(&token), None).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let audit =
        s.p.directory().audit().query(directory::AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    for e in ["admin.push.block", "admin.push.unblock"] {
        let r = audit.iter().find(|r| r.event == e).unwrap_or_else(|| panic!("{e} audited"));
        assert_eq!(r.actor.as_deref(), Some("client:svc-caducee_admin"), "with the admin's identity");
    }
}

/// Issue 14: an administrator's block goes through the push service, so the push pending at
/// that moment dies with it; and an approval the phone gave just before the block signs
/// nobody in.
#[tokio::test]
async fn an_administrators_block_ends_the_pending_push_and_an_approval_before_it_signs_nobody_in() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    let token = admin_token(&s.p, &["caducee:admin"]).await;
    let path = format!("/admin/v1/professionals/{USER}/push");

    // Pending when the block comes: gone from the phone, refused to the phone, and the login
    // page says the push was refused.
    let b = Browser::new();
    let (login_url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let page = ask_push(&b, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap();
    let (number, _) = waiting(&page);
    let challenge = phone.pending(&s.p).await[0]["id"].as_str().unwrap().to_owned();
    let r = call(&s.p, Method::POST, &format!("{path}/block"), Some(&token), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(phone.pending(&s.p).await.is_empty(), "the pending push died with the block");
    let (status, _) = phone.answer(&s.p, &challenge, "approve", &number).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an approval after the block is refused");
    let r = check(&b, &login_url, &page).await;
    assert_eq!(r.status(), StatusCode::OK, "the login page, not a redirect");
    assert!(r.text().await.map(plain).unwrap().contains("refusée"));

    // Approved on the phone, then blocked before the browser came back: nobody signs in.
    let r = call(&s.p, Method::POST, &format!("{path}/unblock"), Some(&token), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let b = Browser::new();
    let (login_url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let page = ask_push(&b, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap();
    let (number, _) = waiting(&page);
    let challenge = phone.pending(&s.p).await[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = phone.answer(&s.p, &challenge, "approve", &number).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("approved")), "{body}");
    let r = call(&s.p, Method::POST, &format!("{path}/block"), Some(&token), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = check(&b, &login_url, &page).await;
    assert_eq!(r.status(), StatusCode::OK, "the login page, not a redirect to the relying party");
    assert!(r.text().await.map(plain).unwrap().contains("refusée"));

    // Both blocks are the push service's too (with who set them), beside the admin's records.
    let audit =
        s.p.directory().audit().query(directory::AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    let blocks: Vec<_> = audit.iter().filter(|r| r.event == "push_blocked").collect();
    assert_eq!(blocks.len(), 2);
    assert!(blocks.iter().all(|r| r.actor.as_deref() == Some("client:svc-caducee_admin")));
}

#[tokio::test]
async fn a_push_asked_on_one_node_is_answered_on_the_other_and_completes_once() {
    let c = cluster().await;
    let (_, totp) = c.a.add_professional(USER, PASSWORD).await.unwrap();
    let (_, secret) = c.a.add_client(TestProvider::confidential_client("rp", REDIRECT)).await.unwrap();
    let node_a = c.a;
    // Each test node has its own issuer, and the wallet client is registered for the last node
    // started: the phone is enrolled on node b, and talks to node b.
    let s = Setup { p: c.b, secret: secret.unwrap(), totp };
    let phone = enrolled_phone(&s).await;

    let b = Browser::new();
    let (login_url, html) = open_login(&b, &node_a, "rp", &[]).await;
    let page = ask_push(&b, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap();
    let (number, _) = waiting(&page);
    let pending = phone.pending(&s.p).await;
    assert_eq!(pending.len(), 1, "node b sees the push node a sent");
    let challenge = pending[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = phone.answer(&s.p, &challenge, "approve", &number).await;
    assert_eq!(body["outcome"], "approved", "{status} {body}");

    let done = check(&b, &login_url, &page).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER, "node a completes the login");
    let code = query_param(&location(done.headers()), "code").unwrap();
    assert_eq!(exchange(&node_a, "rp", &s.secret, &code).await.0, StatusCode::OK);
    let again = check(&b, &login_url, &page).await;
    assert_ne!(again.status(), StatusCode::SEE_OTHER, "the approval was used once: no second code");
    drop((c.pg, c.redis));
}
