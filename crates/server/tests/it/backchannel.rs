//! Back-Channel Logout: relying parties are real HTTP servers on loopback that verify each
//! logout token exactly as the spec asks a relying party to (section 2.6), and record it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use server::testing::TestProvider;
use tokio::net::TcpListener;

use crate::common::*;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

#[derive(Clone)]
pub(crate) struct Rp {
    client_id: String,
    issuer: String,
    jwks: Arc<Mutex<Option<JwkSet>>>,
    pub(crate) received: Arc<Mutex<Vec<serde_json::Value>>>,
    /// How long the endpoint takes to answer (a hung relying party).
    delay: Duration,
}

#[derive(serde::Deserialize)]
struct LogoutForm {
    logout_token: String,
}

/// Validates a logout token as Back-Channel Logout 1.0 section 2.6 requires, or says why not.
fn validate(rp: &Rp, token: &str) -> Result<serde_json::Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some("logout+jwt") {
        return Err(format!("typ {:?}", header.typ));
    }
    let jwks = rp.jwks.lock().unwrap().clone().ok_or("no JWKS")?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or("unknown kid")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[rp.issuer.as_str()]);
    v.set_audience(&[rp.client_id.as_str()]);
    v.set_required_spec_claims(&["iss", "aud", "iat", "exp"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).map_err(|e| e.to_string())?.claims;
    if !claims["events"][EVENT].is_object() {
        return Err("no back-channel logout event".into());
    }
    if claims.get("nonce").is_some() {
        return Err("a logout token must not carry a nonce".into());
    }
    if claims["jti"].as_str().is_none_or(str::is_empty) || claims["iat"].as_i64().is_none() {
        return Err("jti and iat are required".into());
    }
    if claims["sid"].as_str().is_none() && claims["sub"].as_str().is_none() {
        return Err("sid or sub is required".into());
    }
    Ok(claims)
}

async fn logout_endpoint(State(rp): State<Rp>, Form(form): Form<LogoutForm>) -> StatusCode {
    tokio::time::sleep(rp.delay).await;
    match validate(&rp, &form.logout_token) {
        Ok(claims) => {
            rp.received.lock().unwrap().push(claims);
            StatusCode::OK
        }
        Err(why) => {
            eprintln!("logout token refused: {why}");
            StatusCode::BAD_REQUEST
        }
    }
}

/// Starts a relying party's logout endpoint on `listener`; returns its state.
pub(crate) async fn serve_rp(p: &TestProvider, client_id: &str, listener: TcpListener, delay: Duration) -> Rp {
    let jwks: JwkSet = reqwest::get(p.url("/jwks")).await.unwrap().json().await.unwrap();
    let rp = Rp {
        client_id: client_id.into(),
        issuer: p.base_url.clone(),
        jwks: Arc::new(Mutex::new(Some(jwks))),
        received: Arc::default(),
        delay,
    };
    let app = axum::Router::new().route("/logout", axum::routing::post(logout_endpoint)).with_state(rp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    rp
}

/// Registers a client with a back-channel logout URI on a port of its own.
pub(crate) async fn register(p: &TestProvider, client_id: &str, port: u16) {
    let mut add = TestProvider::confidential_client(client_id, REDIRECT);
    add.backchannel_logout_uri = Some(format!("http://127.0.0.1:{port}/logout"));
    add.backchannel_logout_session_required = true;
    p.add_client(add).await.unwrap();
}

pub(crate) async fn wait_for(rp: &Rp, count: usize, within: Duration) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = rp.received.lock().unwrap().clone();
        if got.len() >= count || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two relying parties `a` and `b` with back-channel logout, and a browser of the setup's
/// professional signed in to both (the second by single sign-on).
pub(crate) async fn signed_in_to_two(s: &Setup) -> (Browser, Rp, Rp) {
    let (la, pa) = listener().await;
    let (lb, pb) = listener().await;
    register(&s.p, "a", pa).await;
    register(&s.p, "b", pb).await;
    let rp_a = serve_rp(&s.p, "a", la, Duration::ZERO).await;
    let rp_b = serve_rp(&s.p, "b", lb, Duration::ZERO).await;
    let browser = Browser::new();
    login(&browser, &s.p, "a", USER, &s.totp, 0).await;
    let r = browser.get(&authorize_url(&s.p, "b", &[])).await;
    assert!(query_param(&location(r.headers()), "code").is_some(), "SSO into b");
    (browser, rp_a, rp_b)
}

pub(crate) async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[tokio::test]
async fn ending_a_session_notifies_every_relying_party_with_a_valid_logout_token() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (browser, rp_a, rp_b) = signed_in_to_two(&s).await;

    // The professional logs out from the wallet-less path: /end_session, confirmed.
    let r = browser.get(&s.p.url("/end_session")).await;
    let html = r.text().await.unwrap();
    let confirmation =
        html.split("name=\"confirmation\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    browser.post_form(&s.p.url("/end_session/confirm"), &[("confirmation", &confirmation), ("action", "logout")]).await;

    let a = wait_for(&rp_a, 1, Duration::from_secs(5)).await;
    let b = wait_for(&rp_b, 1, Duration::from_secs(5)).await;
    assert_eq!((a.len(), b.len()), (1, 1), "each relying party told once");
    assert_eq!(a[0]["sid"], b[0]["sid"], "the same session");
    assert_eq!(a[0]["aud"], "a");
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    assert_eq!(a[0]["sub"], subject.as_str());
    assert_ne!(a[0]["jti"], b[0]["jti"]);

    // The provider records a delivery once the relying party has answered, which may be just
    // after the relying party saw the token: wait for the record rather than race it.
    let query = directory::DeliveryQuery { subject: Some(subject), ..Default::default() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let delivered = loop {
        let delivered = s.p.directory().logout_deliveries().query(&query).await.unwrap();
        let done = delivered.len() == 2 && delivered.iter().all(|d| d.status == directory::DeliveryStatus::Delivered);
        if done || tokio::time::Instant::now() > deadline {
            break delivered;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(delivered.len(), 2);
    assert!(delivered.iter().all(|d| d.status == directory::DeliveryStatus::Delivered), "{delivered:?}");
}

#[tokio::test]
async fn a_hung_relying_party_delays_nobody_and_a_dead_one_gets_its_retries() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let mut healthy = Vec::new();
    let mut names = vec![];
    for i in 0..3 {
        let (l, port) = listener().await;
        let name = format!("ok{i}");
        register(&s.p, &name, port).await;
        healthy.push(serve_rp(&s.p, &name, l, Duration::ZERO).await);
        names.push(name);
    }
    let (hung_l, hung_port) = listener().await;
    register(&s.p, "hung", hung_port).await;
    let hung = serve_rp(&s.p, "hung", hung_l, Duration::from_secs(30)).await;
    // A dead relying party: its port is reserved, then closed.
    let (dead_l, dead_port) = listener().await;
    drop(dead_l);
    register(&s.p, "dead", dead_port).await;

    let browser = Browser::new();
    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
    all.extend(["hung", "dead"]);
    login(&browser, &s.p, all[0], USER, &s.totp, 0).await;
    for c in &all[1..] {
        let r = browser.get(&authorize_url(&s.p, c, &[])).await;
        assert!(query_param(&location(r.headers()), "code").is_some());
    }
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    let sid = s.p.app.provider.sessions().list_for_subject(&subject, s.p.clock.now()).await.unwrap()[0].sid.clone();

    let started = tokio::time::Instant::now();
    s.p.app.provider.end_session(&sid, "test", s.p.clock.now()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "ending the session does not wait for deliveries");
    for rp in &healthy {
        assert_eq!(wait_for(rp, 1, Duration::from_secs(5)).await.len(), 1);
    }
    assert!(started.elapsed() < Duration::from_secs(2), "healthy relying parties are not held up by the hung one");
    assert!(hung.received.lock().unwrap().is_empty());

    // The dead one failed its quick attempts and is scheduled for a later retry.
    let deliveries = || async {
        s.p.directory()
            .logout_deliveries()
            .query(&directory::DeliveryQuery { client_id: Some("dead".into()), ..Default::default() })
            .await
            .unwrap()
    };
    let mut dead = deliveries().await;
    for _ in 0..100 {
        if dead[0].attempts >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        dead = deliveries().await;
    }
    assert_eq!(dead[0].status, directory::DeliveryStatus::Pending);
    assert_eq!(dead[0].attempts, 3, "one attempt and two quick retries");
    assert!(dead[0].last_error.is_some() && dead[0].next_attempt_at.is_some());

    // It comes back; when its retry is due, it gets the logout.
    let back = TcpListener::bind(("127.0.0.1", dead_port)).await.unwrap();
    let revived = serve_rp(&s.p, "dead", back, Duration::ZERO).await;
    s.p.clock.advance(120);
    let notifier = s.p.app.provider.notifier().unwrap().clone();
    assert!(notifier.retry_due().await >= 1);
    assert_eq!(wait_for(&revived, 1, Duration::from_secs(5)).await[0]["sid"], sid.as_str());
    assert_eq!(deliveries().await[0].status, directory::DeliveryStatus::Delivered);
}

#[tokio::test]
async fn a_replayed_code_ends_the_session_and_notifies() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (l, port) = listener().await;
    register(&s.p, "a", port).await;
    let (_, secret) = s.p.add_client(TestProvider::confidential_client("plain", REDIRECT)).await.unwrap();
    let rp = serve_rp(&s.p, "a", l, Duration::ZERO).await;
    let browser = Browser::new();
    let code = login(&browser, &s.p, "plain", USER, &s.totp, 0).await;
    let r = browser.get(&authorize_url(&s.p, "a", &[])).await;
    assert!(query_param(&location(r.headers()), "code").is_some());
    let secret = secret.unwrap();
    assert_eq!(exchange(&s.p, "plain", &secret, &code).await.0, StatusCode::OK);
    assert_eq!(exchange(&s.p, "plain", &secret, &code).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        wait_for(&rp, 1, Duration::from_secs(5)).await.len(),
        1,
        "the session behind a stolen code ends everywhere"
    );
    let r = browser.get(&authorize_url(&s.p, "a", &[("prompt", "none")])).await;
    assert_eq!(query_param(&location(r.headers()), "error").as_deref(), Some("login_required"));
}
