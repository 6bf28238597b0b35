//! The push approval's guards with the real `caducee-authenticator` binary as the phone:
//! «ce n'était pas moi» tells every relying party at once and freezes enrolment; a push
//! answered too late signs nobody in (the clock is moved, no sleep); refusals silence the phone;
//! one address gets only so many pushes whatever the account.

use std::time::Duration;

use authn_methods::push::EnrolmentStart;
use reqwest::StatusCode;
use server::testing::{Storage, TestProvider};

use crate::authenticator::{enrolled, push_login};
use crate::backchannel::{signed_in_to_two, wait_for};
use crate::common::*;
use crate::push::{check, plain};

#[tokio::test]
async fn not_me_from_the_authenticator_tells_every_relying_party_and_freezes_enrolment() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (app, _) = enrolled(&s).await;
    // The professional is signed in to two services.
    let (_own, rp_a, rp_b) = signed_in_to_two(&s).await;

    // Someone with the password asks for a push; the professional answers «not me».
    let impostor = Browser::new();
    let (login_url, page, _) = push_login(&s, &impostor).await;
    let id = app.pushes().await[0]["id"].as_str().unwrap().to_owned();
    let r = app.run(&["deny", &id, "--not-me"]).await;
    assert_eq!((r.code, r.json["outcome"].as_str()), (0, Some("blocked")), "{r:?}");
    let a = wait_for(&rp_a, 1, Duration::from_secs(5)).await;
    let b = wait_for(&rp_b, 1, Duration::from_secs(5)).await;
    assert_eq!((a.len(), b.len()), (1, 1), "each relying party told at once");
    assert!(check(&impostor, &login_url, &page).await.text().await.map(plain).unwrap().contains("refusée"));

    // The impostor's next move, a phone of theirs, is frozen for a day, phone removed or not.
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    for a in s.p.directory().authenticators().list_for_subject(&subject).await.unwrap() {
        s.p.directory().authenticators().delete(&a.id).await.unwrap();
    }
    let now = s.p.clock.now();
    match s.p.app.push.start_enrolment(&subject, "Téléphone", now).await.unwrap() {
        EnrolmentStart::Frozen { until } => assert!(until >= now + 86_000, "{until}"),
        other => panic!("enrolment must be frozen: {other:?}"),
    }
}

#[tokio::test]
async fn late_refused_and_repeated_pushes_with_the_authenticator() {
    // Ten-second pushes: the provider's clock moves past one while the binary's own clock (which
    // dates its requests) stays within the minute the provider accepts.
    let p = TestProvider::start_with(Storage::Embedded, |c| {
        c.push.max_per_address = 4;
        c.push.validity = 10;
    })
    .await
    .unwrap();
    let s = setup(p).await;
    let (app, _) = enrolled(&s).await;

    // Answered after its life: nobody signs in.
    let b = Browser::new();
    let (login_url, page, number) = push_login(&s, &b).await;
    let id = app.pushes().await[0]["id"].as_str().unwrap().to_owned();
    s.p.clock.advance(11);
    let r = app.run(&["approve", &id, "--number", &number]).await;
    assert_eq!((r.code, r.json["error"].as_str()), (1, Some("not_found")), "{r:?}");
    let answer = check(&b, &login_url, &page).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.text().await.map(plain).unwrap().contains("a expiré sans réponse"));

    // Two refusals: the phone is no longer woken, and the page says to open the app.
    for _ in 0..2 {
        let (_, _, _) = push_login(&s, &Browser::new()).await;
        let id = app.pushes().await[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(app.run(&["deny", &id]).await.json["outcome"], "denied");
    }
    let (_, page, _) = push_login(&s, &Browser::new()).await;
    assert!(page.contains("n'est plus averti pendant une heure"), "auto-silence: {page}");
    assert_eq!(app.pushes().await.len(), 1, "the request still waits in the app");

    // The fifth push from this address, whatever the account allows, is refused.
    let b = Browser::new();
    let (login_url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let r = crate::push::ask_push(&b, &login_url, &html, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let audit = s.p.directory().audit().query(directory::AuditQuery::default()).await.unwrap();
    assert!(audit.iter().any(|r| r.event == "push_refused" && r.details["limit"] == "address"));
}
