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
    // Signed in again, the administrator is back at the confirmation, which now shows.
    let r = b.get(&authorize).await;
    let login = p.resolve(&location(r.headers()));
    let html = b.get(&login).await.text().await.unwrap();
    let r = submit(&b, &login, &html, ADMIN, PASSWORD, &p.totp(&admin_totp, 0).unwrap()).await;
    let r = b.get(&p.resolve(&location(r.headers()))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = p.resolve(&location(r.headers()));
    assert!(back.contains("/admin/confirm?") && back.contains("act=block"), "{back}");
    let html = b.get(&back).await.text().await.unwrap();
    assert!(html.contains("Bloquer ce compte"), "{html}");

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

/// The value of the element with `id` in `html` (a secret shown once).
fn text_by_id(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = html.find(&marker).unwrap_or_else(|| panic!("#{id} in {html}")) + marker.len();
    html[start..].split('<').next().unwrap().to_owned()
}

#[tokio::test]
async fn relying_parties_audit_and_logout_notices_from_the_console() {
    let (s, admin_totp) = with_admin().await;
    let p = &s.p;
    let b = Browser::new();
    let home = console_login(&b, p, ADMIN, &admin_totp).await;
    let token = csrf(&home);

    // Register: the admin service's checks hold (a redirect URI with a fragment is refused)...
    let mut form = vec![
        ("csrf_token", token.as_str()),
        ("client_name", "Logiciel du cabinet"),
        ("client_id", "cabinet"),
        ("auth_method", "client_secret_basic"),
        ("redirect_uris", "https://cabinet.example/cb#frag"),
        ("post_logout_redirect_uris", ""),
        ("backchannel_logout_uri", "https://cabinet.example/logout"),
    ];
    let r = b.post_form(&p.url("/admin/clients"), &form).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // ...and the secret is shown once, then works.
    form[4].1 = "https://cabinet.example/cb";
    let r = b.post_form(&p.url("/admin/clients"), &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let secret = text_by_id(&r.text().await.unwrap(), "client-secret");
    assert!(secret.len() >= 32, "{secret}");
    let page = b.get(&format!("{}?id=cabinet", p.url("/admin/client"))).await.text().await.unwrap();
    assert!(page.contains("https://cabinet.example/logout") && !page.contains(&secret), "never shown again");
    let list = b.get(&p.url("/admin/clients")).await.text().await.unwrap();
    assert!(list.contains("Logiciel du cabinet"));

    // Edit: the name and URIs change, through the service's checks, the rest is kept.
    let edit = [
        ("csrf_token", token.as_str()),
        ("client_id", "cabinet"),
        ("client_name", "Cabinet du Parc"),
        ("redirect_uris", "https://cabinet.example/cb\nhttps://cabinet.example/cb2"),
        ("post_logout_redirect_uris", ""),
        ("backchannel_logout_uri", "https://cabinet.example/logout"),
    ];
    let r = b.post_form(&p.url("/admin/clients/edit"), &edit).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let meta = p.app.admin().client("cabinet").await.unwrap().metadata;
    assert_eq!(meta["client_name"], "Cabinet du Parc");
    assert_eq!(meta["redirect_uris"].as_array().unwrap().len(), 2);
    assert_eq!(meta["token_endpoint_auth_method"], "client_secret_basic");

    // The whole registration as JSON, what the API's PUT takes: a field the form has not (the
    // scopes), through the same checks.
    let mut whole = meta.clone();
    whole["allowed_scopes"] = serde_json::json!(["openid", "profile"]);
    let json = serde_json::to_string(&whole).unwrap();
    let r = b
        .post_form(
            &p.url("/admin/clients/edit"),
            &[("csrf_token", &token), ("client_id", "cabinet"), ("metadata", &json)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let scopes = p.app.admin().client("cabinet").await.unwrap().metadata["allowed_scopes"].clone();
    assert_eq!(scopes, serde_json::json!(["openid", "profile"]));
    // Not JSON, or a member the registration does not know (a typo): refused, nothing saved.
    let mut typo = whole.clone();
    typo["scope"] = serde_json::json!("openid");
    let typo = serde_json::to_string(&typo).unwrap();
    for bad in ["{not json", typo.as_str()] {
        let form = [("csrf_token", token.as_str()), ("client_id", "cabinet"), ("metadata", bad)];
        let r = b.post_form(&p.url("/admin/clients/edit"), &form).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // A private_key_jwt client registered from its metadata, keys and all: no secret to show.
    let key = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
    let keyed = serde_json::json!({"client_name": "Logiciel à clé", "redirect_uris": ["https://cle.example/cb"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key]}})
    .to_string();
    let r = b
        .post_form(&p.url("/admin/clients"), &[("csrf_token", &token), ("client_id", "cle"), ("metadata", &keyed)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let meta = p.app.admin().client("cle").await.unwrap().metadata;
    assert_eq!(meta["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(meta["jwks"]["keys"][0]["kid"], "k1");

    // Rotate (confirmed), then remove (confirmed).
    let confirm = b.get(&format!("{}?id=cabinet&act=rotate", p.url("/admin/clients/confirm"))).await;
    assert!(confirm.text().await.unwrap().contains("Changer le secret de ce service"));
    let r = b
        .post_form(&p.url("/admin/clients/act"), &[("csrf_token", &token), ("id", "cabinet"), ("act", "rotate")])
        .await;
    let rotated = text_by_id(&r.text().await.unwrap(), "client-secret");
    assert_ne!(rotated, secret);
    let r = b.post_form(&p.url("/admin/clients/act"), &[("id", "cabinet"), ("act", "remove")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no anti-forgery token, nothing removed");
    let r = b
        .post_form(&p.url("/admin/clients/act"), &[("csrf_token", &token), ("id", "cabinet"), ("act", "remove")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(p.app.admin().client("cabinet").await.is_err());

    // The audit log, filtered by event, names the administrator; the chain is intact.
    let audit = b
        .get(&format!("{}?event=admin.client.create&from=2020-01-01&verify=1", p.url("/admin/audit")))
        .await
        .text()
        .await
        .unwrap();
    assert!(audit.contains(&format!("console:{ADMIN}")), "{audit}");
    assert!(audit.contains("La chaîne est intacte"), "{audit}");
    let r = b.get(&format!("{}?from=hier", p.url("/admin/audit"))).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A logout notice to a relying party that is not there fails; sent again from the console.
    let (listener, port) = crate::backchannel::listener().await;
    drop(listener);
    crate::backchannel::register(p, "gone", port).await;
    let user = Browser::new();
    login(&user, p, "gone", USER, &s.totp, 0).await;
    let operator = admin_api::Actor { id: "operator:test".into(), source_ip: None };
    p.app.admin().revoke_all(&operator, USER).await.unwrap();
    let mut pending = Vec::new();
    for _ in 0..100 {
        pending = p.app.admin().deliveries(None, Some("gone".into()), None).await.unwrap();
        if pending.iter().any(|d| d.attempts > 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let id = pending.first().expect("a delivery").id.clone();
    let page = b.get(&p.url("/admin/deliveries")).await.text().await.unwrap();
    assert!(page.contains(&id), "listed as pending: {page}");
    let r = b.post_form(&p.url("/admin/deliveries/retry"), &[("csrf_token", &token), ("id", &id)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let records = p
        .app
        .admin()
        .audit_query(admin_api::audit::AuditFilter {
            event: Some("admin.logout_delivery.retry".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].actor.as_deref(), Some(format!("console:{ADMIN}").as_str()));
}

#[tokio::test]
async fn every_act_on_a_professional_from_the_console_goes_through_the_admin_service() {
    let (s, admin_totp) = with_admin().await;
    let p = &s.p;
    let b = Browser::new();
    let token = csrf(&console_login(&b, p, ADMIN, &admin_totp).await);
    let act = |act: &'static str, target: String| {
        let token = token.clone();
        let b = &b;
        async move {
            let form = [("csrf_token", token.as_str()), ("nid", USER), ("act", act), ("target", target.as_str())];
            b.post_form(&p.url("/admin/act"), &form).await
        }
    };
    let page = || async { b.get(&format!("{}?nid={USER}", p.url("/admin/professional"))).await.text().await.unwrap() };

    // One session of two ends; the other stays.
    let (one, two) = (Browser::new(), Browser::new());
    login(&one, p, "rp", USER, &s.totp, 0).await;
    login(&two, p, "rp", USER, &s.totp, 1).await;
    let sessions = p.app.admin().sessions(USER).await.unwrap();
    assert_eq!(sessions.len(), 2);
    let r = act("end-session", sessions[0].sid.clone()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let done = b.get(&p.resolve(&location(r.headers()))).await.text().await.unwrap();
    assert!(done.contains("Session fermée"), "{done}");
    assert_eq!(p.app.admin().sessions(USER).await.unwrap().len(), 1);
    // A session of someone else is not found from this professional's page.
    let r = act("end-session", "not-theirs".into()).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let status = || async { p.app.admin().account(USER).await.unwrap().status };
    assert_eq!(act("block", String::new()).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(status().await, "blocked");
    assert!(p.app.admin().sessions(USER).await.unwrap().is_empty(), "blocking ends every session");
    assert_eq!(act("unblock", String::new()).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(status().await, "active");
    assert_eq!(act("block-pushes", String::new()).await.status(), StatusCode::SEE_OTHER);
    assert!(p.app.admin().push_block(USER).await.unwrap().blocked);
    assert!(page().await.contains("Débloquer les notifications"));
    assert_eq!(act("unblock-pushes", String::new()).await.status(), StatusCode::SEE_OTHER);
    assert!(!p.app.admin().push_block(USER).await.unwrap().blocked);
    // Someone guessing from one address locks that address out: the page says so, until when.
    assert_eq!(text_by_id(&page().await, "lockout"), "aucun");
    let guesser = Browser::at("127.0.0.9");
    for _ in 0..6 {
        let (url, html) = open_login(&guesser, p, "rp", &[]).await;
        submit(&guesser, &url, &html, USER, PASSWORD, "000000").await;
    }
    let shown = text_by_id(&page().await, "lockout");
    assert!(shown.starts_with("1 origine(s) verrouillée(s), 0 origine(s) ralentie(s), jusqu&#39;au "), "{shown}");
    assert_eq!(act("reset-lockout", String::new()).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(text_by_id(&page().await, "lockout"), "aucun", "lifted");

    // The activation code is on its own page, once.
    let r = act("activation-code", String::new()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let code = text_by_id(&html, "activation-code");
    assert_eq!(code.replace(' ', "").len(), 12, "{code}");
    assert!(!page().await.contains(&code));
    assert_eq!(act("withdraw-code", String::new()).await.status(), StatusCode::SEE_OTHER);

    let id = p.app.admin().authenticators(USER).await.unwrap()[0].id.clone();
    assert_eq!(act("remove-authenticator", id).await.status(), StatusCode::SEE_OTHER);
    assert!(p.app.admin().authenticators(USER).await.unwrap().is_empty());

    let events: Vec<String> = p
        .app
        .admin()
        .audit_query(admin_api::audit::AuditFilter { national_id: Some(USER.into()), ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.actor.as_deref() == Some(&format!("console:{ADMIN}")))
        .map(|r| r.event)
        .collect();
    for e in [
        "admin.session.revoke",
        "admin.account.block",
        "admin.account.unblock",
        "admin.push.block",
        "admin.push.unblock",
        "admin.lockout.reset",
        "admin.authenticator.activation_code",
        "admin.authenticator.activation_code_revoke",
        "admin.authenticator.remove",
    ] {
        assert!(events.iter().any(|x| x == e), "{e} in {events:?}");
    }
}

#[tokio::test]
async fn the_console_session_ends_after_fifteen_minutes_without_a_request() {
    let (s, admin_totp) = with_admin().await;
    let p = &s.p;
    let b = Browser::new();
    console_login(&b, p, ADMIN, &admin_totp).await;
    // Each request pushes the deadline back...
    for _ in 0..2 {
        p.clock.advance(890);
        assert_eq!(b.get(&p.url("/admin")).await.status(), StatusCode::OK);
    }
    // ...until fifteen minutes pass without one.
    p.clock.advance(901);
    let r = b.get(&p.url("/admin")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(r.headers()).contains("/authorize?"), "sign in again");
}

#[tokio::test]
async fn a_console_callback_carried_to_another_browser_signs_nobody_in() {
    let (s, admin_totp) = with_admin().await;
    let p = &s.p;
    let (mine, theirs) = (Browser::new(), Browser::new());
    let r = mine.get(&p.url("/admin")).await;
    let r = mine.get(&p.resolve(&location(r.headers()))).await;
    let login = p.resolve(&location(r.headers()));
    let html = mine.get(&login).await.text().await.unwrap();
    let r = submit(&mine, &login, &html, ADMIN, PASSWORD, &p.totp(&admin_totp, 0).unwrap()).await;
    let callback = p.resolve(&location(r.headers()));
    assert!(callback.contains("/admin/callback?"), "{callback}");
    // Someone else's browser gets the administrator's code and state: no console session.
    let r = theirs.get(&callback).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = theirs.get(&p.resolve(&location(r.headers()))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "sent to sign in, not into the console");
    assert!(location(r.headers()).contains("/authorize?"));
    // And the state is spent: the right browser cannot use it any more either.
    let r = mine.get(&callback).await;
    let r = mine.get(&p.resolve(&location(r.headers()))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
