//! The administrators' console (`/admin`) in a real browser: an administrator signs in through
//! the login pages, finds a professional signed in to two relying parties, ends every one of
//! their sessions, and both relying parties get their logout tokens; a professional without
//! the admin role is refused, and so is a form without its anti-forgery token; axe-core finds
//! nothing on the way.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use fantoccini::{Client, Locator};
use server::testing::TestProvider;

use crate::backchannel::{signed_in_to_two, wait_for};
use crate::browser::{accessible, choose, fill, submit, text_of, with_browser};
use crate::common::*;

pub(crate) const ADMIN: &str = "899700000009";

/// A provider with the setup's professional and an administrator; returns the latter's TOTP secret.
pub(crate) async fn with_admin() -> (Setup, Vec<u8>) {
    let s = setup(TestProvider::start().await.unwrap()).await;
    let (_, totp) = s.p.add_professional(ADMIN, PASSWORD).await.unwrap();
    let operator = admin_api::Actor { id: "operator:test".into(), source_ip: None };
    assert!(s.p.app.admin().grant_admin(&operator, ADMIN).await.unwrap());
    (s, totp)
}

/// Opens the console and signs in on the login pages with a password and a TOTP code.
async fn sign_in(c: &Client, p: &TestProvider, user: &str, totp: &[u8]) -> anyhow::Result<()> {
    c.goto(&p.url("/admin")).await?;
    choose(c, "otp").await?;
    fill(c, "username", user).await?;
    fill(c, "password", PASSWORD).await?;
    fill(c, "otp", &p.totp(totp, 0)?).await?;
    submit(c, "submit").await
}

/// Clicks what `css` finds and waits for the next page.
async fn follow(c: &Client, css: &str) -> anyhow::Result<()> {
    let old = c.find(Locator::Css("html")).await?;
    c.find(Locator::Css(css)).await.with_context(|| css.to_owned())?.click().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while old.tag_name().await.is_ok() {
        ensure!(std::time::Instant::now() < deadline, "the page did not change after clicking {css}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn an_administrator_signs_a_professional_out_everywhere_and_both_relying_parties_are_told() {
    let (s, admin_totp) = with_admin().await;
    let (_browser, rp_a, rp_b) = signed_in_to_two(&s).await;
    let p = &s.p;
    with_browser("console_end_all", |c| async move {
        sign_in(&c, p, ADMIN, &admin_totp).await?;
        let title = text_of(&c, "h1").await?;
        ensure!(title.contains("Console d'administration"), "{title}");
        accessible(&c).await.context("the search page")?;

        fill(&c, "q", USER).await?;
        follow(&c, "form[role=search] button[type=submit]").await?;
        accessible(&c).await.context("the results")?;
        follow(&c, &format!("a[href*=\"nid={USER}\"]")).await?;
        let services = c.find_all(Locator::Css("td.services")).await?;
        ensure!(services.len() == 1, "one session, with both relying parties");
        let names = services[0].text().await?;
        ensure!(names.contains('a') && names.contains('b'), "{names}");
        accessible(&c).await.context("the professional's page")?;

        follow(&c, "#end-all").await?;
        let question = text_of(&c, "#question").await?;
        ensure!(question.contains("Déconnecter partout"), "{question}");
        accessible(&c).await.context("the confirmation")?;
        follow(&c, "button[value=yes]").await?;
        let notice = text_of(&c, "[role=status]").await?;
        ensure!(notice.contains("Sessions fermées"), "{notice}");
        c.find(Locator::Id("no-session")).await.context("no session left")?;

        for rp in [&rp_a, &rp_b] {
            let got = wait_for(rp, 1, Duration::from_secs(10)).await;
            ensure!(got.len() == 1 && got[0]["sid"].is_string(), "one logout token each: {got:?}");
        }
        // The page reloads itself while a notice is on its way, then shows both received.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let mut statuses = Vec::new();
            for cell in c.find_all(Locator::Css("td.delivery-status")).await? {
                statuses.push(cell.text().await?);
            }
            if statuses.len() == 2 && statuses.iter().all(|s| s == "reçu") {
                break;
            }
            ensure!(std::time::Instant::now() < deadline, "deliveries shown as {statuses:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        accessible(&c).await.context("the page after the act")?;
        Ok(())
    })
    .await;
    // The administrator is the actor of the record.
    let records =
        s.p.app
            .admin()
            .audit_query(admin_api::audit::AuditFilter {
                event: Some("admin.session.revoke_all".into()),
                ..Default::default()
            })
            .await
            .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].actor.as_deref(), Some(format!("console:{ADMIN}").as_str()));
}

#[tokio::test]
async fn the_console_refuses_a_professional_without_the_role_and_a_form_without_its_token() {
    let (s, admin_totp) = with_admin().await;
    let p = &s.p;
    let user_totp = s.totp.clone();
    with_browser("console_refusals", |c| async move {
        sign_in(&c, p, USER, &user_totp).await?;
        let alert = text_of(&c, "[role=alert]").await?;
        ensure!(alert.contains("n'a pas le rôle d'administrateur"), "{alert}");
        accessible(&c).await.context("the refusal")?;

        // Another browser profile, as it were: the administrator now.
        c.delete_all_cookies().await?;
        sign_in(&c, p, ADMIN, &admin_totp).await?;
        c.goto(&format!("{}?nid={USER}", p.url("/admin/professional"))).await?;
        follow(&c, "input[value=block] ~ button").await?;
        // A forged form: the same, without the token.
        c.execute("document.querySelector('input[name=csrf_token]').remove()", vec![]).await?;
        follow(&c, "button[value=yes]").await?;
        let alert = text_of(&c, "[role=alert]").await?;
        ensure!(alert.contains("ne vient pas de la console"), "{alert}");
        Ok(())
    })
    .await;
    assert_eq!(s.p.app.admin().account(USER).await.unwrap().status, "active", "nothing was blocked");
}

#[tokio::test]
async fn the_console_s_other_pages_are_accessible_in_french_and_english() {
    let (s, admin_totp) = with_admin().await;
    let p = &s.p;
    with_browser("console_pages", |c| async move {
        sign_in(&c, p, ADMIN, &admin_totp).await?;
        for path in [
            "/admin/clients",
            "/admin/client?id=rp",
            "/admin/clients/confirm?id=rp&act=rotate",
            "/admin/audit?event=admin.role.grant&verify=1",
            "/admin/deliveries?status=failed",
            "/admin/confirm?nid=899700000001&act=activation-code&target=",
            "/admin?lang=en&q=Martin",
        ] {
            c.goto(&p.url(path)).await?;
            text_of(&c, "h1").await?;
            accessible(&c).await.with_context(|| path.to_owned())?;
        }
        // The language chosen sticks to the console session.
        c.goto(&p.url("/admin/audit")).await?;
        let lang = c.find(Locator::Css("html")).await?.attr("lang").await?;
        ensure!(lang.as_deref() == Some("en"), "{lang:?}");
        let title = text_of(&c, "h1").await?;
        ensure!(title == "Audit log", "{title}");
        Ok(())
    })
    .await;
}
