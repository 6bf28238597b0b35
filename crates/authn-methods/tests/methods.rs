//! The methods and the engine against real storage (SQLite directory, in-process store).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use authn_methods::engine::EngineSettings;
use authn_methods::lockout::{Admission, Lockout, LockoutPolicy};
use authn_methods::totp::{self, TotpParams};
use authn_methods::{AuthContext, AuthEngine, LoginAttempt, Refusal};
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
    AuthContext { now, source_ip: Some("192.0.2.1".into()), interaction: "ix".into() }
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

#[tokio::test]
async fn lockouts_escalate_and_success_wipes_the_slate() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let policy = LockoutPolicy { max_failures: 3, base_delay: Duration::from_secs(1), ..LockoutPolicy::default() };
    let lock = Lockout::new(store, policy);
    for _ in 0..2 {
        assert_eq!(lock.admit("id", NOW).await.unwrap(), Admission::Allowed);
        assert_eq!(lock.failed("id", NOW).await.unwrap(), None);
    }
    assert_eq!(lock.admit("id", NOW).await.unwrap(), Admission::Allowed);
    assert_eq!(lock.failed("id", NOW).await.unwrap(), Some(NOW + 1), "third failure: locked for the base delay");
    assert_eq!(lock.admit("id", NOW).await.unwrap(), Admission::Locked { retry_after: 1 });
    // The lock lives in the store for its real duration; once it is gone, the next one lasts
    // twice as long.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        lock.admit("id", NOW + 100).await.unwrap();
    }
    assert_eq!(lock.failed("id", NOW + 100).await.unwrap(), Some(NOW + 102));
    // A success forgets the failures and the escalation.
    lock.reset("id").await.unwrap();
    lock.admit("id", NOW + 300).await.unwrap();
    lock.succeeded("id").await.unwrap();
    for _ in 0..3 {
        lock.admit("id", NOW + 400).await.unwrap();
    }
    assert_eq!(lock.failed("id", NOW + 400).await.unwrap(), Some(NOW + 401), "back to the base delay");
}

#[tokio::test]
async fn the_engine_combines_password_and_totp_into_eidas1() {
    let (d, _t) = directory().await;
    let subject = professional(&d, "899700000004", "a long passphrase").await;
    let e = totp::enroll(&d, &subject, "899700000004", "Caducée", true, NOW - 300).await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let settings = EngineSettings { failure_floor: Duration::from_millis(1), ..EngineSettings::default() };
    let engine = AuthEngine::new(d.clone(), store, settings);
    let code = totp::current_code(&e.authenticator.secret, TotpParams::default(), NOW).unwrap();

    let wrong = engine.password_and_otp(&cx(NOW), "899700000004", "not the passphrase", &code).await.unwrap();
    assert_eq!(wrong, LoginAttempt::Refused(Refusal::Invalid));
    let unknown = engine.password_and_otp(&cx(NOW), "899799999999", "a long passphrase", &code).await.unwrap();
    assert_eq!(unknown, LoginAttempt::Refused(Refusal::Invalid));
    let no_otp = engine.password_and_otp(&cx(NOW), "899700000004", "a long passphrase", "").await.unwrap();
    assert_eq!(no_otp, LoginAttempt::Refused(Refusal::Invalid));

    let LoginAttempt::Success(result) =
        engine.password_and_otp(&cx(NOW), " 899700000004 ", "a long passphrase", &code).await.unwrap()
    else {
        panic!("right password and code must succeed");
    };
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
}
