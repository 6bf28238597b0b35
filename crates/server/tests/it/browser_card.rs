//! The CPS card in a real browser: headless Chromium on the login page, whose script hands the
//! challenge and the PIN to the real card agent, which talks to a virtual CPS3 through a private
//! pcscd (the real PC/SC stack). A wrong PIN is counted by the card and told with the tries
//! left; the right one signs the professional in to the relying party.

use anyhow::{Context as _, ensure};
use fantoccini::{Client, Locator};
use server::testing::Storage;
use test_support::card_pki::{CardFlaw, TEST_POLICY_OID, TestPki};
use time::Duration as Span;

use crate::browser::{accessible, authorize, choose_list, fill, landed, site, submit, text_of, with_browser};
use crate::card::{CARD_PIN, free_port, workstation};
use crate::common::USER;

/// Clicks «Se connecter avec la carte» and waits for what the agent's answer leads to: the
/// page's alert, or another page.
async fn sign_with_card(c: &Client) -> anyhow::Result<()> {
    c.find(Locator::Id("card-sign-in")).await?.click().await?;
    Ok(())
}

#[tokio::test]
async fn a_professional_signs_in_with_a_virtual_cps_card_in_the_browser() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let root = write("root.pem", pki.root_pem().as_bytes());
    let people = write("people.pem", pki.intermediate_pem().as_bytes());
    let root_crl = write("root.crl", &pki.root_crl(false));
    let people_crl = write("people.crl", &pki.people_crl(&[], Span::hours(1), Span::days(1), 1));
    let agent_port = free_port();
    let s = site(Storage::Embedded, |c| {
        c.login.methods = vec!["otp".into(), "card".into()];
        c.card.agent_url = format!("http://127.0.0.1:{agent_port}");
        c.card.trust_anchors = vec![root];
        c.card.intermediates = vec![people];
        c.card.crls = vec![root_crl.display().to_string(), people_crl.display().to_string()];
        c.card.required_policies = vec![TEST_POLICY_OID.into()];
    })
    .await;
    let card = pki.issue(USER, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let origin = s.p.base_url.trim_end_matches('/').to_owned();
    let station = workstation(&card, pki.intermediate_der(), agent_port, &origin);

    with_browser("card_sign_in", |c| async move {
        c.goto(&authorize(&s, "")).await?;
        if c.find(Locator::Css("button[value=\"card\"]")).await.is_err() {
            choose_list(&c).await?;
        }
        submit(&c, "card").await?;
        let title = text_of(&c, "h2").await?;
        ensure!(title.contains("Connexion par carte CPS"), "{title}");
        accessible(&c).await.context("the card page")?;

        // A wrong PIN: the card counts it; the page says so, with the tries left, and stays.
        fill(&c, "card-pin", "0000").await?;
        sign_with_card(&c).await?;
        let alert = text_of(&c, "#card-error:not([hidden])").await?;
        ensure!(alert.contains("Code porteur incorrect") && alert.contains("2 essais"), "{alert}");
        ensure!(station.card.status().pin_tries_left == 2, "the card counted the wrong PIN");
        let pin = c.find(Locator::Id("card-pin")).await?;
        ensure!(pin.prop("value").await?.unwrap_or_default().is_empty(), "the PIN field is cleared");

        // The right PIN: the card signs, the page posts the answer, the relying party gets a code.
        fill(&c, "card-pin", CARD_PIN).await?;
        sign_with_card(&c).await?;
        landed(&c, &s.rp).await?;
        ensure!(station.card.status().pin_tries_left == 3, "a right PIN restores the tries");
        Ok(())
    })
    .await;
}
