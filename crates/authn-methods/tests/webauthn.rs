//! Passkeys and security keys against webauthn-authenticator-rs's software authenticator (a
//! real CTAP2 token in memory: real keys, real signatures, its own counter), the real directory
//! (SQLite) and the in-process session store: enrolment, sign-in through the engine, and the
//! refusals (another origin, a replayed answer, a counter going back, a key off the allow-list).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use authn_methods::engine::EngineSettings;
use authn_methods::mailer::FileOutbox;
use authn_methods::webauthn::{Actor, Attestation, EnrolError, Passkeys, Verdict, WebauthnSettings};
use authn_methods::{AuthContext, AuthEngine, Input, Prompt, Refusal, StepOp, StepOutcome, StepRequest, Then};
use directory::{AuditQuery, DataKey, Directory, NewProfessional};
use session_store::{MemoryStore, SessionStore};
use url::Url;
use webauthn_authenticator_rs::AuthenticatorBackend as _;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs_proto::{PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions};

const ISSUER: &str = "https://auth.example.org/auth/realms/esante-wallet";
const ORIGIN: &str = "https://auth.example.org";
const PASSWORD: &str = "a long passphrase";

struct World {
    directory: Directory,
    store: Arc<dyn SessionStore>,
    passkeys: Arc<Passkeys>,
    subject: String,
    outbox: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

async fn world(settings: WebauthnSettings) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", tmp.path().join("t.db").display());
    let directory = Directory::connect(&url, DataKey::generate().unwrap()).await.unwrap();
    directory.migrate().await.unwrap();
    let p = directory
        .professionals()
        .create(NewProfessional {
            national_id: "899700000001".into(),
            given_name: "Jeanne".into(),
            family_name: "Martin".into(),
            email: Some("jeanne.martin@example.org".into()),
            password_hash: Some(authn_methods::password::hash_password(PASSWORD).unwrap()),
            ..NewProfessional::default()
        })
        .await
        .unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let outbox = tmp.path().join("outbox");
    let mailer = Arc::new(FileOutbox::new(outbox.clone(), "Caducée <noreply@example.org>").unwrap());
    let passkeys = Arc::new(Passkeys::new(ISSUER, None, directory.clone(), store.clone(), mailer, settings).unwrap());
    World { directory, store, passkeys, subject: p.subject, outbox, _tmp: tmp }
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

/// A software key that reports its owner verified (`falsify_uv`: it has no PIN pad to ask; the
/// flag it sets is the one a real key sets after its PIN).
fn token() -> SoftToken {
    SoftToken::new(true).unwrap().0
}

/// Enrols `token` for the world's professional; returns the authenticator's id.
async fn enrol(w: &World, token: &mut SoftToken, name: &str) -> Result<String, EnrolError> {
    let start = w.passkeys.start_enrolment(&w.subject, "899700000001", "Jeanne Martin").await.unwrap();
    let options: PublicKeyCredentialCreationOptions = serde_json::from_str(&start.options).unwrap();
    let answer = token.perform_register(Url::parse(ORIGIN).unwrap(), options, 10_000).unwrap();
    let actor = Actor { subject: &w.subject, source_ip: Some("192.0.2.1"), now: now() };
    let response = serde_json::to_string(&answer).unwrap();
    w.passkeys.finish_enrolment(&actor, &start.ceremony, &response, name).await.map(|v| v.id)
}

/// The token's answer to a sign-in ceremony's options, as the page's script posts it.
fn answer(token: &mut SoftToken, options: &str, origin: &str) -> String {
    let options: PublicKeyCredentialRequestOptions = serde_json::from_str(options).unwrap();
    let assertion = token.perform_auth(Url::parse(origin).unwrap(), options, 10_000).unwrap();
    serde_json::to_string(&assertion).unwrap()
}

async fn events(d: &Directory, event: &str) -> Vec<directory::AuditRecord> {
    d.audit().query(AuditQuery { event: Some(event.into()), ..AuditQuery::default() }).await.unwrap()
}

fn engine(w: &World) -> AuthEngine {
    let settings = EngineSettings { failure_floor: Duration::from_millis(1), ..EngineSettings::default() };
    AuthEngine::new(w.directory.clone(), w.store.clone(), settings).with_webauthn(w.passkeys.clone(), false)
}

/// The password, then «clé de sécurité»: the prompt's options.
async fn password_then_key(engine: &AuthEngine, cx: &AuthContext) -> String {
    let input = Input::new().with("username", "899700000001").with("password", PASSWORD);
    let then = Some(Then { method: "webauthn-key", in_one_go: false });
    let outcome =
        engine.step(cx, StepRequest { method: "pwd", op: StepOp::Submit, input: &input, then }).await.unwrap();
    match outcome {
        StepOutcome::Prompt(shown) => match shown.prompt {
            Prompt::Passkey { options } => options,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

async fn key_answer(engine: &AuthEngine, cx: &AuthContext, response: &str) -> StepOutcome {
    let input = Input::new().with("webauthn_response", response);
    engine
        .step(cx, StepRequest { method: "webauthn-key", op: StepOp::Submit, input: &input, then: None })
        .await
        .unwrap()
}

#[tokio::test]
async fn enrolment_then_sign_in_after_the_password() {
    let w = world(WebauthnSettings::default()).await;
    let mut key = token();
    let id = enrol(&w, &mut key, "Clé du cabinet").await.unwrap();
    let record = w.directory.authenticators().get(&id).await.unwrap().unwrap();
    assert_eq!((record.kind.as_str(), record.label.as_str(), record.active), ("webauthn", "Clé du cabinet", true));
    assert_eq!(events(&w.directory, "webauthn_enrolled").await.len(), 1);
    let mails = std::fs::read_dir(&w.outbox).unwrap().count();
    assert_eq!(mails, 1, "the professional is told of the new key by mail");

    let engine = engine(&w);
    assert_eq!(engine.strongest_acr(), "eidas2");
    let cx = cx("ix-1");
    let options = password_then_key(&engine, &cx).await;
    let response = answer(&mut key, &options, ORIGIN);
    let StepOutcome::Success(login) = key_answer(&engine, &cx, &response).await else {
        panic!("the key signs in");
    };
    assert_eq!(login.result.subject, w.subject);
    assert_eq!(login.result.acr, "eidas2");
    assert_eq!(login.result.amr, ["pwd", "hwk", "user", "pin", "mfa"]);
    let record = w.directory.authenticators().get(&id).await.unwrap().unwrap();
    assert!(record.counter >= 1 && record.last_used_at.is_some(), "the counter moved: {}", record.counter);
    assert_eq!(events(&w.directory, "webauthn_used").await.len(), 1);
}

#[tokio::test]
async fn the_operator_sets_the_level_a_key_earns() {
    let w = world(WebauthnSettings { acr: "eidas1".into(), ..WebauthnSettings::default() }).await;
    let mut key = token();
    enrol(&w, &mut key, "Clé").await.unwrap();
    let engine = engine(&w);
    assert_eq!(engine.strongest_acr(), "eidas1");
    let cx = cx("ix-level");
    let options = password_then_key(&engine, &cx).await;
    let StepOutcome::Success(login) = key_answer(&engine, &cx, &answer(&mut key, &options, ORIGIN)).await else {
        panic!("the key signs in");
    };
    assert_eq!(login.result.acr, "eidas1");
}

#[tokio::test]
async fn an_answer_made_for_another_origin_is_refused() {
    let w = world(WebauthnSettings::default()).await;
    let mut key = token();
    enrol(&w, &mut key, "Clé").await.unwrap();
    let engine = engine(&w);
    let cx = cx("ix-phish");
    let options = password_then_key(&engine, &cx).await;
    // A look-alike site relaying our challenge: the browser writes its own origin.
    let response = answer(&mut key, &options, "https://auth.example.org.evil.example");
    assert_eq!(key_answer(&engine, &cx, &response).await, StepOutcome::Refused(Refusal::Invalid));
    // The answered ceremony is spent: the password stands, the key is offered again, afresh.
    match engine.current("ix-phish").await.unwrap() {
        Some(StepOutcome::Next { methods }) => assert_eq!(methods, ["webauthn-key"]),
        other => panic!("{other:?}"),
    }
    let response = answer(&mut key, &options, "https://other.example.org");
    let outcome = key_answer(&engine, &cx, &response).await;
    assert!(!matches!(outcome, StepOutcome::Success(_)), "{outcome:?}");
}

#[tokio::test]
async fn a_challenge_answers_one_ceremony_once() {
    let w = world(WebauthnSettings::default()).await;
    let mut key = token();
    enrol(&w, &mut key, "Clé").await.unwrap();
    let p = &w.passkeys;
    let (ceremony, options) = p.start_sign_in("ix-a", Some(&w.subject)).await.unwrap().unwrap();
    let response = answer(&mut key, &options, ORIGIN);
    // Taken once: the same answer posted twice signs in once.
    assert!(matches!(
        p.finish_sign_in(&cx("ix-a"), &ceremony, &response, "webauthn-key").await.unwrap(),
        Verdict::Done(_)
    ));
    assert!(matches!(
        p.finish_sign_in(&cx("ix-a"), &ceremony, &response, "webauthn-key").await.unwrap(),
        Verdict::Expired
    ));
    // Replayed into a new ceremony: its challenge is not the new one.
    let (fresh, _) = p.start_sign_in("ix-b", Some(&w.subject)).await.unwrap().unwrap();
    assert!(matches!(p.finish_sign_in(&cx("ix-b"), &fresh, &response, "webauthn-key").await.unwrap(), Verdict::Bad));
    // A ceremony belongs to its login: another interaction cannot finish it.
    let (theirs, options) = p.start_sign_in("ix-c", Some(&w.subject)).await.unwrap().unwrap();
    let response = answer(&mut key, &options, ORIGIN);
    assert!(matches!(p.finish_sign_in(&cx("ix-d"), &theirs, &response, "webauthn-key").await.unwrap(), Verdict::Bad));
}

#[tokio::test]
async fn a_counter_going_back_is_refused_and_flagged_as_a_clone() {
    let w = world(WebauthnSettings::default()).await;
    let mut key = token();
    let id = enrol(&w, &mut key, "Clé").await.unwrap();
    // A copy of the key as it is now: the same private key, the same counter.
    let mut clone = SoftToken::from_cbor(&key.to_cbor().unwrap()).unwrap();
    let p = &w.passkeys;
    for round in 0..2 {
        let ix = format!("ix-{round}");
        let (ceremony, options) = p.start_sign_in(&ix, Some(&w.subject)).await.unwrap().unwrap();
        let response = answer(&mut key, &options, ORIGIN);
        assert!(matches!(
            p.finish_sign_in(&cx(&ix), &ceremony, &response, "webauthn-key").await.unwrap(),
            Verdict::Done(_)
        ));
    }
    let (ceremony, options) = p.start_sign_in("ix-clone", Some(&w.subject)).await.unwrap().unwrap();
    let response = answer(&mut clone, &options, ORIGIN);
    assert!(matches!(
        p.finish_sign_in(&cx("ix-clone"), &ceremony, &response, "webauthn-key").await.unwrap(),
        Verdict::Bad
    ));
    let flagged = events(&w.directory, "webauthn_cloned").await;
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].subject.as_deref(), Some(w.subject.as_str()));
    assert_eq!(flagged[0].details["authenticator"], id.as_str());
}

#[tokio::test]
async fn a_key_off_the_allow_list_is_not_enrolled() {
    let settings = WebauthnSettings {
        attestation: Attestation::Direct,
        allowed_aaguids: vec![uuid::Uuid::from_u128(0x1234)],
        ..WebauthnSettings::default()
    };
    let w = world(settings).await;
    let mut key = token();
    assert!(matches!(enrol(&w, &mut key, "Clé").await, Err(EnrolError::NotAllowed)));
    assert!(
        w.directory.authenticators().list_for_subject(&w.subject).await.unwrap().iter().all(|a| a.kind != "webauthn")
    );
    assert_eq!(events(&w.directory, "webauthn_enrol_refused").await.len(), 1);
}

#[tokio::test]
async fn an_enrolment_answer_is_used_once_and_by_its_owner_only() {
    let w = world(WebauthnSettings::default()).await;
    let mut key = token();
    let start = w.passkeys.start_enrolment(&w.subject, "899700000001", "Jeanne Martin").await.unwrap();
    let options: PublicKeyCredentialCreationOptions = serde_json::from_str(&start.options).unwrap();
    let response =
        serde_json::to_string(&key.perform_register(Url::parse(ORIGIN).unwrap(), options, 10_000).unwrap()).unwrap();
    let stranger = Actor { subject: "someone-else", source_ip: None, now: now() };
    assert!(matches!(
        w.passkeys.finish_enrolment(&stranger, &start.ceremony, &response, "x").await,
        Err(EnrolError::Expired)
    ));
    // The stranger's try spent the ceremony.
    let owner = Actor { subject: &w.subject, source_ip: None, now: now() };
    assert!(matches!(
        w.passkeys.finish_enrolment(&owner, &start.ceremony, &response, "x").await,
        Err(EnrolError::Expired)
    ));
}
