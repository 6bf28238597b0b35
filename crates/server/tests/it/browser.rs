//! The login page in a real browser (Debian's headless Chromium through ChromeDriver): each OTP
//! mode and the push approval sign a professional in, wrong codes and lockouts show their messages in French and
//! English, and axe-core finds no accessibility violation. A failing test saves a screenshot
//! under target/browser-screenshots/.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use authn_methods::otp::{HashAlgorithm, hotp};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt as _;
use server::testing::{Storage, TestProvider};
use test_support::smtp::SmtpSink;
use test_support::webdriver::{ChromeDriver, axe_script, screenshot_dir};

use crate::common::{PASSWORD, USER};

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A relying party on loopback: where the browser lands after signing in.
pub(crate) async fn relying_party() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/cb",
        axum::routing::get(|| async {
            axum::response::Html("<!DOCTYPE html><html lang=\"fr\"><title>RP</title><p id=\"rp\">connecté</p></html>")
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/cb")
}

/// Runs `body` with a fresh browser; on failure, saves a screenshot named after the test.
pub(crate) async fn with_browser<F, Fut>(name: &str, body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let driver = ChromeDriver::start().expect("chromium and chromedriver (see .ci/run)");
    let mut builder = ClientBuilder::rustls().expect("a TLS configuration");
    let client = builder.capabilities(driver.capabilities()).connect(&driver.url()).await.expect("a browser session");
    let outcome = AssertUnwindSafe(body(client.clone())).catch_unwind().await;
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(panic) => Some(panic.downcast_ref::<String>().cloned().unwrap_or_else(|| "panic".into())),
    };
    if let Some(message) = failure {
        let dir = screenshot_dir(&workspace());
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}.png"));
        if let Ok(png) = client.screenshot().await {
            let _ = std::fs::write(&path, png);
        }
        let _ = client.close().await;
        panic!("{message}\n(screenshot: {})", path.display());
    }
    let _ = client.close().await;
}

pub(crate) struct Site {
    pub(crate) p: TestProvider,
    pub(crate) rp: String,
    pub(crate) totp: Vec<u8>,
}

pub(crate) async fn site(storage: Storage, tune: impl FnOnce(&mut server::Config)) -> Site {
    let p = TestProvider::start_with(storage, tune).await.unwrap();
    let (_, totp) = p.add_professional(USER, PASSWORD).await.unwrap();
    let rp = relying_party().await;
    let mut client = TestProvider::confidential_client("rp", &rp);
    client.name = "Logiciel de test".into();
    p.add_client(client).await.unwrap();
    Site { p, rp, totp }
}

pub(crate) fn authorize(s: &Site, extra: &str) -> String {
    format!(
        "{}/authorize?client_id=rp&response_type=code&scope=openid&state=st&redirect_uri={}{extra}",
        s.p.base_url,
        url::form_urlencoded::byte_serialize(s.rp.as_bytes()).collect::<String>()
    )
}

pub(crate) async fn fill(c: &Client, id: &str, value: &str) -> anyhow::Result<()> {
    let field = c.find(Locator::Id(id)).await?;
    field.clear().await?;
    field.send_keys(value).await?;
    Ok(())
}

pub(crate) async fn click(c: &Client, action: &str) -> anyhow::Result<()> {
    c.find(Locator::Css(&format!("button[value=\"{action}\"]"))).await?.click().await?;
    Ok(())
}

/// Clicks a submit button and waits until the next page has replaced the current one, so that
/// nothing found afterwards belongs to the page being left (whose alert looks the same).
pub(crate) async fn submit(c: &Client, action: &str) -> anyhow::Result<()> {
    let old = c.find(Locator::Css("html")).await?;
    click(c, action).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while old.tag_name().await.is_ok() {
        ensure!(std::time::Instant::now() < deadline, "the page did not change after «{action}»");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Chooses a way to sign in on the login page: its pictogram in the list, or straight to it when
/// the page already shows another (the browser remembers the last one used).
pub(crate) async fn choose(c: &Client, method: &str) -> anyhow::Result<()> {
    let old = c.find(Locator::Css("html")).await?;
    match c.find(Locator::Css(&format!("a[href*=\"method={method}\"]"))).await {
        Ok(link) => link.click().await?,
        Err(_) => {
            let mut url = c.current_url().await?;
            url.set_query(Some(&format!("method={method}")));
            c.goto(url.as_str()).await?;
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while old.tag_name().await.is_ok() {
        ensure!(std::time::Instant::now() < deadline, "the page did not change after choosing {method}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

pub(crate) async fn text_of(c: &Client, css: &str) -> anyhow::Result<String> {
    Ok(c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await?.text().await?)
}

/// Waits until the browser reaches the relying party with a code.
pub(crate) async fn landed(c: &Client, rp: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let url = c.current_url().await?;
        if url.as_str().starts_with(rp) {
            ensure!(url.query_pairs().any(|(k, _)| k == "code"), "no code in {url}");
            return Ok(());
        }
        ensure!(std::time::Instant::now() < deadline, "still at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// axe-core on the current page: no violation of WCAG 2 A/AA rules.
pub(crate) async fn accessible(c: &Client) -> anyhow::Result<()> {
    let axe = axe_script(&workspace()).context("axe-core")?;
    c.execute(&axe, vec![]).await?;
    let violations = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] })
                .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' (' + v.nodes.length + ')')))
                .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await?;
    let list = violations.as_array().cloned().unwrap_or_default();
    ensure!(list.is_empty(), "accessibility violations: {list:?}");
    Ok(())
}

#[tokio::test]
async fn totp_app_login_wrong_code_messages_and_accessibility() {
    let s = site(Storage::Embedded, |_| {}).await;
    with_browser("totp_app_login", |c| async move {
        c.goto(&authorize(&s, "")).await?;
        let title = text_of(&c, "h1").await?;
        ensure!(title.contains("Logiciel de test"), "{title}");
        let lang = c.find(Locator::Css("html")).await?.attr("lang").await?;
        ensure!(lang.as_deref() == Some("fr"), "{lang:?}");
        let choice = text_of(&c, "h2").await?;
        ensure!(choice.contains("Choisissez votre moyen de connexion"), "{choice}");
        accessible(&c).await.context("the list of ways to sign in")?;
        choose(&c, "otp").await?;
        accessible(&c).await.context("the code form")?;

        fill(&c, "username", USER).await?;
        fill(&c, "password", PASSWORD).await?;
        fill(&c, "otp", "000000").await?;
        click(&c, "submit").await?;
        let alert = text_of(&c, "[role=alert]").await?;
        ensure!(alert.contains("Identifiant, mot de passe ou code OTP incorrect"), "{alert}");
        accessible(&c).await.context("with the error shown")?;

        fill(&c, "password", PASSWORD).await?;
        fill(&c, "otp", &s.p.totp(&s.totp, 0)?).await?;
        click(&c, "submit").await?;
        landed(&c, &s.rp).await?;

        // The same page in English.
        c.goto(&authorize(&s, "&prompt=login&ui_locales=en")).await?;
        choose(&c, "otp").await?;
        fill(&c, "username", USER).await?;
        fill(&c, "password", "wrong password!").await?;
        fill(&c, "otp", "123456").await?;
        click(&c, "submit").await?;
        let alert = text_of(&c, "[role=alert]").await?;
        ensure!(alert.contains("Incorrect identifier, password or OTP code"), "{alert}");
        let lang = c.find(Locator::Css("html")).await?.attr("lang").await?;
        ensure!(lang.as_deref() == Some("en"), "{lang:?}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn mail_otp_login_in_the_browser() {
    let sink = SmtpSink::start().unwrap();
    let port = sink.port();
    let s = site(Storage::Embedded, move |c| {
        c.mail.smtp_host = "127.0.0.1".into();
        c.mail.smtp_port = port;
        c.mail.smtp_security = authn_methods::mailer::SmtpSecurity::None;
    })
    .await;
    with_browser("mail_otp_login", |c| async move {
        c.goto(&authorize(&s, "")).await?;
        choose(&c, "mail").await?;
        fill(&c, "username", USER).await?;
        fill(&c, "password", PASSWORD).await?;
        submit(&c, "submit").await?;
        let notice = text_of(&c, "[role=status]").await?;
        ensure!(notice.contains("Le courriel est parti"), "{notice}");
        let mails = sink.wait_for(1, Duration::from_secs(10));
        ensure!(mails.len() == 1, "one mail");
        ensure!(
            mails[0].subject().starts_with("[Authentification Caducée] Votre OTP valable jusqu'à"),
            "{}",
            mails[0].subject()
        );
        let text = mails[0].text();
        let marker = "pour vous authentifier : ";
        let at = text.find(marker).context("the code in the mail")? + marker.len();
        let code = text[at..at + 6].to_owned();
        // The password is proven: only the code is typed now.
        accessible(&c).await.context("the code page")?;
        ensure!(c.find(Locator::Id("password")).await.is_err(), "no password asked twice");
        fill(&c, "otp", &code).await?;
        click(&c, "submit").await?;
        landed(&c, &s.rp).await
    })
    .await;
}

#[tokio::test]
async fn hardware_token_login_in_the_browser() {
    let s = site(Storage::Embedded, |_| {}).await;
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../authn-methods/tests/pskc/rfc6030-figure3.xml");
    let keys = authn_methods::pskc::parse(
        &std::fs::read_to_string(fixture).unwrap(),
        &authn_methods::pskc::ContainerKey::None,
    )
    .unwrap();
    authn_methods::hardware::import(s.p.directory(), keys).await.unwrap();
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    authn_methods::hardware::assign(s.p.directory(), "987654321", &subject).await.unwrap();
    with_browser("hardware_token_login", |c| async move {
        c.goto(&authorize(&s, "")).await?;
        choose(&c, "otp").await?;
        fill(&c, "username", USER).await?;
        fill(&c, "password", PASSWORD).await?;
        // The token was pressed twice before: its third code is within the look-ahead window.
        fill(&c, "otp", &hotp(b"12345678901234567890", 2, 8, HashAlgorithm::Sha1)).await?;
        click(&c, "submit").await?;
        landed(&c, &s.rp).await
    })
    .await;
}

#[tokio::test]
async fn lockout_shows_its_page() {
    let s = site(Storage::Embedded, |_| {}).await;
    with_browser("lockout", |c| async move {
        c.goto(&authorize(&s, "")).await?;
        choose(&c, "otp").await?;
        for _ in 0..5 {
            fill(&c, "username", USER).await?;
            fill(&c, "password", "wrong password!").await?;
            fill(&c, "otp", "123456").await?;
            submit(&c, "submit").await?;
            text_of(&c, "[role=alert]").await?;
        }
        let alert = text_of(&c, "[role=alert]").await?;
        ensure!(alert.contains("Trop de tentatives"), "{alert}");
        accessible(&c).await
    })
    .await;
}

/// Front-Channel Logout in the browser: after «Me déconnecter», the logged-out page loads the
/// relying party's logout page in an iframe (the page's security policy lets exactly that origin
/// in), which receives `iss` and `sid`; the page stays accessible.
#[tokio::test]
async fn front_channel_logout_reaches_the_relying_party() {
    let p = TestProvider::start().await.unwrap();
    let (_, totp) = p.add_professional(USER, PASSWORD).await.unwrap();
    let hits: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let recorded = hits.clone();
    let app = axum::Router::new()
        .route(
            "/cb",
            axum::routing::get(|| async { axum::response::Html("<!DOCTYPE html><title>RP</title><p>ok</p>") }),
        )
        .route(
            "/fc-logout",
            axum::routing::get(move |uri: axum::http::Uri| async move {
                recorded.lock().unwrap().push(uri.query().unwrap_or_default().to_owned());
                axum::response::Html("<!DOCTYPE html><title>RP logout</title>")
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let rp = format!("{origin}/cb");
    let mut client = TestProvider::confidential_client("rp", &rp);
    client.frontchannel_logout_uri = Some(format!("{origin}/fc-logout"));
    client.frontchannel_logout_session_required = true;
    p.add_client(client).await.unwrap();
    let s = Site { p, rp, totp };

    with_browser("front_channel_logout", |c| async move {
        c.goto(&authorize(&s, "")).await?;
        choose(&c, "otp").await?;
        fill(&c, "username", USER).await?;
        fill(&c, "password", PASSWORD).await?;
        fill(&c, "otp", &s.p.totp(&s.totp, 0)?).await?;
        click(&c, "submit").await?;
        landed(&c, &s.rp).await?;

        // A logout request without an ID token: the person confirms.
        c.goto(&format!("{}/end_session?client_id=rp", s.p.base_url)).await?;
        click(&c, "logout").await?;
        let notice = text_of(&c, ".notice").await?;
        ensure!(notice.contains("Les services où vous étiez connecté sont prévenus"), "{notice}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let query = loop {
            if let Some(q) = hits.lock().unwrap().first().cloned() {
                break q;
            }
            ensure!(std::time::Instant::now() < deadline, "the relying party's logout page was never loaded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        ensure!(params.get("iss") == Some(&s.p.base_url), "{query}");
        ensure!(params.get("sid").is_some_and(|sid| sid.len() >= 16), "{query}");
        accessible(&c).await.context("the logged-out page with its frame")?;
        Ok(())
    })
    .await;
}

/// An activation code typed in the browser as printed, with its spaces, signs in (the form is
/// checked by the server, `novalidate`; the field's pattern allows spaces all the same).
#[tokio::test]
async fn an_activation_code_with_spaces_signs_in_from_the_browser() {
    let s = site(Storage::Embedded, |_| {}).await;
    let operator = admin_api::Actor { id: "operator:test".into(), source_ip: None };
    let issued = s.p.app.admin().issue_activation_code(&operator, USER).await.unwrap();
    let code = oidc_core::secret::ExposeSecret::expose_secret(&issued.code).to_owned();
    assert!(code.contains(' '));
    with_browser("activation_code", |c| async move {
        c.goto(&authorize(&s, "")).await?;
        choose(&c, "otp").await?;
        fill(&c, "username", USER).await?;
        fill(&c, "password", PASSWORD).await?;
        fill(&c, "otp", &code).await?;
        click(&c, "submit").await?;
        landed(&c, &s.rp).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_push_approval_moves_the_page_on_by_itself_without_a_click() {
    let s = site(Storage::Embedded, |_| {}).await;
    let app = authenticator_for(&s).await;
    with_browser("push_login", |c| async move {
        c.goto(&authorize(&s, "")).await?;
        choose(&c, "push").await?;
        fill(&c, "username", USER).await?;
        fill(&c, "password", PASSWORD).await?;
        submit(&c, "submit").await?;
        let number = text_of(&c, ".push-number span[aria-hidden=true]").await?;
        ensure!(number.len() == 2, "the number to type: {number:?}");
        accessible(&c).await.context("the waiting page")?;
        // The phone: the real caducee-authenticator.
        let pending = app.run(&["pushes"]).await;
        let id = pending.json["challenges"][0]["id"].as_str().context("a pending push")?.to_owned();
        let answer = app.run(&["approve", &id, "--number", &number]).await;
        ensure!(answer.json["outcome"] == "approved", "{answer:?}");
        // No click: the page asks, then submits itself, and reaches the relying party.
        landed(&c, &s.rp).await
    })
    .await;
}

/// The real `caducee-authenticator`, enrolled for the site's professional.
async fn authenticator_for(s: &Site) -> crate::authenticator::App {
    let subject = s.p.directory().professionals().get_by_national_id(USER).await.unwrap().unwrap().subject;
    let push = s.p.app.push.clone();
    let enrolment = push.start_enrolment(&subject, "Téléphone", s.p.clock.now()).await.unwrap().started().unwrap();
    let app = crate::authenticator::App::new();
    let r = app.run(&["enrol", &enrolment.uri]).await;
    assert_eq!(r.code, 0, "{r:?}");
    app
}

/// The QR code in a real browser with the real `caducee-authenticator` as the phone: the list
/// starts it in one click, the countdown runs, the page moves on by itself once the phone
/// approved, and clicking the code opens the offline form, which signs in with the app's
/// identifier and code; every page is accessible.
#[tokio::test]
async fn a_qr_code_login_continues_by_itself_and_its_offline_form_signs_in() {
    let s = site(Storage::Embedded, |_| {}).await;
    let app = authenticator_for(&s).await;
    with_browser("qr_login", |c| async move {
        c.goto(&authorize(&s, "")).await?;
        submit(&c, "qr").await?;
        let countdown = text_of(&c, "#countdown").await?;
        ensure!(countdown.starts_with("Temps restant"), "the countdown runs: {countdown:?}");
        accessible(&c).await.context("the QR code page")?;
        // The phone scans what the page shows (the link carries the QR code's payload).
        let payload = c.find(Locator::Css("a.app-link")).await?.attr("href").await?.context("the app link")?;
        let scan = app.run(&["scan", &payload, "--approve"]).await;
        ensure!(scan.json["outcome"] == "approved", "{scan:?}");
        // No click: the page asks, then submits itself.
        landed(&c, &s.rp).await?;

        // Offline: a click on the QR code opens the form for the app's identifier and code.
        c.goto(&authorize(&s, "&prompt=login")).await?;
        if c.find(Locator::Css("button[value=\"qr\"]")).await.is_err() {
            choose_list(&c).await?;
        }
        submit(&c, "qr").await?;
        let payload = c.find(Locator::Css("a.app-link")).await?.attr("href").await?.context("the app link")?;
        let old = c.find(Locator::Css("html")).await?;
        c.find(Locator::Css("p.qr a")).await?.click().await?;
        while old.tag_name().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let title = text_of(&c, "h2").await?;
        ensure!(title.contains("Connexion hors réseau"), "{title}");
        accessible(&c).await.context("the offline form")?;
        let offline = app.run(&["offline-code", &payload]).await;
        let id = offline.json["id"].as_str().context("an identifier")?.to_owned();
        let code = offline.json["code"].as_str().context("a code")?.to_owned();
        fill(&c, "qr_id", &id).await?;
        fill(&c, "qr_code", &code).await?;
        click(&c, "submit").await?;
        landed(&c, &s.rp).await
    })
    .await;
}

/// The list of ways to sign in, from a page that opened on the one used last.
pub(crate) async fn choose_list(c: &Client) -> anyhow::Result<()> {
    let old = c.find(Locator::Css("html")).await?;
    c.find(Locator::Css("a.other")).await?.click().await?;
    while old.tag_name().await.is_ok() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
