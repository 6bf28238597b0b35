//! The professional's wallet: signing in through the provider, enrolling a TOTP app from a QR
//! code (active after its first code), removing an authenticator, signing out.

use reqwest::StatusCode;
use server::testing::TestProvider;

use crate::common::*;

/// Opens the wallet in `b`, signing in when asked; returns the wallet page.
pub(crate) async fn open_wallet(b: &Browser, s: &Setup, step: i64) -> String {
    let r = b.get(&s.p.url("/wallet")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(r.headers());
    assert!(to.starts_with("/authorize?client_id=caducee-wallet"), "{to}");
    assert!(to.contains("max_age=900") && to.contains("code_challenge_method=S256"));
    let r = b.get(&s.p.resolve(&to)).await;
    let login_url = s.p.resolve(&location(r.headers()));
    let html = b.get(&login_url).await.text().await.unwrap();
    assert!(html.contains("Caducée – portefeuille"), "the login page names the wallet");
    let r = submit(b, &login_url, &html, USER, PASSWORD, &s.p.totp(&s.totp, step).unwrap()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let callback = location(r.headers());
    assert!(callback.starts_with(&s.p.url("/wallet/callback?code=")), "{callback}");
    let r = b.get(&callback).await;
    assert_eq!(location(r.headers()), "/wallet");
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.contains("caducee_wallet=") && cookie.contains("SameSite=Strict") && cookie.contains("HttpOnly"));
    let page = b.get(&s.p.url("/wallet")).await;
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let a = html.find(start).unwrap() + start.len();
    let b = html[a..].find(end).unwrap() + a;
    &html[a..b]
}

#[tokio::test]
async fn a_professional_enrols_a_totp_app_from_the_wallet_and_signs_in_with_it() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let home = open_wallet(&b, &s, 0).await;
    assert!(home.contains("Mon portefeuille") && home.contains("Jeanne Martin") && home.contains(USER));
    assert!(home.contains("Application OTP"), "the TOTP app enrolled by the operator is listed");
    let csrf = between(&home, "name=\"csrf_token\" value=\"", "\"").to_owned();

    // Forms need the wallet's anti-forgery token.
    assert_eq!(
        b.post_form(&s.p.url("/wallet/totp"), &[("csrf_token", "forged")]).await.status(),
        StatusCode::FORBIDDEN
    );

    let enrol = b.post_form(&s.p.url("/wallet/totp"), &[("csrf_token", &csrf)]).await.text().await.unwrap();
    assert!(enrol.contains("<svg"), "a QR code rendered server-side as SVG");
    let secret = between(&enrol, "<code class=\"secret\">", "</code>").to_owned();
    let action = between(&enrol, "action=\"/wallet/totp/", "/activate\"").to_owned();
    let key = totp_rs::Secret::Encoded(secret).to_bytes().unwrap();

    // Pending until a first correct code: it does not sign in yet.
    let page = b.get(&s.p.url("/wallet")).await.text().await.unwrap();
    assert!(page.contains("En attente du premier code"));
    let wrong = b
        .post_form(&s.p.url(&format!("/wallet/totp/{action}/activate")), &[("csrf_token", &csrf), ("code", "000000")])
        .await;
    assert!(wrong.text().await.unwrap().contains("incorrect ou a expiré"));

    let code = s.p.totp(&key, 0).unwrap();
    let ok = b
        .post_form(&s.p.url(&format!("/wallet/totp/{action}/activate")), &[("csrf_token", &csrf), ("code", &code)])
        .await;
    assert!(ok.text().await.unwrap().contains("est active : vous pouvez utiliser ses codes"));
    let page = b.get(&s.p.url("/wallet")).await.text().await.unwrap();
    assert!(!page.contains("En attente du premier code"), "the new app is active");

    // The new app's next code signs in elsewhere.
    let other = Browser::new();
    let code = login(&other, &s.p, "rp", USER, &key, 1).await;
    assert_eq!(exchange(&s.p, "rp", &s.secret, &code).await.0, StatusCode::OK);
}

#[tokio::test]
async fn removing_an_authenticator_stops_its_codes_and_signing_out_ends_the_session() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    // A relying party signed in with this browser first.
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let (_, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    let at = tokens["access_token"].as_str().unwrap().to_owned();

    // The wallet reuses that recent sign-in (no second login).
    let r = b.get(&s.p.url("/wallet")).await;
    let r = b.get(&s.p.resolve(&location(r.headers()))).await;
    let callback = location(r.headers());
    assert!(callback.contains("/wallet/callback?code="), "SSO into the wallet: {callback}");
    b.get(&callback).await;
    let home = b.get(&s.p.url("/wallet")).await.text().await.unwrap();
    let csrf = between(&home, "name=\"csrf_token\" value=\"", "\"").to_owned();
    let id = between(&home, "action=\"/wallet/authenticators/", "/remove\"").to_owned();

    let removed = b.post_form(&s.p.url(&format!("/wallet/authenticators/{id}/remove")), &[("csrf_token", &csrf)]).await;
    assert!(removed.text().await.unwrap().contains("a été retiré"));
    let other = Browser::new();
    let (url, html) = open_login(&other, &s.p, "rp", &[]).await;
    let r = submit(&other, &url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 1).unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK, "the removed app's codes no longer sign in");

    let out = b.post_form(&s.p.url("/wallet/logout"), &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status(), StatusCode::OK);
    assert_eq!(userinfo(&s.p, &at).await, StatusCode::UNAUTHORIZED, "tokens of the session are dead");
    assert_eq!(b.get(&s.p.url("/wallet")).await.status(), StatusCode::SEE_OTHER, "the wallet is closed");
}

#[tokio::test]
async fn the_wallet_lists_sessions_and_activity_and_cuts_sessions_off() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    // An impostor who knows the password failed once, then got in from another browser.
    let impostor = Browser::new();
    let (url, html) = open_login(&impostor, &s.p, "rp", &[]).await;
    submit(&impostor, &url, &html, USER, PASSWORD, "000000").await;
    let code = login(&impostor, &s.p, "rp", USER, &s.totp, 1).await;
    let (_, stolen) = exchange(&s.p, "rp", &s.secret, &code).await;
    let stolen_at = stolen["access_token"].as_str().unwrap().to_owned();

    let me = Browser::new();
    s.p.clock.advance(30);
    let home = open_wallet(&me, &s, 1).await;
    assert!(home.contains("Mes sessions actives") && home.contains("Activité récente"));
    assert_eq!(home.matches("Déconnecter cette session</button>").count(), 2, "two sessions: mine and the impostor's");
    assert!(home.contains("(cette session)"));
    assert!(home.contains("Tentative refusée"), "the refused attempt is visible");
    assert!(home.contains("rp"), "the service the impostor reached is named");

    // Cut the impostor's session (the one that is not this one).
    let csrf = between(&home, "name=\"csrf_token\" value=\"", "\"").to_owned();
    let rows: Vec<&str> = home.split("<tr>").filter(|r| r.contains("/wallet/sessions/")).collect();
    let other = rows.iter().find(|r| !r.contains("(cette session)")).unwrap();
    let sid = between(other, "action=\"/wallet/sessions/", "/end\"").to_owned();
    let page = me.post_form(&s.p.url(&format!("/wallet/sessions/{sid}/end")), &[("csrf_token", &csrf)]).await;
    assert!(page.text().await.unwrap().contains("a été déconnectée"));
    assert_eq!(userinfo(&s.p, &stolen_at).await, StatusCode::UNAUTHORIZED, "the impostor's tokens are dead");
    let r = impostor.get(&authorize_url(&s.p, "rp", &[("prompt", "none")])).await;
    assert_eq!(query_param(&location(r.headers()), "error").as_deref(), Some("login_required"));

    // Another professional's session cannot be ended from this wallet.
    let forged = me.post_form(&s.p.url("/wallet/sessions/not-mine/end"), &[("csrf_token", &csrf)]).await;
    assert!(forged.text().await.unwrap().contains("ne vous appartient pas"));

    // «Me déconnecter partout» ends this session too.
    let out = me.post_form(&s.p.url("/wallet/sessions/end-all"), &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status(), StatusCode::OK);
    assert_eq!(me.get(&s.p.url("/wallet")).await.status(), StatusCode::SEE_OTHER, "signed out everywhere");
}

/// The `Set-Cookie` header of `r` for cookie `name`.
fn set_cookie<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

#[tokio::test]
async fn item_11_a_wallet_callback_carried_to_another_browser_signs_nobody_in() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    // Someone starts a wallet sign-in with their own account and keeps the callback URL.
    let attacker = Browser::new();
    let r = attacker.get(&s.p.url("/wallet")).await;
    let binding = set_cookie(&r, "caducee_wallet_login").expect("the sign-in is bound to this browser").to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/wallet", "Max-Age=900"] {
        assert!(binding.contains(attribute), "{binding}");
    }
    let r = attacker.get(&s.p.resolve(&location(r.headers()))).await;
    let login_url = s.p.resolve(&location(r.headers()));
    let html = attacker.get(&login_url).await.text().await.unwrap();
    let r = submit(&attacker, &login_url, &html, USER, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
    let callback = location(r.headers());
    assert!(callback.starts_with(&s.p.url("/wallet/callback?code=")), "{callback}");

    // The victim's browser, even in the middle of a wallet sign-in of its own, follows it.
    let victim = Browser::new();
    let own = victim.get(&s.p.url("/wallet")).await;
    assert!(set_cookie(&own, "caducee_wallet_login").is_some());
    let r = victim.get(&callback).await;
    assert_eq!(location(r.headers()), "/wallet");
    assert!(set_cookie(&r, "caducee_wallet").is_none(), "no wallet session");
    let r = victim.get(&s.p.url("/wallet")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the victim is not signed into anyone's wallet");
    assert!(location(r.headers()).starts_with("/authorize?"));

    // The code was not redeemed for the victim: the attacker's pending sign-in is spent, and
    // their browser gets nothing from the URL either.
    let r = attacker.get(&callback).await;
    assert!(set_cookie(&r, "caducee_wallet").is_none());
    assert!(set_cookie(&r, "caducee_wallet_login").is_some_and(|c| c.contains("Max-Age=0")), "cleared");
}
