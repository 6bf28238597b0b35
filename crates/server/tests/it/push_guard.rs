//! Issue 14, «push approval, finished»: what the fraud pattern of the seed's notice still got
//! through. A limit per source address across accounts, no new phone for a day after «ce
//! n'était pas moi» (with an alert for administrators), and the trusted context the phone shows.

use reqwest::StatusCode;
use serde_json::Value;
use server::testing::{Storage, TestProvider};

use crate::common::*;
use crate::push::{Phone, ask_push, between, enrolled_phone, plain, waiting};
use crate::wallet::open_wallet;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

#[tokio::test]
async fn the_phone_sees_who_asks_from_where_and_the_operators_warning() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    let b = Browser::at_as("127.0.0.7", Some(&format!("{FIREFOX}\t<script>")));
    let (login_url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let asked = s.p.clock.now();
    let page = ask_push(&b, &login_url, &html, PASSWORD).await.text().await.map(plain).unwrap();
    let (number, _) = waiting(&page);
    let pending = phone.pending(&s.p).await;
    let shown = &pending[0];
    assert_eq!(shown["client_name"], "rp", "the relying party's registered name");
    assert_eq!(shown["source_ip"], "127.0.0.7");
    assert_eq!(shown["browser"], "Firefox (Linux)");
    assert_eq!(shown["user_agent"].as_str(), Some(format!("{FIREFOX}<script>").as_str()), "printable text only");
    let at = shown["created_at"].as_i64().unwrap();
    assert!((asked..=s.p.clock.now()).contains(&at), "when: {at}");
    assert!(shown["warning"].as_str().unwrap().contains("Nous ne vous demanderons jamais ce code"), "{shown}");
    assert!(!shown.to_string().contains(&format!("\"{number}\"")), "never the number");
}

#[tokio::test]
async fn pushes_asked_from_one_address_are_limited_whatever_the_account_allows() {
    let p = TestProvider::start_with(Storage::Embedded, |c| {
        c.push.max_per_account = 100;
        c.push.max_per_address = 3;
    })
    .await
    .unwrap();
    let s = setup(p).await;
    let phone = enrolled_phone(&s).await;
    let attacker = Browser::at("127.0.0.9");
    for _ in 0..3 {
        let (login_url, html) = open_login(&attacker, &s.p, "rp", &[]).await;
        let r = ask_push(&attacker, &login_url, &html, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains("push-number"));
    }
    let (login_url, html) = open_login(&attacker, &s.p, "rp", &[]).await;
    let r = ask_push(&attacker, &login_url, &html, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry), "an hour's window: {retry}");
    assert_eq!(phone.pending(&s.p).await.len(), 1, "the fourth reached no phone");

    // The professional, from another address, still gets theirs.
    let own = Browser::at("127.0.0.10");
    let (login_url, html) = open_login(&own, &s.p, "rp", &[]).await;
    let r = ask_push(&own, &login_url, &html, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);

    let audit =
        s.p.directory().audit().query(directory::AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    let refused: Vec<_> = audit.iter().filter(|r| r.event == "push_refused").collect();
    assert_eq!(refused.len(), 1);
    assert_eq!((refused[0].outcome.as_str(), refused[0].details["limit"].as_str()), ("throttled", Some("address")));
}

#[tokio::test]
async fn after_not_me_no_phone_can_be_enrolled_for_a_day_and_administrators_get_an_alert() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    let impostor = Browser::at_as("127.0.0.66", Some(FIREFOX));
    let (login_url, html) = open_login(&impostor, &s.p, "rp", &[]).await;
    ask_push(&impostor, &login_url, &html, PASSWORD).await;
    let challenge = phone.pending(&s.p).await[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = phone.answer(&s.p, &challenge, "not_me", "").await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("blocked")), "{body}");

    // The alert, with what is known of the impostor.
    let audit =
        s.p.directory().audit().query(directory::AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    let alert = audit.iter().find(|r| r.event == "security_alert").expect("an alert for administrators");
    assert_eq!(alert.outcome, "push_not_me");
    assert_eq!(alert.source_ip.as_deref(), Some("127.0.0.66"));
    assert_eq!(alert.details["user_agent"], FIREFOX);
    assert_eq!(alert.details["client"], "rp");
    assert_eq!(alert.details["enrolment_frozen_until"], alert.at + 86_400);

    // The impostor, holding the password, removes the phone and tries to enrol theirs: even
    // the professional cannot for a day, nor with the block lifted.
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    for a in s.p.directory().authenticators().list_for_subject(&subject).await.unwrap() {
        if a.kind == "push" {
            s.p.directory().authenticators().delete(&a.id).await.unwrap();
        }
    }
    s.p.directory().push_blocks().unblock(&subject).await.unwrap();
    s.p.clock.advance(60);
    let b = Browser::new();
    let home = plain(open_wallet(&b, &s, 0).await);
    let csrf = between(&home, "name=\"csrf_token\" value=\"", "\"").to_owned();
    let page = b.post_form(&s.p.url("/wallet/push"), &[("csrf_token", &csrf)]).await.text().await.map(plain).unwrap();
    assert!(page.contains("aucun téléphone ne peut être enregistré avant"), "the wallet says until when");
    assert!(!page.contains("<code class=\"secret\">"), "no enrolment code");

    // A day later, enrolment works again.
    s.p.clock.advance(86_400);
    let b = Browser::new();
    let home = plain(open_wallet(&b, &s, 0).await);
    let csrf = between(&home, "name=\"csrf_token\" value=\"", "\"").to_owned();
    let page = b.post_form(&s.p.url("/wallet/push"), &[("csrf_token", &csrf)]).await.text().await.map(plain).unwrap();
    let code = between(&page, "<code class=\"secret\">", "</code>").to_owned();
    let mut new_phone = Phone::new(&s.p);
    let (status, body) = new_phone.enrol(&s.p, &code).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

const GATEWAY_SECRET: &str = "a gateway secret of forty characters...";

/// A push gateway on loopback: hands over each call's timestamp, signature and body.
async fn gateway() -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, String, Vec<u8>)>) {
    use axum::http::HeaderMap;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/wake",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let _ = tx.send((header("x-caducee-timestamp"), header("x-caducee-signature"), body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wake", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn with_gateway(url: &str) -> Setup {
    let url = url.to_owned();
    let p = TestProvider::start_with(Storage::Embedded, move |c| {
        c.push.webhook_url = url.clone();
        c.push.webhook_secret = GATEWAY_SECRET.to_owned();
        c.push.max_per_account = 100;
        c.push.max_per_address = 100;
        // Each push request counts toward the lockout until a login completes: out of the way.
        c.login.max_failures = 100;
        c.login.identifier_delay_after = 100;
    })
    .await
    .unwrap();
    setup(p).await
}

/// The next wake-up call, checked: signed with the shared secret over its timestamp and body.
async fn next_wake_up(calls: &mut tokio::sync::mpsc::UnboundedReceiver<(String, String, Vec<u8>)>) -> Value {
    let (timestamp, signature, body) =
        tokio::time::timeout(std::time::Duration::from_secs(10), calls.recv()).await.unwrap().unwrap();
    let timestamp: i64 = timestamp.parse().unwrap();
    assert_eq!(signature, authn_methods::push_notify::signature(GATEWAY_SECRET.as_bytes(), timestamp, &body));
    serde_json::from_slice(&body).unwrap()
}

/// Asks for a push from a new browser; returns the waiting page, as read.
async fn asked(s: &Setup) -> String {
    let b = Browser::new();
    let (login_url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let r = ask_push(&b, &login_url, &html, PASSWORD).await;
    let status = r.status();
    let page = r.text().await.map(plain).unwrap();
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

#[tokio::test]
async fn a_gateway_wakes_the_phone_with_a_signed_call_that_names_no_one() {
    let (url, mut calls) = gateway().await;
    let s = with_gateway(&url).await;
    let phone = enrolled_phone(&s).await;
    asked(&s).await;
    let call = next_wake_up(&mut calls).await;
    let pending = phone.pending(&s.p).await;
    assert_eq!(call["type"], "push_request");
    assert_eq!(call["device_id"].as_str(), phone.device.as_deref());
    assert_eq!(call["challenge_id"], pending[0]["id"]);
    assert_eq!(call["expires_at"].as_i64().unwrap() - call["issued_at"].as_i64().unwrap(), 60);
    assert!(!call.to_string().contains(USER), "nothing about the person: {call}");
}

#[tokio::test]
async fn after_two_refusals_or_three_unanswered_requests_the_phone_is_not_woken_for_an_hour() {
    let (url, mut calls) = gateway().await;
    let s = with_gateway(&url).await;
    let phone = enrolled_phone(&s).await;
    let woken = |s: &Setup| {
        let directory = s.p.directory().clone();
        async move {
            let audit = directory
                .audit()
                .query(directory::AuditQuery { limit: Some(1000), ..Default::default() })
                .await
                .unwrap();
            audit.iter().filter(|r| r.event == "push_sent").map(|r| r.details["woken"].clone()).collect::<Vec<_>>()
        }
    };

    // Two refusals on the phone.
    for _ in 0..2 {
        asked(&s).await;
        next_wake_up(&mut calls).await;
        let challenge = phone.pending(&s.p).await[0]["id"].as_str().unwrap().to_owned();
        let (status, body) = phone.answer(&s.p, &challenge, "deny", "").await;
        assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("denied")));
    }
    // The third reaches the app, but the phone is not woken; the page says to open the app.
    let page = asked(&s).await;
    assert!(page.contains("ouvrez l'application Caducée pour voir cette demande"), "{page}");
    assert_eq!(phone.pending(&s.p).await.len(), 1, "the request waits in the app");
    assert_eq!(woken(&s).await, vec![Value::from(true), Value::from(true), Value::from(false)]);

    // An hour later the phone is woken again, until three requests in a row go unanswered
    // (the silenced one is the first of them).
    s.p.clock.advance(3601);
    for _ in 0..2 {
        asked(&s).await;
        next_wake_up(&mut calls).await;
    }
    let page = asked(&s).await;
    assert!(page.contains("ouvrez l'application Caducée"), "after three unanswered");
    let flags = woken(&s).await;
    assert_eq!(&flags[3..], &[Value::from(true), Value::from(true), Value::from(false)]);

    // The professional opens the app and approves: the phone is woken again at once.
    let challenge = phone.pending(&s.p).await[0]["id"].as_str().unwrap().to_owned();
    let number = waiting(&page).0;
    let (status, body) = phone.answer(&s.p, &challenge, "approve", &number).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("approved")), "{body}");
    asked(&s).await;
    next_wake_up(&mut calls).await;

    // Nothing woke the phone meanwhile: every call the gateway got is accounted for above.
    assert!(calls.try_recv().is_err());
}

#[tokio::test]
async fn a_phone_holding_its_list_request_open_learns_of_a_push_at_once() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    // Nothing pending: the answer is held for the time asked, then comes back empty.
    let started = std::time::Instant::now();
    assert!(phone.pending_waiting(&s.p, 1).await.is_empty());
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "held for the second asked");

    // Held for up to 30 s, it comes back with the push the browser asks meanwhile.
    let started = std::time::Instant::now();
    let (list, page) = tokio::join!(phone.pending_waiting(&s.p, 30), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        asked(&s).await
    });
    assert_eq!(list.len(), 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(25), "well before the wait was up");
    let (number, _) = waiting(&page);
    let (status, body) = phone.answer(&s.p, list[0]["id"].as_str().unwrap(), "approve", &number).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("approved")), "{body}");
}

/// The seed's fraud pattern at scale: an attacker who knows three professionals' passwords
/// asks for pushes 200 times, from ten addresses of 127.0.0.0/8, over the three accounts. The
/// phones get at most what the limits allow and are woken less, nobody signs in, and every
/// attempt is in the audit. (The figures are in docs/security.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_bombing_from_ten_addresses_reaches_the_phones_only_as_far_as_the_limits_allow() {
    let (url, mut calls) = gateway().await;
    let url_for_config = url.clone();
    let p = TestProvider::start_with(Storage::Embedded, move |c| {
        c.push.webhook_url = url_for_config.clone();
        c.push.webhook_secret = GATEWAY_SECRET.to_owned();
        // Refusals are padded to a uniform duration; not what is measured here.
        c.login.failure_floor_ms = 10;
    })
    .await
    .unwrap();
    let s = setup(p).await;
    let mut phones = vec![enrolled_phone(&s).await];
    let push = s.p.app.push.clone();
    let others = ["899700000002", "899700000003"];
    for user in others {
        let (pro, _) = s.p.add_professional(user, PASSWORD).await.unwrap();
        let code = push.start_enrolment(&pro.subject, "phone", s.p.clock.now()).await.unwrap().started().unwrap().code;
        let mut phone = Phone::new(&s.p);
        assert_eq!(phone.enrol(&s.p, &code).await.0, StatusCode::CREATED);
        phones.push(phone);
    }
    let users = [USER, others[0], others[1]];
    let all = directory::AuditQuery { limit: Some(1000), ..Default::default() };
    let before = s.p.directory().audit().query(all.clone()).await.unwrap().last().map_or(0, |r| r.id);

    let attempts = futures::future::join_all((11..21).map(|host| {
        let s = &s;
        async move {
            let attacker = Browser::at(&format!("127.0.0.{host}"));
            let mut statuses = Vec::new();
            for i in 0..20 {
                let (login_url, html) = open_login(&attacker, &s.p, "rp", &[]).await;
                let token = csrf(&html);
                let user = users[(host + i) % 3];
                let form = [
                    ("username", user),
                    ("password", PASSWORD),
                    ("otp", ""),
                    ("csrf_token", &token),
                    ("action", "send_push"),
                ];
                statuses.push(attacker.post_form(&login_url, &form).await.status());
            }
            statuses
        }
    }))
    .await;
    let statuses: Vec<StatusCode> = attempts.into_iter().flatten().collect();
    assert_eq!(statuses.len(), 200);
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");

    let audit = s.p.directory().audit().query(directory::AuditQuery { after_id: Some(before), ..all }).await.unwrap();
    let sent: Vec<_> = audit.iter().filter(|r| r.event == "push_sent").collect();
    let refused = audit.iter().filter(|r| r.event == "push_refused").count();
    assert_eq!(sent.len() + refused, 200, "every attempt is in the audit");
    for user in users {
        let subject = s.p.directory().professionals().get_by_national_id(user).await.unwrap().unwrap().subject;
        let to_this_phone = sent.iter().filter(|r| r.subject.as_deref() == Some(subject.as_str())).count();
        assert!(to_this_phone <= 5, "{user}: {to_this_phone} requests, for 5 per quarter hour per account");
    }
    assert!(audit.iter().all(|r| r.event != "signin"), "nobody signed in");
    // The phones were woken for at most three requests each (then auto-silence).
    let mut woken = 0;
    while let Ok(Ok(Some(_))) =
        tokio::time::timeout(std::time::Duration::from_secs(2), calls.recv()).await.map(Ok::<_, ()>)
    {
        woken += 1;
    }
    assert!(woken <= 9, "woken {woken} times for 3 phones");
    let refusals: std::collections::BTreeMap<String, usize> =
        audit.iter().filter(|r| r.event == "push_refused").fold(Default::default(), |mut m, r| {
            let reason = match r.details["limit"].as_str() {
                Some(limit) => format!("{}_{limit}", r.outcome),
                None => r.outcome.clone(),
            };
            *m.entry(reason).or_default() += 1;
            m
        });
    println!("push bombing: {} sent, woken {woken}, refused {refusals:?}", sent.len());
}
