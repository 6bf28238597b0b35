//! Passkeys in a real browser: headless Chromium with the WebDriver virtual authenticator (a
//! CTAP2 platform authenticator that keeps resident keys and verifies its user), driven through
//! the same client as the other page tests. The professional enrols a passkey from the wallet,
//! signs into a relying party with it, removes it, and the next sign-in with it is refused.
//!
//! WebAuthn binds credentials to the RP ID, the issuer's host: pages are loaded as `localhost`,
//! which browsers treat as a secure origin over plain HTTP.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use server::testing::Storage;

use crate::browser::{
    Site, accessible, authorize, choose, choose_list, fill, landed, site, submit, text_of, with_browser,
};
use crate::common::{PASSWORD, USER};

/// `POST /session/{id}/webauthn/authenticator` (W3C WebAuthn Level 2, §11.3): fantoccini has no
/// method for it, so the command is spelled here.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/webauthn/authenticator", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// `POST /session/{id}/webauthn/authenticator/{authenticatorId}/uv`: whether the virtual
/// authenticator's user passes its verification (a wrong PIN, a finger it does not know).
#[derive(Debug)]
struct SetUserVerified {
    authenticator: String,
    verified: bool,
}

impl WebDriverCompatibleCommand for SetUserVerified {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/webauthn/authenticator/{}/uv", self.authenticator))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(serde_json::json!({ "isUserVerified": self.verified }).to_string()))
    }
}

/// A provider whose issuer is `localhost` (the RP ID), offering the code and the passkey.
async fn passkey_site() -> Site {
    site(Storage::Embedded, |c| {
        c.issuer = format!("http://localhost:{}", c.listen.port());
        c.login.methods = vec!["otp".into(), "webauthn".into()];
        // A refused ceremony must not keep the browser waiting for long.
        c.webauthn.timeout = 10;
    })
    .await
}

/// `url` as the browser must load it: on `localhost`.
fn local(url: &str) -> String {
    url.replacen("://127.0.0.1:", "://localhost:", 1)
}

/// Clicks the passkey button and waits for the next page (the script posts the form).
async fn use_passkey(c: &Client) -> anyhow::Result<()> {
    let old = c.find(Locator::Css("html")).await?;
    c.find(Locator::Id("passkey-start")).await?.click().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while old.tag_name().await.is_ok() {
        if let Ok(alert) = c.find(Locator::Css("#passkey-error:not([hidden])")).await {
            anyhow::bail!("the page refused: {}", alert.text().await.unwrap_or_default());
        }
        ensure!(std::time::Instant::now() < deadline, "the passkey page did not move on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// From a login page, the list of ways to sign in, then the passkey.
async fn start_passkey_login(c: &Client) -> anyhow::Result<()> {
    if c.find(Locator::Css("button[value=\"webauthn\"]")).await.is_err() {
        choose_list(c).await?;
    }
    let old = c.find(Locator::Css("html")).await?;
    c.find(Locator::Css("button[value=\"webauthn\"]")).await?.click().await?;
    while old.tag_name().await.is_ok() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_passkey_enrolled_in_the_wallet_signs_in_until_it_is_removed() {
    let s = passkey_site().await;
    with_browser("passkey_enrol_sign_in_remove", |c| async move {
        let added = c.issue_cmd(AddVirtualAuthenticator).await.context("a virtual authenticator")?;
        let authenticator = added.as_str().context("the authenticator's id")?.to_owned();

        // The wallet, after a strong sign-in (password and code).
        c.goto(&local(&s.p.url("/wallet"))).await?;
        choose(&c, "otp").await?;
        fill(&c, "username", USER).await?;
        fill(&c, "password", PASSWORD).await?;
        fill(&c, "otp", &s.p.totp(&s.totp, 0)?).await?;
        submit(&c, "submit").await?;
        let heading = text_of(&c, "#passkeys").await?;
        ensure!(heading.contains("Clés d'accès"), "{heading}");
        accessible(&c).await.context("the wallet with its passkeys panel")?;

        // Enrolment: named, then the browser's ceremony.
        fill(&c, "passkey-name", "Mon ordinateur").await?;
        let old = c.find(Locator::Css("html")).await?;
        c.find(Locator::Id("passkey-add")).await?.click().await?;
        while old.tag_name().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        accessible(&c).await.context("the enrolment page")?;
        use_passkey(&c).await.context("enrolment")?;
        let notice = text_of(&c, "[role=status]").await?;
        ensure!(notice.contains("Clé enregistrée"), "{notice}");
        let subject = s.p.directory().professionals().get_by_national_id(USER).await?.context("the account")?.subject;
        let keys: Vec<_> =
            s.p.directory()
                .authenticators()
                .list_for_subject(&subject)
                .await?
                .into_iter()
                .filter(|a| a.kind == "webauthn")
                .collect();
        ensure!(keys.len() == 1 && keys[0].label == "Mon ordinateur", "{keys:?}");

        // A relying party, with the passkey alone: no identifier typed.
        c.goto(&local(&authorize(&s, "&prompt=login"))).await?;
        start_passkey_login(&c).await?;
        accessible(&c).await.context("the passkey prompt")?;
        use_passkey(&c).await.context("sign-in")?;
        landed(&c, &s.rp).await?;
        let used = s.p.directory().authenticators().get(&keys[0].id).await?.context("the key")?;
        ensure!(used.last_used_at.is_some(), "the key's use is recorded");

        // The authenticator fails its user's verification: the page says the key did not answer,
        // and offers to start again.
        c.issue_cmd(SetUserVerified { authenticator: authenticator.clone(), verified: false }).await?;
        c.goto(&local(&authorize(&s, "&prompt=login"))).await?;
        start_passkey_login(&c).await?;
        c.find(Locator::Id("passkey-start")).await?.click().await?;
        let refused = text_of(&c, "#passkey-error:not([hidden])").await?;
        ensure!(refused.contains("La clé n'a pas répondu"), "{refused}");
        c.issue_cmd(SetUserVerified { authenticator, verified: true }).await?;

        // Removed from the wallet...
        c.goto(&local(&s.p.url("/wallet"))).await?;
        let remove = c.wait().at_most(Duration::from_secs(10));
        remove.for_element(Locator::Css("button[aria-label=\"Retirer : Mon ordinateur\"]")).await?;
        submit_css(&c, "button[aria-label=\"Retirer : Mon ordinateur\"]").await?;
        let notice = text_of(&c, "[role=status]").await?;
        ensure!(!notice.is_empty(), "a removal notice");

        // ...the same passkey no longer signs in, and the page says so.
        c.goto(&local(&authorize(&s, "&prompt=login"))).await?;
        start_passkey_login(&c).await?;
        let old = c.find(Locator::Css("html")).await?;
        c.find(Locator::Id("passkey-start")).await?.click().await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while old.tag_name().await.is_ok() {
            ensure!(std::time::Instant::now() < deadline, "the answer was not posted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let alert = text_of(&c, "[role=alert]").await?;
        ensure!(alert.contains("Cette clé n'a pas permis de vous connecter"), "{alert}");
        // Its ceremony spent, the page offers the ways to sign in again, the passkey among them.
        ensure!(c.find(Locator::Css("button[value=\"webauthn\"]")).await.is_ok(), "the passkey is offered again");
        ensure!(!c.current_url().await?.as_str().starts_with(&s.rp), "no code for the relying party");
        Ok(())
    })
    .await;
}

/// Clicks the submit button found by `css` and waits for the next page.
async fn submit_css(c: &Client, css: &str) -> anyhow::Result<()> {
    let old = c.find(Locator::Css("html")).await?;
    c.find(Locator::Css(css)).await?.click().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while old.tag_name().await.is_ok() {
        ensure!(std::time::Instant::now() < deadline, "the page did not change");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
