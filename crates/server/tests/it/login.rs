//! The login page and its protections: messages in French and English, no account
//! enumeration, lockout, anti-forgery, browser binding, cancel, security headers.

use reqwest::StatusCode;
use server::testing::{Storage, TestProvider};

use crate::common::*;

#[tokio::test]
async fn login_page_is_french_by_default_and_english_on_request() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    assert!(html.contains("<html lang=\"fr\">"));
    // First the ways to sign in, each with its pictogram; then the chosen one's form.
    assert!(html.contains("Choisissez votre moyen de connexion") && html.contains("Code OTP"), "{html}");
    assert!(
        html.contains("Code par courriel") && html.contains("Validation sur téléphone") && html.contains("QR code")
    );
    assert_eq!(html.matches("<svg class=\"icon\" aria-hidden=\"true\"").count(), 4);
    let form = b.get(&format!("{url}?method=otp")).await.text().await.unwrap();
    assert!(form.contains("Identifiant") && form.contains("Mot de passe") && form.contains("Code OTP"));
    let (url, html) = open_login(&b, &s.p, "rp", &[("ui_locales", "en")]).await;
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("Choose how to sign in") && html.contains("Approval on the phone"));
    let form = b.get(&format!("{url}?method=push")).await.text().await.unwrap();
    assert!(form.contains("Identifier") && form.contains("Password") && form.contains("Approve on my phone"));
}

#[tokio::test]
async fn login_page_sends_protective_headers() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let r = b.get(&authorize_url(&s.p, "rp", &[])).await;
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let page = b.get(&s.p.resolve(&location(r.headers()))).await;
    let h = page.headers();
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn wrong_secrets_and_unknown_identifiers_get_the_same_answer() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let otp = s.p.totp(&s.totp, 0).unwrap();
    let mut bodies = Vec::new();
    for (user, password, code) in
        [(USER, "wrong password!", otp.as_str()), (USER, PASSWORD, "000000"), ("899799999999", PASSWORD, otp.as_str())]
    {
        let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
        let r = submit(&b, &url, &html, user, password, code).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body = r.text().await.unwrap();
        assert!(body.contains("Identifiant, mot de passe ou code OTP incorrect"), "French error shown");
        assert!(body.contains("role=\"alert\""));
        let path = url.trim_start_matches(&s.p.base_url);
        bodies.push(body.replace(&csrf(&body), "").replace(user, "").replace(USER, "").replace(path, ""));
    }
    for body in &bodies[1..] {
        assert_eq!(body, &bodies[0], "identical pages whatever was wrong");
    }
    // English on request.
    let (url, html) = open_login(&b, &s.p, "rp", &[("ui_locales", "en")]).await;
    let body = submit(&b, &url, &html, USER, "nope nope nope", "123456").await.text().await.unwrap();
    assert!(body.contains("Incorrect identifier, password or OTP code"));
}

#[tokio::test]
async fn a_totp_code_is_accepted_once() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let code = s.p.totp(&s.totp, 0).unwrap();
    let b1 = Browser::new();
    let (url, html) = open_login(&b1, &s.p, "rp", &[]).await;
    assert_eq!(submit(&b1, &url, &html, USER, PASSWORD, &code).await.status(), StatusCode::SEE_OTHER);
    let b2 = Browser::new();
    let (url, html) = open_login(&b2, &s.p, "rp", &[]).await;
    let r = submit(&b2, &url, &html, USER, PASSWORD, &code).await;
    assert_eq!(r.status(), StatusCode::OK, "the same code again is refused");
    assert!(r.text().await.unwrap().contains("incorrect"));
}

#[tokio::test]
async fn five_failures_lock_the_identifier_even_for_the_right_password_and_unknown_ones_alike() {
    let s = setup(
        TestProvider::start_with(server::testing::Storage::Embedded, |c| {
            c.login.base_lock = 1;
        })
        .await
        .unwrap(),
    )
    .await;
    let b = Browser::new();
    for user in [USER, "899711111111"] {
        for _ in 0..5 {
            let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
            let r = submit(&b, &url, &html, user, "wrong password!", "123456").await;
            assert!(matches!(r.status(), StatusCode::OK | StatusCode::TOO_MANY_REQUESTS));
        }
        let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
        let r = submit(&b, &url, &html, user, PASSWORD, &s.p.totp(&s.totp, 0).unwrap()).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{user} is locked");
        assert!(r.text().await.unwrap().contains("Trop de tentatives"));
    }
    // The lock is audited.
    let query = directory::AuditQuery { event: Some("lockout".into()), ..Default::default() };
    assert!(!s.p.directory().audit().query(query).await.unwrap().is_empty());
    // The first lock is short (1 s here): once it has passed, the right secrets work again.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let code = login(&b, &s.p, "rp", USER, &s.totp, 1).await;
    assert!(!code.is_empty());
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_or_browser_are_refused() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let (url, _) = open_login(&b, &s.p, "rp", &[]).await;
    let otp = s.p.totp(&s.totp, 0).unwrap();
    let forged = [
        ("username", USER),
        ("password", PASSWORD),
        ("otp", otp.as_str()),
        ("csrf_token", "forged"),
        ("action", "login"),
    ];
    assert_eq!(b.post_form(&url, &forged).await.status(), StatusCode::FORBIDDEN);
    // Another browser (no binding cookie) cannot use this login page at all.
    let other = Browser::new();
    assert_eq!(other.get(&url).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn cancel_returns_access_denied_to_the_client_and_the_page_is_then_spent() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let token = csrf(&html);
    let r = b.post_form(&url, &[("csrf_token", token.as_str()), ("action", "cancel")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(r.headers());
    assert_eq!(query_param(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&to, "state").as_deref(), Some("st4te"));
    assert_eq!(b.get(&url).await.status(), StatusCode::BAD_REQUEST, "the interaction is gone");
}

#[tokio::test]
async fn unknown_client_and_unregistered_redirect_get_an_error_page_not_a_redirect() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let r = b.get(&authorize_url(&s.p, "nobody", &[])).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    assert!(r.text().await.unwrap().contains("pas connu de Caducée"));
    let url = authorize_url(&s.p, "rp", &[]).replace("127.0.0.1%3A9%2Fcb", "evil.example%2Fcb");
    let r = b.get(&url).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn a_blocked_account_cannot_log_in_nor_use_its_session() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let code = login(&b, &s.p, "rp", USER, &s.totp, 0).await;
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK);
    let pro = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap();
    s.p.directory().professionals().set_status(&pro.id, directory::AccountStatus::Blocked).await.unwrap();
    assert_eq!(userinfo(&s.p, tokens["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED);
    let (status, body) = refresh(&s.p, "rp", &s.secret, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    // SSO does not sign a blocked account in silently.
    let r = b.get(&authorize_url(&s.p, "rp", &[("prompt", "none")])).await;
    assert_eq!(query_param(&location(r.headers()), "error").as_deref(), Some("login_required"));
}

/// Issue 13, item 16: every kind of answer, not only the pages, carries `nosniff` and
/// `no-referrer` (and `Strict-Transport-Security` when the issuer is https): pages, the JSON
/// API, the public documents, OAuth errors, the admin API's errors, unknown paths, assets.
#[tokio::test]
async fn item_16_every_answer_carries_the_security_headers() {
    let answers = |p: &TestProvider| {
        let p = p.url("");
        async move {
            let http = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let get = |path: &str| http.get(format!("{p}{path}")).send();
            let authorize = get("/authorize?client_id=rp&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&scope=openid&state=s&nonce=n").await.unwrap();
            let login_page = get(authorize.headers()["location"].to_str().unwrap()).await.unwrap();
            vec![
                ("discovery", get("/.well-known/openid-configuration").await.unwrap()),
                ("jwks", get("/jwks").await.unwrap()),
                ("authorize redirect", authorize),
                ("login page", login_page),
                ("error page", get("/authorize?client_id=nobody").await.unwrap()),
                (
                    "token error (JSON)",
                    http.post(format!("{p}/token")).form(&[("grant_type", "password")]).send().await.unwrap(),
                ),
                ("userinfo error", get("/userinfo").await.unwrap()),
                ("admin API error", get("/admin/v1/clients").await.unwrap()),
                ("unknown path", get("/no/such/path").await.unwrap()),
                ("stylesheet", get("/assets/caducee.css").await.unwrap()),
                ("script", get("/assets/login-wait.js").await.unwrap()),
                ("health", get("/readyz").await.unwrap()),
            ]
        }
    };
    let plain = setup(TestProvider::start().await.unwrap()).await;
    let mut statuses = Vec::new();
    for (what, r) in answers(&plain.p).await {
        let h = r.headers();
        assert_eq!(h.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{what}");
        assert_eq!(h.get("referrer-policy").map(|v| v.to_str().unwrap()), Some("no-referrer"), "{what}");
        assert!(h.get("strict-transport-security").is_none(), "{what}: no HSTS over an http issuer");
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 303, 200, 400, 400, 401, 401, 404, 200, 200, 200], "every kind of answer was seen");

    // With an https issuer (TLS ends at a proxy in front), HSTS too, on every answer.
    let secure = TestProvider::start_with(Storage::Embedded, |c| {
        c.issuer = c.issuer.replace("http://", "https://");
    })
    .await
    .unwrap();
    let secure = setup(secure).await;
    for (what, r) in answers(&secure.p).await {
        let h = r.headers();
        assert_eq!(h["strict-transport-security"], "max-age=31536000", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    }
}

/// The login as steps over one route: the password alone leaves the login open at «second
/// step» (kept in the session store, as any node would see it), the method chosen there asks
/// for its code, a wrong code keeps the password proven, the right one signs in; the browser
/// then opens on the way it used. A method out of turn is refused without a step taken.
#[tokio::test]
async fn a_login_takes_one_step_at_a_time_and_the_browser_remembers_the_way() {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let token = csrf(&html);

    let early = b.post_form(&url, &[("csrf_token", &token), ("method", "otp"), ("otp", "123456")]).await;
    assert_eq!(early.status(), StatusCode::BAD_REQUEST, "no code before the password");
    let odd = b.post_form(&url, &[("csrf_token", &token), ("method", "otp"), ("step", "jump")]).await;
    assert_eq!(odd.status(), StatusCode::BAD_REQUEST);

    let r = b
        .post_form(&url, &[("csrf_token", &token), ("method", "pwd"), ("username", USER), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let next = r.text().await.unwrap();
    assert!(next.contains("Deuxième étape") && next.contains("name=\"method\" value=\"otp\""), "{next}");
    assert!(!next.contains("name=\"password\""), "the password is not asked again");
    // Drawn again from the stored progress.
    assert!(b.get(&url).await.text().await.unwrap().contains("Deuxième étape"));

    let r = b.post_form(&url, &[("csrf_token", &token), ("method", "otp"), ("step", "begin")]).await;
    let prompt = r.text().await.unwrap();
    assert!(prompt.contains("name=\"otp\"") && !prompt.contains("name=\"password\""), "{prompt}");
    let r = b.post_form(&url, &[("csrf_token", &token), ("method", "otp"), ("otp", "000000")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let again = r.text().await.unwrap();
    assert!(again.contains("role=\"alert\"") && again.contains("name=\"otp\""), "the code is asked again: {again}");
    let otp = s.p.totp(&s.totp, 0).unwrap();
    let r = b.post_form(&url, &[("csrf_token", &token), ("method", "otp"), ("otp", &otp)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(r.headers()).starts_with(REDIRECT));
    let remembered: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with("caducee_method="))
        .collect();
    assert_eq!(remembered.len(), 1);
    assert!(remembered[0].starts_with("caducee_method=otp;") && remembered[0].contains("HttpOnly"), "{remembered:?}");

    // The next login opens on that way, with a link to the others.
    let (_, html) = open_login(&b, &s.p, "rp", &[("prompt", "login")]).await;
    assert!(html.contains("name=\"then\" value=\"otp\"") && html.contains("?choose=1"), "{html}");
    assert!(!html.contains("Choisissez votre moyen de connexion"));
}

/// `login.methods` says which ways the page offers, in which order; the others take no step.
#[tokio::test]
async fn the_configuration_names_the_ways_to_sign_in_and_their_order() {
    let mut c = server::Config::default();
    c.login.methods = vec!["qr".into(), "sms".into()];
    assert!(c.validate().unwrap_err().to_string().contains("unknown method \"sms\""));
    c.login.methods = vec!["otp".into(), "otp".into()];
    assert!(c.validate().unwrap_err().to_string().contains("twice"));
    c.login.methods = Vec::new();
    assert!(c.validate().is_err());

    let p = TestProvider::start_with(Storage::Embedded, |c| c.login.methods = vec!["qr".into(), "otp".into()])
        .await
        .unwrap();
    let s = setup(p).await;
    let b = Browser::new();
    let (url, html) = open_login(&b, &s.p, "rp", &[]).await;
    let qr = html.find("value=\"qr\"").expect("QR code offered");
    let otp = html.find("method=otp").expect("Code OTP offered");
    assert!(qr < otp, "in the configured order");
    assert!(!html.contains("method=mail") && !html.contains("method=push"), "{html}");
    let token = csrf(&html);
    let r = b
        .post_form(&url, &[("csrf_token", &token), ("username", USER), ("password", PASSWORD), ("action", "send_push")])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "the password step is taken...");
    assert!(r.text().await.unwrap().contains("Deuxième étape"), "...but no push is sent: push is off");
    assert!(
        s.p.directory()
            .audit()
            .query(directory::AuditQuery::default())
            .await
            .unwrap()
            .iter()
            .all(|r| r.event != "push_sent")
    );
}
