//! The methods and the engine against real storage (SQLite directory, in-process store).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use authn_methods::engine::EngineSettings;
use authn_methods::lockout::{Admission, AfterFailure, LockScope, Lockout, LockoutPolicy, Source};
use authn_methods::totp::{self, TotpParams};
use authn_methods::{AuthContext, AuthEngine, Input, Refusal, StepOp, StepOutcome, StepRequest};
use common::one_form;
use directory::{DataKey, Directory, NewProfessional};
use session_store::{MemoryStore, SessionStore};

const NOW: i64 = 1_800_000_000;

async fn directory() -> (Directory, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let d = Directory::connect(&url, DataKey::generate().unwrap()).await.unwrap();
    d.migrate().await.unwrap();
    (d, dir)
}

async fn professional(d: &Directory, national_id: &str, password: &str) -> String {
    let hash = authn_methods::password::hash_password(password).unwrap();
    let p = d
        .professionals()
        .create(NewProfessional {
            national_id: national_id.into(),
            given_name: "Jeanne".into(),
            family_name: "Martin".into(),
            password_hash: Some(hash),
            ..NewProfessional::default()
        })
        .await
        .unwrap();
    p.subject
}

fn cx(now: i64) -> AuthContext {
    AuthContext {
        now,
        source_ip: Some("192.0.2.1".into()),
        interaction: "ix".into(),
        device_cookie: None,
        user_agent: None,
        client_name: "Logiciel de test".into(),
        required_acr: None,
        tls_client_chain: None,
    }
}

#[tokio::test]
async fn totp_accepts_one_step_of_drift_and_each_code_once() {
    let (d, _t) = directory().await;
    let subject = professional(&d, "899700000001", "a long passphrase").await;
    let e = totp::enroll(&d, &subject, "899700000001", "Caducée", true, NOW - 300).await.unwrap();
    assert!(e.otpauth_uri.starts_with("otpauth://totp/"));
    let secret = e.authenticator.secret.to_vec();
    let code = |at: i64| totp::current_code(&secret, TotpParams::default(), at).unwrap();
    let record = || async { d.authenticators().get(&e.authenticator.id).await.unwrap().unwrap() };

    assert!(!totp::verify_code(&d, &record().await, &code(NOW - 60), NOW).await.unwrap(), "two steps back is too old");
    assert!(totp::verify_code(&d, &record().await, &code(NOW - 30), NOW).await.unwrap(), "one step back is accepted");
    assert!(totp::verify_code(&d, &record().await, &code(NOW), NOW).await.unwrap());
    assert!(!totp::verify_code(&d, &record().await, &code(NOW), NOW).await.unwrap(), "a code is accepted once");
    assert!(!totp::verify_code(&d, &record().await, &code(NOW - 30), NOW).await.unwrap(), "no going back either");
    assert!(totp::verify_code(&d, &record().await, &code(NOW + 30), NOW).await.unwrap(), "one step ahead is accepted");
    assert!(!totp::verify_code(&d, &record().await, "12345", NOW).await.unwrap(), "wrong length");
}

#[tokio::test]
async fn concurrent_submissions_of_one_code_let_exactly_one_through() {
    let (d, _t) = directory().await;
    let subject = professional(&d, "899700000002", "a long passphrase").await;
    let e = totp::enroll(&d, &subject, "899700000002", "Caducée", true, NOW - 300).await.unwrap();
    let code = totp::current_code(&e.authenticator.secret, TotpParams::default(), NOW).unwrap();
    let record = d.authenticators().get(&e.authenticator.id).await.unwrap().unwrap();
    let tries = (0..20).map(|_| {
        let (d, r, c) = (d.clone(), record.clone(), code.clone());
        tokio::spawn(async move { totp::verify_code(&d, &r, &c, NOW).await.unwrap() })
    });
    let results = join_all(tries).await;
    assert_eq!(results.iter().filter(|ok| **ok).count(), 1);
}

async fn join_all(handles: impl Iterator<Item = tokio::task::JoinHandle<bool>>) -> Vec<bool> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn pending_enrolment_activates_with_its_first_correct_code() {
    let (d, _t) = directory().await;
    let subject = professional(&d, "899700000003", "a long passphrase").await;
    let e = totp::enroll(&d, &subject, "899700000003", "Caducée", false, NOW).await.unwrap();
    assert!(!totp::activate_with_code(&d, &e.authenticator.id, "000000", NOW).await.unwrap());
    let code = totp::current_code(&e.authenticator.secret, TotpParams::default(), NOW).unwrap();
    assert!(totp::activate_with_code(&d, &e.authenticator.id, &code, NOW).await.unwrap());
    assert!(d.authenticators().get(&e.authenticator.id).await.unwrap().unwrap().active);
}

fn lockout(policy: LockoutPolicy) -> Lockout {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    Lockout::new(store, policy, DataKey::from_bytes([9; 32]).sub_keys().keyed_hash("lockout-identifier"))
}

fn from(ip: &str) -> Source {
    Source::Address(Some(ip.parse().unwrap()))
}

fn locked(until: i64) -> AfterFailure {
    AfterFailure::Locked { until, scope: LockScope::Pair }
}

#[tokio::test]
async fn lockouts_escalate_per_source_and_success_wipes_the_slate() {
    let policy = LockoutPolicy { max_failures: 3, base_delay: Duration::from_secs(1), ..LockoutPolicy::default() };
    let lock = lockout(policy);
    let a = from("192.0.2.1");
    for _ in 0..2 {
        assert_eq!(lock.admit("id", &a, NOW).await.unwrap(), Admission::Allowed);
        assert_eq!(lock.failed("id", &a, NOW).await.unwrap(), AfterFailure::Counted);
    }
    assert_eq!(lock.admit("id", &a, NOW).await.unwrap(), Admission::Allowed);
    assert_eq!(lock.failed("id", &a, NOW).await.unwrap(), locked(NOW + 1), "third failure: locked for the base delay");
    assert_eq!(lock.admit("id", &a, NOW).await.unwrap(), Admission::Locked { retry_after: 1, scope: LockScope::Pair });
    // The lock lives in the store for its real duration; once it is gone, the next one lasts
    // twice as long.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        lock.admit("id", &a, NOW + 100).await.unwrap();
    }
    assert_eq!(lock.failed("id", &a, NOW + 100).await.unwrap(), locked(NOW + 102));
    // An administrator lifts it; a success forgets the failures and the escalation.
    lock.reset("id").await.unwrap();
    assert_eq!(lock.admit("id", &a, NOW + 100).await.unwrap(), Admission::Allowed, "lifted at once");
    lock.succeeded("id", &a).await.unwrap();
    for _ in 0..3 {
        lock.admit("id", &a, NOW + 400).await.unwrap();
    }
    assert_eq!(lock.failed("id", &a, NOW + 400).await.unwrap(), locked(NOW + 401), "back to the base delay");
}

/// Item 3 at the level of the rules: failures from one address lock that address out of the
/// identifier, not the identifier; a browser that signed in before is counted on its own; the
/// identifier-wide spacing never passes its cap; an address spraying identifiers is stopped.
#[tokio::test]
async fn item_3_lockout_is_per_source_and_bounded_per_identifier() {
    let policy = LockoutPolicy {
        identifier_delay_after: 8,
        identifier_base_delay: Duration::from_secs(5),
        identifier_max_delay: Duration::from_secs(120),
        address_max_attempts: 12,
        ..LockoutPolicy::default()
    };
    let lock = lockout(policy);
    let attacker = from("203.0.113.66");
    for _ in 0..4 {
        assert_eq!(lock.admit("899700000001", &attacker, NOW).await.unwrap(), Admission::Allowed);
        assert_eq!(lock.failed("899700000001", &attacker, NOW).await.unwrap(), AfterFailure::Counted);
    }
    lock.admit("899700000001", &attacker, NOW).await.unwrap();
    assert_eq!(lock.failed("899700000001", &attacker, NOW).await.unwrap(), locked(NOW + 60));
    assert!(matches!(lock.admit("899700000001", &attacker, NOW).await.unwrap(), Admission::Locked { .. }));
    // The professional, elsewhere or in their own browser, is not locked out.
    assert_eq!(lock.admit("899700000001", &from("198.51.100.7"), NOW).await.unwrap(), Admission::Allowed);
    let device = Source::TrustedDevice("n0nce".into());
    assert_eq!(lock.admit("899700000001", &device, NOW).await.unwrap(), Admission::Allowed);

    // Many addresses: past `identifier_delay_after` failures, each failing address waits, the
    // wait doubles, and never passes the cap; a new address never waits for the others.
    let mut longest = 0;
    for i in 0..30 {
        let bot = from(&format!("198.18.0.{i}"));
        assert_eq!(lock.admit("899700000001", &bot, NOW).await.unwrap(), Admission::Allowed, "bot {i} first try");
        match lock.failed("899700000001", &bot, NOW).await.unwrap() {
            AfterFailure::Locked { until, scope: LockScope::Spacing } => {
                longest = longest.max(until - NOW);
                assert!(matches!(
                    lock.admit("899700000001", &bot, NOW).await.unwrap(),
                    Admission::Locked { scope: LockScope::Spacing, .. }
                ));
            }
            AfterFailure::Counted => assert!(i < 3, "spaced once the identifier took 8 failures (bot {i})"),
            other => panic!("bot {i}: {other:?}"),
        }
    }
    assert_eq!(longest, 120, "the spacing reaches its cap and stays there");
    // The trusted browser is not spaced out by strangers' failures.
    assert_eq!(lock.failed("899700000001", &device, NOW).await.unwrap(), AfterFailure::Counted);
    assert_eq!(lock.admit("899700000001", &device, NOW).await.unwrap(), Admission::Allowed);

    // Password spraying from one address: many identifiers, stopped by the address limit.
    let sprayer = from("2001:db8:5:6::1");
    let mut refused_at = None;
    for i in 0..20 {
        let id = format!("8997000001{i:02}");
        let other_in_64 = from(&format!("2001:db8:5:6::{:x}", i + 100));
        let source = if i % 2 == 0 { &sprayer } else { &other_in_64 };
        match lock.admit(&id, source, NOW).await.unwrap() {
            Admission::Allowed => {
                lock.failed(&id, source, NOW).await.unwrap();
            }
            Admission::Locked { scope, .. } => {
                assert_eq!(scope, LockScope::Address);
                refused_at = Some(i);
                break;
            }
        }
    }
    assert_eq!(refused_at, Some(12), "the whole /64 shares one budget of 12");
    // A success is not charged to the address.
    let office = from("192.0.2.50");
    for _ in 0..40 {
        assert_eq!(lock.admit("899700000009", &office, NOW).await.unwrap(), Admission::Allowed);
        lock.succeeded("899700000009", &office).await.unwrap();
    }
}

#[tokio::test]
async fn the_engine_combines_password_and_totp_into_eidas1() {
    let (d, _t) = directory().await;
    let subject = professional(&d, "899700000004", "a long passphrase").await;
    let e = totp::enroll(&d, &subject, "899700000004", "Caducée", true, NOW - 300).await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let settings = EngineSettings { failure_floor: Duration::from_millis(1), ..EngineSettings::default() };
    let engine = AuthEngine::new(d.clone(), store, settings).with_codes();
    let code = totp::current_code(&e.authenticator.secret, TotpParams::default(), NOW).unwrap();

    let wrong = one_form(&engine, &cx(NOW), "899700000004", "not the passphrase", &code).await.unwrap();
    assert_eq!(wrong, StepOutcome::Refused(Refusal::Invalid));
    let unknown = one_form(&engine, &cx(NOW), "899799999999", "a long passphrase", &code).await.unwrap();
    assert_eq!(unknown, StepOutcome::Refused(Refusal::Invalid));
    let no_otp = one_form(&engine, &cx(NOW), "899700000004", "a long passphrase", "").await.unwrap();
    assert_eq!(no_otp, StepOutcome::Refused(Refusal::Invalid));

    let StepOutcome::Success(login) =
        one_form(&engine, &cx(NOW), " 899700000004 ", "a long passphrase", &code).await.unwrap()
    else {
        panic!("right password and code must succeed");
    };
    let result = login.result;
    assert_eq!(result.subject, subject);
    assert_eq!(result.acr, "eidas1");
    assert_eq!(result.amr, vec!["pwd", "otp", "mfa"]);
    assert_eq!(result.factors.len(), 2);

    // Failures are audited with the identifier typed, and without the secret.
    let events = d
        .audit()
        .query(directory::AuditQuery { event: Some("login_failed".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
    assert!(!events.iter().any(|e| e.details.to_string().contains("passphrase")));
    // An identifier nobody has is kept as a keyed hash only; an account's as typed.
    assert!(!events.iter().any(|e| e.details.to_string().contains("899799999999")));
    assert_eq!(events.iter().filter(|e| e.details.get("identifier_hash").is_some()).count(), 1);
    assert_eq!(events.iter().filter(|e| e.details["identifier"] == "899700000004").count(), 2);
}

/// Item 2: what cannot be an identifier (too long, a character no national identifier has) is
/// refused with the same answer as a wrong password, and nothing of it is stored: no counter, no
/// audit text. It is charged to the address, so that it cannot be sent without bound either.
#[tokio::test]
async fn item_2_identifiers_that_cannot_be_one_are_refused_before_anything_is_stored() {
    let (d, _t) = directory().await;
    professional(&d, "899700000005", "a long passphrase").await;
    let store = Arc::new(MemoryStore::new());
    let settings = EngineSettings { failure_floor: Duration::from_millis(1), ..EngineSettings::default() };
    let engine = AuthEngine::new(d.clone(), store.clone(), settings).with_codes();
    let long = "8".repeat(60_000);
    let before = store.used_bytes();
    for bad in [long.as_str(), "8997 00000005", "<script>", "899700000005\u{0}", "é"] {
        let answer = one_form(&engine, &cx(NOW), bad, "a long passphrase", "000000").await.unwrap();
        assert_eq!(answer, StepOutcome::Refused(Refusal::Invalid), "{}", bad.chars().take(20).collect::<String>());
    }
    assert!(store.used_bytes() - before < 512, "only the address counter: {}", store.used_bytes() - before);
    let events = d.audit().query(directory::AuditQuery::default()).await.unwrap();
    assert_eq!(events.len(), 5);
    for e in &events {
        assert_eq!(e.outcome, "malformed_identifier");
        assert!(e.details.get("identifier").is_none() && e.details.get("identifier_hash").is_none());
        assert!(e.details.to_string().len() < 100, "{}", e.details);
    }
}

async fn step(
    engine: &AuthEngine,
    cx: &AuthContext,
    method: &str,
    op: StepOp,
    input: &Input,
) -> Result<StepOutcome, authn_methods::AuthError> {
    engine.step(cx, StepRequest { method, op, input, then: None }).await
}

/// The login as a sequence of steps kept between requests: the password, then what the policy
/// allows next, each step counted by the engine alone.
#[tokio::test]
async fn a_login_is_a_sequence_of_steps_the_policy_orders() {
    let (d, _t) = directory().await;
    let subject = professional(&d, "899700000006", "a long passphrase").await;
    let e = totp::enroll(&d, &subject, "899700000006", "Caducée", true, NOW - 300).await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let policy = LockoutPolicy { max_failures: 3, ..LockoutPolicy::default() };
    let settings = EngineSettings { failure_floor: Duration::from_millis(1), lockout: policy, ..Default::default() };
    let engine = AuthEngine::new(d.clone(), store, settings).with_codes();
    let code = totp::current_code(&e.authenticator.secret, TotpParams::default(), NOW).unwrap();
    let otp = |c: &str| Input::new().with("otp", c);

    // A code before anyone is identified is not a step of this login.
    let early = step(&engine, &cx(NOW), "otp", StepOp::Submit, &otp(&code)).await.unwrap();
    assert_eq!(early, StepOutcome::NotAllowed);
    assert_eq!(step(&engine, &cx(NOW), "nope", StepOp::Begin, &Input::new()).await.unwrap(), StepOutcome::NotAllowed);

    let pwd = Input::new().with("username", "899700000006").with("password", "a long passphrase");
    let next = step(&engine, &cx(NOW), "pwd", StepOp::Submit, &pwd).await.unwrap();
    assert_eq!(next, StepOutcome::Next { methods: vec!["otp"] });
    assert_eq!(engine.current("ix").await.unwrap(), Some(next), "any node reads where the login stands");
    assert_eq!(engine.current("another").await.unwrap(), None);

    // A wrong code counts and leaves the password proven; the next request types the code only.
    let wrong = step(&engine, &cx(NOW), "otp", StepOp::Submit, &otp("000000")).await.unwrap();
    assert_eq!(wrong, StepOutcome::Refused(Refusal::Invalid));
    let StepOutcome::Success(login) = step(&engine, &cx(NOW), "otp", StepOp::Submit, &otp(&code)).await.unwrap() else {
        panic!("the right code after the password signs in");
    };
    assert_eq!(login.result.amr, vec!["pwd", "otp", "mfa"]);
    // Done: the same interaction has nothing left to continue.
    let after = step(&engine, &cx(NOW), "otp", StepOp::Submit, &otp(&code)).await.unwrap();
    assert_eq!(after, StepOutcome::NotAllowed);

    // Wrong codes after a right password lock the identifier like wrong passwords do.
    let other = AuthContext { interaction: "ix2".into(), ..cx(NOW + 60) };
    step(&engine, &other, "pwd", StepOp::Submit, &pwd).await.unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(step(&engine, &other, "otp", StepOp::Submit, &otp("000000")).await.unwrap());
    }
    assert_eq!(outcomes[0], StepOutcome::Refused(Refusal::Invalid));
    assert!(matches!(outcomes[3], StepOutcome::Refused(Refusal::Locked { .. })), "{outcomes:?}");
    let code = totp::current_code(&e.authenticator.secret, TotpParams::default(), NOW + 60).unwrap();
    let locked = step(&engine, &other, "otp", StepOp::Submit, &otp(&code)).await.unwrap();
    assert!(matches!(locked, StepOutcome::Refused(Refusal::Locked { .. })), "the right code waits too: {locked:?}");
}

/// Two requests taking the same step of one login at once: one moves it on, the other is told.
#[tokio::test]
async fn of_two_concurrent_steps_of_one_login_one_wins() {
    let (d, _t) = directory().await;
    let subject = professional(&d, "899700000007", "a long passphrase").await;
    let e = totp::enroll(&d, &subject, "899700000007", "Caducée", true, NOW - 300).await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let settings = EngineSettings { failure_floor: Duration::from_millis(1), ..Default::default() };
    let engine = Arc::new(AuthEngine::new(d.clone(), store, settings).with_codes());
    let pwd = Input::new().with("username", "899700000007").with("password", "a long passphrase");
    step(&engine, &cx(NOW), "pwd", StepOp::Submit, &pwd).await.unwrap();
    let code = totp::current_code(&e.authenticator.secret, TotpParams::default(), NOW).unwrap();
    let typed = Input::new().with("otp", code);
    let here = cx(NOW);
    let (a, b) = tokio::join!(
        step(&engine, &here, "otp", StepOp::Submit, &typed),
        step(&engine, &here, "otp", StepOp::Submit, &typed),
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let wins = outcomes.iter().filter(|o| matches!(o, StepOutcome::Success(_))).count();
    assert_eq!(wins, 1, "{outcomes:?}");
}

/// However a request names its step, a password it carries is checked against the
/// identifier's lockout: a `begin` with the fields typed is a `submit`.
#[tokio::test]
async fn a_password_sent_with_any_step_counts_toward_the_lockout() {
    let (d, _t) = directory().await;
    professional(&d, "899700000008", "a long passphrase").await;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let policy = LockoutPolicy { max_failures: 2, ..LockoutPolicy::default() };
    let settings = EngineSettings { failure_floor: Duration::from_millis(1), lockout: policy, ..Default::default() };
    let engine = AuthEngine::new(d.clone(), store, settings).with_codes();
    let wrong = Input::new().with("username", "899700000008").with("password", "not it");
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(step(&engine, &cx(NOW), "pwd", StepOp::Begin, &wrong).await.unwrap());
    }
    assert_eq!(outcomes[0], StepOutcome::Refused(Refusal::Invalid));
    assert!(matches!(outcomes[2], StepOutcome::Refused(Refusal::Locked { .. })), "{outcomes:?}");
    let right = Input::new().with("username", "899700000008").with("password", "a long passphrase");
    let locked = step(&engine, &cx(NOW), "pwd", StepOp::Begin, &right).await.unwrap();
    assert!(matches!(locked, StepOutcome::Refused(Refusal::Locked { .. })), "{locked:?}");
}
