//! What operators see: `/metrics`, scraped as Prometheus would after a login and a code
//! exchange, closed to networks the operator did not allow; and request ids, made here or
//! taken from a trusted proxy, in every answer.

use reqwest::StatusCode;
use server::testing::{Storage, TestProvider};

use crate::common::*;

/// The value of the first sample whose line starts with `name{` and has every label in
/// `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn requests_and_audited_events_are_scraped_from_allowed_networks_only() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let code = login(&Browser::new(), &s.p, "rp", USER, &s.totp, 0).await;
    let (status, _) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a replayed code");

    let r = reqwest::get(s.p.url("/metrics")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    let token = |status: &str| {
        sample(
            &text,
            "caducee_http_requests_total",
            &["route=\"/token\"", "method=\"POST\"", &format!("status=\"{status}\"")],
        )
    };
    assert_eq!((token("200"), token("400")), (Some(1.0), Some(1.0)), "{text}");
    assert!(
        sample(&text, "caducee_http_request_duration_seconds_bucket", &["route=\"/token\"", "le=\"+Inf\""])
            == Some(2.0)
    );
    let events = |event: &str, outcome: &str| {
        sample(&text, "caducee_audit_events_total", &[&format!("event=\"{event}\""), &format!("outcome=\"{outcome}\"")])
    };
    assert_eq!(events("signin", "success"), Some(1.0), "{text}");
    assert_eq!(events("token_issued", "success"), Some(1.0));
    assert_eq!(events("code_replay", "revoked"), Some(1.0));
    assert_eq!(sample(&text, "caducee_login_steps_total", &["outcome=\"success\""]), Some(1.0), "{text}");
    assert_eq!(gauge(&text, "caducee_audit_pending_records"), Some(0.0), "every record written");
}

/// The value of a sample without labels.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn failures_lockouts_refusals_and_logout_deliveries_are_counted() {
    let p = TestProvider::start_with(Storage::Embedded, |c| {
        c.login.max_failures = 2;
        c.session.max_interactions_per_browser = 3;
    })
    .await
    .unwrap();
    let s = setup(p).await;
    // Wrong codes from one browser until the pair is locked; then one login too many.
    let b = Browser::at("127.0.0.3");
    for _ in 0..3 {
        let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
        submit(&b, &url, &html, "899700000099", PASSWORD, "000000").await;
    }
    assert_eq!(b.get(&authorize_url(&s.p, "rp", &[])).await.status(), StatusCode::TOO_MANY_REQUESTS);
    // A relying party whose logout endpoint is down: the delivery is left for later.
    let mut add = TestProvider::confidential_client("bcl", REDIRECT);
    add.backchannel_logout_uri = Some(format!("http://127.0.0.1:{}/logout", test_support::free_port().unwrap()));
    let (_, secret) = s.p.add_client(add).await.unwrap();
    let browser = Browser::at("127.0.0.2");
    let code = login(&browser, &s.p, "bcl", USER, &s.totp, 1).await;
    assert_eq!(exchange(&s.p, "bcl", &secret.unwrap(), &code).await.0, StatusCode::OK);
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    let sessions = s.p.app.provider.sessions();
    let live = sessions.list_for_subject(&subject, s.p.clock.now()).await.unwrap();
    s.p.app.provider.end_session(&live[0].sid, "test", s.p.clock.now()).await.unwrap();

    // The delivery's quick attempts take a second or two.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let text = loop {
        let text = reqwest::get(s.p.url("/metrics")).await.unwrap().text().await.unwrap();
        if text.contains("caducee_backchannel_deliveries_total") || tokio::time::Instant::now() >= deadline {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let steps = |outcome: &str| {
        sample(&text, "caducee_login_steps_total", &["method=\"pwd\"", &format!("outcome=\"{outcome}\"")])
    };
    assert_eq!((steps("failed"), steps("locked"), steps("success")), (Some(1.0), Some(2.0), Some(1.0)), "{text}");
    assert_eq!(gauge(&text, "caducee_lockouts_total"), Some(1.0), "{text}");
    // Password checks ran: their working areas are shown (held by the whole test process,
    // which other tests share), never more than the bound.
    let bound = authn_methods::password::check_stats().bound as f64;
    let areas = gauge(&text, "caducee_password_working_areas");
    assert!(areas.is_some_and(|a| (1.0..=bound).contains(&a)), "{areas:?} for a bound of {bound}: {text}");
    assert_eq!(sample(&text, "caducee_rate_limited_total", &["limit=\"interaction-browser\""]), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "caducee_backchannel_deliveries_total", &["outcome=\"retry_later\""]),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn other_networks_find_nothing_there() {
    let p = TestProvider::start_with(Storage::Embedded, |c| c.metrics.allow = vec!["10.0.0.0/8".into()]).await.unwrap();
    assert_eq!(reqwest::get(p.url("/metrics")).await.unwrap().status(), StatusCode::NOT_FOUND);
    let mut c = server::Config::default();
    c.metrics.allow = vec!["not-a-network".into()];
    assert!(c.validate().is_err());
}

#[tokio::test]
async fn every_answer_has_a_request_id_a_caller_cannot_choose_unless_it_is_the_proxy() {
    let id_of = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let p = TestProvider::start().await.unwrap();
    let http = reqwest::Client::new();
    let a = http.get(p.url("/healthz")).send().await.unwrap();
    let b = http.get(p.url("/token")).header("x-request-id", "chosen-by-the-caller").send().await.unwrap();
    assert!(!id_of(&a).is_empty() && id_of(&a) != id_of(&b));
    assert_ne!(id_of(&b), "chosen-by-the-caller", "not a trusted proxy");

    let p = TestProvider::start_with(Storage::Embedded, |c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()])
        .await
        .unwrap();
    let r = http.get(p.url("/healthz")).header("x-request-id", "lb-4f2a9c").send().await.unwrap();
    assert_eq!(id_of(&r), "lb-4f2a9c", "the proxy's id is kept");
    let r = http.get(p.url("/healthz")).header("x-request-id", "a".repeat(200)).send().await.unwrap();
    assert_eq!(id_of(&r).len(), 22, "an unreasonable one is replaced: {}", id_of(&r));
}
