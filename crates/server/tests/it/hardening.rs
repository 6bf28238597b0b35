//! Issue 13, items 1–4: a stranger with no account, playing the attacker on loopback (addresses
//! of 127.0.0.0/8 stand for different machines), cannot exhaust password checks, grow what the
//! provider stores, or lock a professional out; and the professional still signs in.

use std::time::Duration;

use reqwest::StatusCode;
use server::testing::{Storage, TestProvider};
use tokio::io::AsyncWriteExt as _;

use crate::common::*;

/// The number of threads of this process (each test runs in its own process under nextest).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// The login page of a new authorization request, as a raw client would hold it: the page's
/// path, its anti-forgery token and the browser cookie it is bound to.
async fn login_page_raw(p: &TestProvider) -> (String, String, String) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = http.get(authorize_url(p, "rp", &[])).send().await.unwrap();
    let path = location(r.headers());
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("caducee_browser="))
        .unwrap();
    let html = http.get(p.url(&path)).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    (path, csrf(&html), cookie)
}

/// Password checks started since `before`.
fn check_stats_since(before: &authn_methods::password::CheckStats) -> usize {
    authn_methods::password::check_stats().started - before.started
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn item_1_abandoned_logins_never_run_more_password_checks_than_the_bound() {
    // Other limits out of the way: this is about what one burst costs.
    let p = TestProvider::start_with(Storage::Embedded, |c| {
        c.login.address_max_attempts = 100_000;
        c.login.max_failures = 100_000;
        c.login.identifier_delay_after = 100_000;
    })
    .await
    .unwrap();
    let s = setup(p).await;
    let (path, token, cookie) = login_page_raw(&s.p).await;
    let addr = s.p.base_url.trim_start_matches("http://").to_owned();
    let baseline = threads();
    let before = authn_methods::password::check_stats();
    let mut most_threads = baseline;

    // 60 logins (unknown identifiers: each costs a full argon2 check), sent at once. The client
    // waits until the checks are saturated, then hangs up one connection after the other: every
    // hang-up of a login whose check runs must not let a waiting login start one more.
    let mut streams = Vec::new();
    for i in 0..60 {
        let body = format!("username=8997{i:08}&password=guess&otp=123456&csrf_token={token}&action=login");
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
        streams.push(stream);
    }
    let saturated = tokio::time::Instant::now();
    while check_stats_since(&before) < before.bound {
        most_threads = most_threads.max(threads());
        assert!(saturated.elapsed() < Duration::from_secs(60), "the logins never reached the password check");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for stream in streams {
        drop(stream);
        most_threads = most_threads.max(threads());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The checks already started run to their end: watch for a few seconds, then until all are done.
    let started = tokio::time::Instant::now();
    loop {
        most_threads = most_threads.max(threads());
        tokio::time::sleep(Duration::from_millis(10)).await;
        let stats = authn_methods::password::check_stats();
        if stats.running == 0 && started.elapsed() > Duration::from_secs(4) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "checks still running after two minutes: {stats:?}");
    }
    let stats = authn_methods::password::check_stats();
    assert!(stats.started - before.started >= stats.bound, "the burst did cost password checks: {stats:?}");
    assert!(stats.peak <= stats.bound, "at most {} checks at once, saw {}", stats.bound, stats.peak);
    assert!(stats.working_areas <= stats.bound, "argon2 areas: {} for a bound of {}", stats.working_areas, stats.bound);
    // Blocking threads for the checks, plus those SQLite may add meanwhile (one per pooled
    // connection, at most 8) and a few of the runtime's.
    assert!(
        most_threads <= baseline + stats.bound + 12,
        "threads went from {baseline} to {most_threads} (bound {})",
        stats.bound
    );

    // The professional still signs in afterwards.
    let b = Browser::new();
    assert!(!login(&b, &s.p, "rp", USER, &s.totp, 0).await.is_empty());
}

#[tokio::test]
async fn item_2_a_huge_identifier_gets_the_generic_answer_and_leaves_nothing_behind() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let huge = "8".repeat(60_000);
    for user in [huge.as_str(), "8997 0000 0001", "'; DROP TABLE professionals; --"] {
        let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
        let r = submit(&b, &url, &html, user, PASSWORD, "123456").await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = r.text().await.unwrap();
        assert!(body.contains("Identifiant, mot de passe ou code OTP incorrect"), "the same generic answer");
        assert!(body.len() < 20_000, "the page does not echo it back whole");
    }
    let records = s.p.directory().audit().query(directory::AuditQuery::default()).await.unwrap();
    let failures: Vec<_> = records.iter().filter(|r| r.event == "login_failed").collect();
    assert_eq!(failures.len(), 3, "each refusal audited");
    for r in failures {
        assert_eq!(r.outcome, "malformed_identifier");
        let text = r.details.to_string();
        assert!(!text.contains("8888") && !text.contains("DROP") && text.len() < 120, "{text}");
    }
    // An unknown but well-formed identifier is audited as a keyed hash, never as typed.
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    submit(&b, &url, &html, "899799999999", PASSWORD, "123456").await;
    let records = s.p.directory().audit().query(directory::AuditQuery::default()).await.unwrap();
    let last = records.iter().rev().find(|r| r.event == "login_failed").unwrap();
    assert!(!last.details.to_string().contains("899799999999"), "{}", last.details);
    assert_eq!(last.details["identifier_hash"].as_str().map(str::len), Some(32));
}

/// A login attempt from `b` for `user`; returns the status and the `Retry-After` seconds.
async fn attempt(b: &Browser, p: &TestProvider, user: &str, password: &str, otp: &str) -> (StatusCode, Option<u64>) {
    let (url, html) = open_login(b, p, "rp", &[("prompt", "login")]).await;
    let r = submit(b, &url, &html, user, password, otp).await;
    let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    (r.status(), retry)
}

#[tokio::test]
async fn item_3_an_attacker_hammering_an_identifier_does_not_lock_the_professional_out() {
    let p = TestProvider::start_with(Storage::Embedded, |c| {
        // Long enough to outlast the test's clock moves (each TOTP code is good once).
        c.login.base_lock = 3600;
        c.login.identifier_delay_after = 8;
        c.login.identifier_max_delay = 120;
        c.login.address_max_attempts = 12;
    })
    .await
    .unwrap();
    let s = setup(p).await;
    // The professional signed in once from the office computer, at 127.0.0.2, and once from
    // the ward's computer, at 127.0.0.50.
    let office = Browser::at("127.0.0.2");
    assert!(!login(&office, &s.p, "rp", USER, &s.totp, 0).await.is_empty());
    s.p.clock.advance(30);
    let ward = Browser::at("127.0.0.50");
    assert!(!login(&ward, &s.p, "rp", USER, &s.totp, 0).await.is_empty());

    // A stranger behind the same address hammers the public identifier: five wrong guesses lock
    // this stranger out of it, even with the right secrets.
    let attacker = Browser::at("127.0.0.2");
    for _ in 0..5 {
        let (status, _) = attempt(&attacker, &s.p, USER, "a wrong guess", "000000").await;
        assert!(matches!(status, StatusCode::OK | StatusCode::TOO_MANY_REQUESTS));
    }
    let (status, retry) = attempt(&attacker, &s.p, USER, PASSWORD, &s.p.totp(&s.totp, 1).unwrap()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the attacker is locked out");
    assert!(retry.is_some_and(|r| r <= 3600));

    // The professional's own browser, at the same address, still gets in.
    s.p.clock.advance(30);
    let (status, _) = attempt(&office, &s.p, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the browser that signed in before is not locked out");
    // So does a fresh browser from another address.
    s.p.clock.advance(30);
    let elsewhere = Browser::at("127.0.0.3");
    let (status, _) = attempt(&elsewhere, &s.p, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "another address is not locked out");

    // Many machines guessing: past 8 failures on the identifier, each failing machine waits
    // before its next try, never more than the cap; none of it touches a new machine.
    for i in 10..30 {
        let bot = Browser::at(&format!("127.0.0.{i}"));
        let (status, _) = attempt(&bot, &s.p, USER, "a wrong guess", "000000").await;
        assert!(matches!(status, StatusCode::OK | StatusCode::TOO_MANY_REQUESTS), "bot {i}: {status}");
        let (status, retry) = attempt(&bot, &s.p, USER, "another guess", "000000").await;
        if i >= 16 {
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "bot {i} must wait");
            assert!(retry.is_some_and(|r| r <= 120), "bot {i} waits at most the cap: {retry:?}");
        }
    }
    s.p.clock.advance(30);
    let newcomer = Browser::at("127.0.0.4");
    let (status, _) = attempt(&newcomer, &s.p, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "a new machine is never held off by the others' failures");

    // Password spraying from one machine: many identifiers, one budget for the address.
    let sprayer = Browser::at("127.0.0.50");
    let mut refused_at = None;
    for i in 0..20 {
        let (status, _) = attempt(&sprayer, &s.p, &format!("8997000001{i:02}"), "Printemps2026!", "000000").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused_at = Some(i);
            break;
        }
    }
    assert_eq!(refused_at, Some(12), "the address is stopped after 12 attempts that failed");
    let (status, _) = attempt(&Browser::at("127.0.0.50"), &s.p, USER, PASSWORD, "000000").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "an unknown browser there is stopped too");
    // The professional's own browser there is not charged to that address.
    s.p.clock.advance(30);
    let (status, _) = attempt(&ward, &s.p, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the ward's browser still signs in");

    // The administrator's lift undoes every lock of the identifier.
    s.p.app.engine.lockout().reset(USER).await.unwrap();
    s.p.clock.advance(30);
    let (status, _) = attempt(&attacker, &s.p, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "lifted for every source");
}

#[tokio::test]
async fn item_4_a_stranger_cannot_make_the_provider_hold_interactions_without_bound() {
    let p = TestProvider::start_with(Storage::Embedded, |c| {
        c.session.max_interactions_per_browser = 5;
        c.session.max_interactions_per_address = 20;
    })
    .await
    .unwrap();
    let s = setup(p).await;
    // One browser keeping its cookie: 5 logins started, then 429 with Retry-After.
    let browser = Browser::at("127.0.0.2");
    for _ in 0..5 {
        assert_eq!(browser.get(&authorize_url(&s.p, "rp", &[])).await.status(), StatusCode::SEE_OTHER);
    }
    let r = browser.get(&authorize_url(&s.p, "rp", &[])).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry));
    assert!(r.text().await.unwrap().contains("Trop de demandes de connexion"), "a clear page, in French");

    // Without cookies, every request looks new: the address is the limit.
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address("127.0.0.3".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    for i in 0..20 {
        let status = raw.get(authorize_url(&s.p, "rp", &[])).send().await.unwrap().status();
        assert_eq!(status, StatusCode::SEE_OTHER, "request {i}");
    }
    let status = raw.get(authorize_url(&s.p, "rp", &[])).send().await.unwrap().status();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The crossing is audited once, not once per refused request.
    for _ in 0..5 {
        raw.get(authorize_url(&s.p, "rp", &[])).send().await.unwrap();
    }
    let query = directory::AuditQuery { event: Some("interaction_limit".into()), ..Default::default() };
    assert_eq!(s.p.directory().audit().query(query).await.unwrap().len(), 2, "one per limit crossed");

    // Parameters kept with a login are short: a 1 KB login_hint is refused, nothing stored.
    let long = "s".repeat(1024);
    let elsewhere = Browser::at("127.0.0.4");
    let r = elsewhere.get(&authorize_url(&s.p, "rp", &[("login_hint", &long)])).await;
    let to = location(r.headers());
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"), "{to}");

    // The professional, elsewhere, signs in.
    assert!(!login(&elsewhere, &s.p, "rp", USER, &s.totp, 0).await.is_empty());
}

#[tokio::test]
async fn item_4_the_embedded_store_is_bounded_and_recovers() {
    let p = TestProvider::start_with(Storage::Embedded, |c| {
        c.session.memory_limit_mb = 1;
        c.session.interaction_ttl = 3;
        c.session.max_interactions_per_address = 1_000_000;
    })
    .await
    .unwrap();
    let s = setup(p).await;
    let raw = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let padding = "p".repeat(490);
    let mut refused = None;
    for i in 0..5000 {
        let r = raw.get(authorize_url(&s.p, "rp", &[("login_hint", &padding)])).send().await.unwrap();
        match r.status() {
            StatusCode::SEE_OTHER => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some(i);
                break;
            }
            other => panic!("request {i}: {other}"),
        }
    }
    let refused = refused.expect("the store fills up and refuses, rather than growing");
    assert!((500..1500).contains(&refused), "about 1 MiB worth of interactions: {refused}");
    // Once they expire, there is room again.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let b = Browser::new();
    assert!(!login(&b, &s.p, "rp", USER, &s.totp, 0).await.is_empty());
}
