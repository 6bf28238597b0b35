//! Issue 14, «push approval, finished»: what the fraud pattern of the seed's notice still got
//! through. A limit per source address across accounts, no new phone for a day after «ce
//! n'était pas moi» (with an alert for administrators), and the trusted context the phone shows.

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use server::testing::{Storage, TestProvider};

use crate::common::*;
use crate::push::{Phone, ask_push, between, enrolled_phone, plain, waiting};
use crate::wallet::open_wallet;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// A browser on another machine (`ip`, in 127.0.0.0/8) announcing itself as `user_agent`.
fn browser(ip: &str, user_agent: &str) -> Browser {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .user_agent(user_agent)
        .build()
        .unwrap();
    Browser { http }
}

#[tokio::test]
async fn the_phone_sees_who_asks_from_where_and_the_operators_warning() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let phone = enrolled_phone(&s).await;
    let b = browser("127.0.0.7", &format!("{FIREFOX}\t<script>"));
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
    let impostor = browser("127.0.0.66", FIREFOX);
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
