//! The console (`/admin`) over plain HTTP, where the browser test need not go: acts that change
//! something need a login less than 5 minutes old, the console's session follows the SSO
//! session, and a role taken back closes the console at the next request.

use reqwest::StatusCode;
use server::testing::TestProvider;

use crate::browser_console::{ADMIN, with_admin};
use crate::common::*;

/// Signs in to the console as `user` (the login form, then the callback); returns the home page.
async fn console_login(b: &Browser, p: &TestProvider, user: &str, totp: &[u8]) -> String {
    let r = b.get(&p.url("/admin")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let authorize = p.resolve(&location(r.headers()));
    assert!(authorize.contains("client_id=caducee-console"), "{authorize}");
    let r = b.get(&authorize).await;
    let login = p.resolve(&location(r.headers()));
    let html = b.get(&login).await.text().await.unwrap();
    let r = submit(b, &login, &html, user, PASSWORD, &p.totp(totp, 0).unwrap()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login accepted");
    let callback = p.resolve(&location(r.headers()));
    assert!(callback.contains("/admin/callback"), "{callback}");
    let r = b.get(&callback).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = b.get(&p.resolve(&location(r.headers()))).await;
    assert_eq!(home.status(), StatusCode::OK);
    home.text().await.unwrap()
}

#[tokio::test]
async fn acts_need_a_recent_login_and_the_console_follows_the_sso_session_and_the_role() {
    let (s, admin_totp) = with_admin().await;
    let p = &s.p;
    let b = Browser::new();
    let home = console_login(&b, p, ADMIN, &admin_totp).await;
    assert!(home.contains("<h1>Console d"), "{home}");
    let token = csrf(&home);
    let confirm = format!("{}?nid={USER}&act=block&target=", p.url("/admin/confirm"));
    let r = b.get(&confirm).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Bloquer ce compte"), "{html}");

    // Five minutes on: the confirmation and the act send the administrator to sign in again.
    p.clock.advance(301);
    let r = b.get(&confirm).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let reauth = p.resolve(&location(r.headers()));
    assert!(reauth.contains("/admin/reauth?then="), "{reauth}");
    let act = [("csrf_token", token.as_str()), ("nid", USER), ("act", "block"), ("target", "")];
    let r = b.post_form(&p.url("/admin/act"), &act).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(r.headers()).contains("/admin/reauth"));
    assert_eq!(p.app.admin().account(USER).await.unwrap().status, "active", "nothing done");
    let r = b.get(&reauth).await;
    let authorize = p.resolve(&location(r.headers()));
    assert!(authorize.contains("prompt=login") && authorize.contains("max_age=300"), "{authorize}");

    // The SSO session ends: so does the console's.
    let operator = admin_api::Actor { id: "operator:test".into(), source_ip: None };
    p.app.admin().revoke_all(&operator, ADMIN).await.unwrap();
    let r = b.get(&p.url("/admin")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(r.headers()).contains("/authorize?"), "back to the sign-in");

    // Signed in again, then the role is taken back: refused at the next request.
    p.clock.advance(30);
    let b = Browser::new();
    console_login(&b, p, ADMIN, &admin_totp).await;
    assert!(p.app.admin().revoke_admin(&operator, ADMIN).await.unwrap());
    let r = b.get(&p.url("/admin")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let headers = r.headers().clone();
    let csp = headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
}
