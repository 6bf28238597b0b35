//! The CPS card sign-in through the engine, with a test PKI shaped like IGC-Santé's (made by
//! `test_support::card_pki`: real RSA-2048 keys and certificates, real CRLs in DER read from
//! files), the real directory (SQLite) and the in-process session store: a good card signs in at
//! the strongest level; every certificate a security reviewer would refuse is refused, with the
//! reason the page names; challenges are single-use and bound to their login; the agent's
//! reports leave the challenge open; revocation fails closed and never goes back in time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authn_methods::card::crl::{CrlSet, CrlSource};
use authn_methods::card::pki::{CardTrust, IdentifierRule, RevocationPolicy};
use authn_methods::card::{CardLogin, CardSettings};
use authn_methods::engine::EngineSettings;
use authn_methods::{AuthContext, AuthEngine, Input, Prompt, StepOp, StepOutcome, StepRequest, Unusable};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use directory::{AccountStatus, AuditQuery, DataKey, Directory, NewProfessional};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use session_store::{MemoryStore, SessionStore};
use test_support::card_pki::{CardFlaw, CardHolder, TEST_POLICY_OID, TestPki};
use time::Duration as Span;

const ORIGIN: &str = "https://auth.example.org";
const AGENT: &str = "http://127.0.0.1:8765";
const NATIONAL_ID: &str = "899700000001";

struct World {
    pki: Arc<TestPki>,
    directory: Directory,
    store: Arc<dyn SessionStore>,
    dir: tempfile::TempDir,
    subject: String,
}

/// Where the tests keep the two lists the operator configures.
fn people_crl_path(w: &World) -> PathBuf {
    w.dir.path().join("people.crl")
}

fn root_crl_path(w: &World) -> PathBuf {
    w.dir.path().join("root.crl")
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let directory = Directory::connect(&url, DataKey::generate().unwrap()).await.unwrap();
    directory.migrate().await.unwrap();
    let p = directory
        .professionals()
        .create(NewProfessional {
            national_id: NATIONAL_ID.into(),
            given_name: "Jeanne".into(),
            family_name: "Martin".into(),
            ..NewProfessional::default()
        })
        .await
        .unwrap();
    let pki = Arc::new(TestPki::new());
    let w = World { pki, directory, store: Arc::new(MemoryStore::new()), dir, subject: p.subject };
    std::fs::write(root_crl_path(&w), w.pki.root_crl(false)).unwrap();
    std::fs::write(people_crl_path(&w), w.pki.people_crl(&[], Span::hours(1), Span::days(1), 1)).unwrap();
    w
}

fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().unwrap()
}

struct Options {
    policies: Vec<String>,
    revocation: RevocationPolicy,
    sources: Option<Vec<CrlSource>>,
}

impl Default for Options {
    fn default() -> Self {
        Options { policies: vec![TEST_POLICY_OID.into()], revocation: RevocationPolicy::default(), sources: None }
    }
}

async fn card_login(w: &World, o: Options) -> Arc<CardLogin> {
    let sources =
        o.sources.unwrap_or_else(|| vec![CrlSource::File(root_crl_path(w)), CrlSource::File(people_crl_path(w))]);
    let crls = Arc::new(CrlSet::new(sources));
    assert!(crls.refresh().await.is_empty(), "the lists read");
    let trust = CardTrust::new(
        &pem_certs(&w.pki.root_pem()),
        pem_certs(&w.pki.intermediate_pem()),
        o.policies,
        IdentifierRule::default(),
        o.revocation,
        crls,
    )
    .unwrap();
    let settings = CardSettings { origin: ORIGIN.into(), agent_url: AGENT.into(), tls_origin: None };
    Arc::new(CardLogin::new(Arc::new(trust), w.directory.clone(), w.store.clone(), settings))
}

fn engine(w: &World, card: Arc<CardLogin>) -> AuthEngine {
    let settings = EngineSettings { failure_floor: Duration::from_millis(1), ..EngineSettings::default() };
    AuthEngine::new(w.directory.clone(), w.store.clone(), settings).with_card(card)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn cx(interaction: &str) -> AuthContext {
    AuthContext {
        now: now(),
        source_ip: Some("192.0.2.1".into()),
        interaction: interaction.into(),
        client_name: "Logiciel de test".into(),
        ..AuthContext::default()
    }
}

/// Opens the card step of `interaction`: the challenge the page hands the agent.
async fn challenge(e: &AuthEngine, interaction: &str) -> String {
    let input = Input::new();
    let req = StepRequest { method: "card", op: StepOp::Begin, input: &input, then: None };
    match e.step(&cx(interaction), req).await.unwrap() {
        StepOutcome::Prompt(shown) => match shown.prompt {
            Prompt::Card { challenge, agent, .. } => {
                assert_eq!(agent, AGENT);
                challenge
            }
            other => panic!("not a card prompt: {other:?}"),
        },
        other => panic!("no prompt: {other:?}"),
    }
}

/// What the agent posts back: the chain (the card's certificate, then `extra`) and a signature.
fn answer(card: &CardHolder, extra: &[Vec<u8>], signature: &[u8]) -> Input {
    let mut chain = vec![URL_SAFE_NO_PAD.encode(&card.certificate_der)];
    chain.extend(extra.iter().map(|c| URL_SAFE_NO_PAD.encode(c)));
    Input::new()
        .with("card_certificates", chain.join(","))
        .with("card_signature", URL_SAFE_NO_PAD.encode(signature))
        .with("card_algorithm", "RSA-PKCS1-SHA256")
}

async fn submit(e: &AuthEngine, interaction: &str, input: &Input) -> StepOutcome {
    let req = StepRequest { method: "card", op: StepOp::Submit, input, then: None };
    e.step(&cx(interaction), req).await.unwrap()
}

/// A full card sign-in of `card` on a fresh login.
async fn sign_in(e: &AuthEngine, interaction: &str, card: &CardHolder) -> StepOutcome {
    let challenge = challenge(e, interaction).await;
    assert!(challenge.starts_with(&format!("caducee-card-v1:{ORIGIN}:")), "{challenge}");
    submit(e, interaction, &answer(card, &[], &card.sign(challenge.as_bytes()))).await
}

fn rejected(outcome: &StepOutcome) -> &'static str {
    match outcome {
        StepOutcome::Rejected { method: "card", reason } => reason,
        other => panic!("not a card rejection: {other:?}"),
    }
}

#[tokio::test]
async fn a_good_card_and_its_signature_sign_in_at_the_strongest_level() {
    let w = world().await;
    let e = engine(&w, card_login(&w, Options::default()).await);
    assert_eq!(e.strongest_acr(), "eidas3");
    let card = w.pki.issue(NATIONAL_ID, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let StepOutcome::Success(login) = sign_in(&e, "i-good", &card).await else { panic!("not signed in") };
    assert_eq!(login.result.subject, w.subject);
    assert_eq!(login.result.acr, "eidas3");
    assert!(["sc", "pin"].iter().all(|a| login.result.amr.iter().any(|m| m == a)), "{:?}", login.result.amr);
    let factor = &login.result.factors[0];
    assert_eq!(factor.method, "card");
    let used = w
        .directory
        .audit()
        .query(AuditQuery { event: Some("card_used".into()), ..AuditQuery::default() })
        .await
        .unwrap();
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].subject.as_deref(), Some(w.subject.as_str()));
    assert_eq!(used[0].details["via"], "agent");
    assert!(
        used[0].details["issuer"].as_str().unwrap().contains("TEST AC IGC-SANTE FORT PERSONNES"),
        "{:?}",
        used[0].details
    );
    assert!(factor.phishing_resistant);
    assert!(factor.credential.as_deref().is_some_and(|c| c.starts_with("card:")));
    // The card may carry its issuer too: the same login.
    let interaction = "i-good-chain";
    let c = challenge(&e, interaction).await;
    let outcome = submit(&e, interaction, &answer(&card, &[w.pki.intermediate_der()], &card.sign(c.as_bytes()))).await;
    assert!(matches!(outcome, StepOutcome::Success(_)), "{outcome:?}");
}

#[tokio::test]
async fn every_certificate_a_reviewer_would_refuse_is_refused_with_its_reason() {
    let w = world().await;
    let revoked = w.pki.issue("899700000002", "DURAND", "Paul", "Pharmacien", CardFlaw::None);
    std::fs::write(people_crl_path(&w), w.pki.people_crl(&[&revoked], Span::hours(1), Span::days(1), 2)).unwrap();
    let e = engine(&w, card_login(&w, Options::default()).await);
    let cases = [
        (w.pki.issue(NATIONAL_ID, "MARTIN", "Jeanne", "Médecin", CardFlaw::Expired), "card_expired"),
        (w.pki.issue(NATIONAL_ID, "MARTIN", "Jeanne", "Médecin", CardFlaw::UntrustedRoot), "card_untrusted"),
        (w.pki.issue(NATIONAL_ID, "MARTIN", "Jeanne", "Médecin", CardFlaw::NoClientAuth), "card_wrong_usage"),
        (w.pki.issue(NATIONAL_ID, "MARTIN", "Jeanne", "Médecin", CardFlaw::NoPolicy), "card_policy"),
        (revoked, "card_revoked"),
        // A good certificate of the PKI, for nobody the directory knows.
        (w.pki.issue("899799999999", "INCONNU", "Jean", "Infirmier", CardFlaw::None), "card_unknown"),
    ];
    for (i, (card, reason)) in cases.iter().enumerate() {
        let outcome = sign_in(&e, &format!("i-refused-{i}"), card).await;
        assert_eq!(rejected(&outcome), *reason);
    }
    // Each refusal is audited with its reason.
    let audited = w
        .directory
        .audit()
        .query(AuditQuery { event: Some("login_failed".into()), ..AuditQuery::default() })
        .await
        .unwrap();
    for (_, reason) in &cases {
        assert!(audited.iter().any(|r| r.outcome == *reason), "{reason} not audited");
    }
}

#[tokio::test]
async fn a_signature_that_is_not_the_cards_or_not_of_this_challenge_is_refused() {
    let w = world().await;
    let e = engine(&w, card_login(&w, Options::default()).await);
    let card = w.pki.issue(NATIONAL_ID, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let thief = w.pki.issue("899700000003", "VOLEUR", "Luc", "Médecin", CardFlaw::None);
    // Jeanne's certificate with another card's signature: no possession, no login.
    let c = challenge(&e, "i-theft").await;
    let outcome = submit(&e, "i-theft", &answer(&card, &[], &thief.sign(c.as_bytes()))).await;
    assert!(matches!(outcome, StepOutcome::Refused(authn_methods::Refusal::Invalid)), "{outcome:?}");
    // A signature of another login's challenge (relayed from elsewhere).
    let other = challenge(&e, "i-other").await;
    let c = challenge(&e, "i-relay").await;
    assert_ne!(c, other);
    let outcome = submit(&e, "i-relay", &answer(&card, &[], &card.sign(other.as_bytes()))).await;
    assert!(matches!(outcome, StepOutcome::Refused(authn_methods::Refusal::Invalid)), "{outcome:?}");
    // Garbage in every field: refused, nothing panics.
    let c = challenge(&e, "i-garbage").await;
    let _ = c;
    let garbage = Input::new().with("card_certificates", "%%%,,").with("card_signature", "!!");
    let outcome = submit(&e, "i-garbage", &garbage).await;
    assert!(matches!(outcome, StepOutcome::Refused(_)), "{outcome:?}");
}

#[tokio::test]
async fn a_challenge_answers_once_and_only_for_its_own_login() {
    let w = world().await;
    let e = engine(&w, card_login(&w, Options::default()).await);
    let card = w.pki.issue(NATIONAL_ID, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let c = challenge(&e, "i-once").await;
    let signed = answer(&card, &[], &card.sign(c.as_bytes()));
    assert!(matches!(submit(&e, "i-once", &signed).await, StepOutcome::Success(_)));
    // The same answer again: the login is done and the challenge spent.
    let again = submit(&e, "i-once", &signed).await;
    assert!(!matches!(again, StepOutcome::Success(_)), "{again:?}");
    // A challenge answered twice at once signs in at most once (the loser may also spoil the
    // winner's step: then nobody is signed in, and the person starts again).
    for round in 0..5 {
        let interaction = format!("i-race-{round}");
        let c = challenge(&e, &interaction).await;
        let signed = answer(&card, &[], &card.sign(c.as_bytes()));
        let (a, b) = tokio::join!(submit(&e, &interaction, &signed), submit(&e, &interaction, &signed));
        let wins = [a, b].iter().filter(|o| matches!(o, StepOutcome::Success(_))).count();
        assert!(wins <= 1, "round {round}: {wins} sign-ins from one challenge");
    }
}

#[tokio::test]
async fn what_the_agent_reports_is_shown_and_the_challenge_stays_open() {
    let w = world().await;
    let e = engine(&w, card_login(&w, Options::default()).await);
    let card = w.pki.issue(NATIONAL_ID, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let c = challenge(&e, "i-pin").await;
    let wrong = Input::new().with("card_error", "wrong_pin").with("card_tries_left", "2");
    match submit(&e, "i-pin", &wrong).await {
        StepOutcome::Prompt(shown) => match shown.prompt {
            Prompt::Card { challenge, notice, tries_left, .. } => {
                assert_eq!(challenge, c);
                assert_eq!(notice.as_deref(), Some("wrong_pin"));
                assert_eq!(tries_left, Some(2));
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    // Whatever else the agent says is a generic card error, never echoed.
    let odd = Input::new().with("card_error", "<script>");
    let StepOutcome::Prompt(shown) = submit(&e, "i-pin", &odd).await else { panic!() };
    assert!(matches!(shown.prompt, Prompt::Card { notice: Some(ref n), .. } if n == "card_error"));
    // Then the right PIN: the same challenge signs in.
    let outcome = submit(&e, "i-pin", &answer(&card, &[], &card.sign(c.as_bytes()))).await;
    assert!(matches!(outcome, StepOutcome::Success(_)), "{outcome:?}");
}

#[tokio::test]
async fn a_blocked_account_cannot_sign_in_by_card() {
    let w = world().await;
    let e = engine(&w, card_login(&w, Options::default()).await);
    let p = w.directory.professionals().get_by_national_id(NATIONAL_ID).await.unwrap().unwrap();
    w.directory.professionals().set_status(&p.id, AccountStatus::Blocked).await.unwrap();
    let card = w.pki.issue(NATIONAL_ID, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);
    let outcome = sign_in(&e, "i-blocked", &card).await;
    assert!(matches!(outcome, StepOutcome::Unusable { method: "card", why: Unusable::Blocked }), "{outcome:?}");
}

#[tokio::test]
async fn revocation_fails_closed_and_never_goes_back_in_time() {
    let w = world().await;
    let card = w.pki.issue(NATIONAL_ID, "MARTIN", "Jeanne", "Médecin", CardFlaw::None);

    // No list for the card's issuer: its status is unknown, the card refused.
    let only_root = Options { sources: Some(vec![CrlSource::File(root_crl_path(&w))]), ..Options::default() };
    let e = engine(&w, card_login(&w, only_root).await);
    assert_eq!(rejected(&sign_in(&e, "i-nolist", &card).await), "card_revocation_unknown");

    // A list past its nextUpdate: refused, unless the operator accepts stale lists.
    std::fs::write(people_crl_path(&w), w.pki.people_crl(&[], Span::days(8), -Span::days(1), 3)).unwrap();
    let e = engine(&w, card_login(&w, Options::default()).await);
    assert_eq!(rejected(&sign_in(&e, "i-stale", &card).await), "card_revocation_stale");
    let lenient = Options {
        revocation: RevocationPolicy { allow_stale: true, ..RevocationPolicy::default() },
        ..Options::default()
    };
    let e = engine(&w, card_login(&w, lenient).await);
    assert!(matches!(sign_in(&e, "i-stale-ok", &card).await, StepOutcome::Success(_)));

    // The intermediate revoked by the root: every card under it refused (whole chain checked).
    std::fs::write(people_crl_path(&w), w.pki.people_crl(&[], Span::hours(1), Span::days(1), 4)).unwrap();
    std::fs::write(root_crl_path(&w), w.pki.root_crl(true)).unwrap();
    let e = engine(&w, card_login(&w, Options::default()).await);
    assert_eq!(rejected(&sign_in(&e, "i-ca-revoked", &card).await), "card_revoked");
    std::fs::write(root_crl_path(&w), w.pki.root_crl(false)).unwrap();

    // A refresh picks up a new revocation; an older list served afterwards (a replay, still
    // signed and unexpired) does not bring the card back.
    let login = card_login(&w, Options::default()).await;
    let e = engine(&w, login.clone());
    assert!(matches!(sign_in(&e, "i-before", &card).await, StepOutcome::Success(_)));
    let older = w.pki.people_crl(&[], Span::hours(2), Span::days(1), 5);
    std::fs::write(people_crl_path(&w), w.pki.people_crl(&[&card], Span::minutes(5), Span::days(1), 6)).unwrap();
    assert!(login.trust().crls().refresh().await.is_empty());
    assert_eq!(rejected(&sign_in(&e, "i-after", &card).await), "card_revoked");
    std::fs::write(people_crl_path(&w), older).unwrap();
    assert!(login.trust().crls().refresh().await.is_empty());
    assert_eq!(rejected(&sign_in(&e, "i-replayed-list", &card).await), "card_revoked");

    // A source that cannot be read keeps its last good list.
    std::fs::remove_file(people_crl_path(&w)).unwrap();
    assert_eq!(login.trust().crls().refresh().await.len(), 1);
    assert_eq!(rejected(&sign_in(&e, "i-unreadable", &card).await), "card_revoked");
}
