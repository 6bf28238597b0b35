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
