//! The demo relying party in a real browser (headless Chromium): a professional signs in
//! through it (the login pages, a password and a TOTP code), sees their claims and userinfo,
//! signs out, and the relying party receives its back-channel logout; axe-core finds nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use demo::{CLIENT_ID, DemoRp, RpSettings};
use fantoccini::{Client, ClientBuilder, Locator};
use server::testing::TestProvider;
use test_support::webdriver::{ChromeDriver, axe_script};

const USER: &str = "899700000001";
const PASSWORD: &str = "correct horse battery";

async fn wait_for(c: &Client, css: &str) -> anyhow::Result<String> {
    let found = c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await;
    let at = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
    Ok(found.with_context(|| format!("{css} at {at}"))?.text().await?)
}

/// Waits until the browser is at a URL starting with `prefix`.
async fn at(c: &Client, prefix: &str) -> anyhow::Result<url::Url> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let url = c.current_url().await?;
        if url.as_str().starts_with(prefix) {
            return Ok(url);
        }
        ensure!(std::time::Instant::now() < deadline, "still at {url}, not {prefix}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn accessible(c: &Client) -> anyhow::Result<()> {
    let workspace = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    c.execute(&axe_script(&workspace)?, vec![]).await?;
    let violations = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] })
                .then(r => done(r.violations.map(v => v.id + ': ' + v.help)))
                .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await?;
    ensure!(violations.as_array().is_none_or(|v| v.is_empty()), "accessibility violations: {violations}");
    Ok(())
}

async fn flow(c: &Client, p: &TestProvider, totp: &[u8], rp_base: &str, rp: &DemoRp) -> anyhow::Result<()> {
    c.goto(&format!("{rp_base}/")).await?;
    accessible(c).await.context("the signed-out page")?;
    c.find(Locator::Id("login")).await?.click().await?;
    // The login pages: straight to the code form.
    let mut url = at(c, &format!("{}/", p.base_url)).await?;
    url.set_query(Some("method=otp"));
    c.goto(url.as_str()).await?;
    wait_for(c, "#otp").await?;
    for (id, value) in [("username", USER.to_owned()), ("password", PASSWORD.to_owned()), ("otp", p.totp(totp, 0)?)] {
        c.find(Locator::Id(id)).await?.send_keys(&value).await?;
    }
    c.find(Locator::Css("button[value=submit]")).await?.click().await?;
    at(c, &format!("{rp_base}/")).await?;

    let welcome = wait_for(c, "#welcome").await?;
    ensure!(welcome.contains("Jeanne"), "{welcome}");
    let claims = wait_for(c, "#claims").await?;
    ensure!(claims.contains("\"sid\"") && claims.contains(&p.base_url), "{claims}");
    let userinfo = wait_for(c, "#userinfo").await?;
    ensure!(userinfo.contains(USER), "{userinfo}");
    accessible(c).await.context("the signed-in page")?;

    c.find(Locator::Id("logout")).await?.click().await?;
    at(c, &format!("{rp_base}/")).await?;
    wait_for(c, "#login").await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rp.logouts_received() == 0 {
        ensure!(std::time::Instant::now() < deadline, "no back-channel logout received");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.refresh().await?;
    wait_for(c, "#logouts").await?;
    Ok(())
}

#[tokio::test]
async fn a_browser_signs_in_and_out_through_the_demo_relying_party() {
    let p = TestProvider::start().await.unwrap();
    let (_, totp) = p.add_professional(USER, PASSWORD).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rp_base = format!("http://{}", listener.local_addr().unwrap());
    let secret = demo::register(p.directory(), &rp_base).await.unwrap();
    let settings = RpSettings {
        issuer: p.base_url.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: secret,
        base_url: rp_base.clone(),
    };
    let rp = DemoRp::discover(settings).await.unwrap();
    let serving = rp.clone();
    tokio::spawn(async move { axum::serve(listener, serving.router()).await });

    let driver = ChromeDriver::start().expect("chromium and chromedriver");
    let client = ClientBuilder::rustls()
        .expect("a TLS configuration")
        .capabilities(driver.capabilities())
        .connect(&driver.url())
        .await
        .expect("a browser session");
    let outcome = flow(&client, &p, &totp, &rp_base, &rp).await;
    let _ = client.close().await;
    outcome.unwrap();
}
