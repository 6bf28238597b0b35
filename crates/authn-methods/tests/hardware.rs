//! OTP tokens: PSKC import (RFC 6030's own examples), HOTP look-ahead and resynchronisation,
//! TOTP drift tracking, single use, and login through the engine — on a real SQLite directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use authn_methods::engine::EngineSettings;
use authn_methods::hardware::{self, HardwareTokenMethod, KIND_HOTP, KIND_TOTP, TokenAdminError, TokenParams, Windows};
use authn_methods::otp::{HashAlgorithm, TokenKind, hotp, time_step};
use authn_methods::pskc::{ContainerKey, PskcError, parse};
use authn_methods::{AuthContext, AuthEngine, LoginAttempt};
use directory::{DataKey, Directory, NewProfessional};
use session_store::{MemoryStore, SessionStore};
use zeroize::Zeroizing;

const SEED: &[u8] = b"12345678901234567890";
const NOW: i64 = 1_800_000_000;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/pskc/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn preshared() -> ContainerKey {
    let hex = "12345678901234567890123456789012";
    let bytes = (0..16).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    ContainerKey::PreShared(Zeroizing::new(bytes))
}

#[test]
fn rfc6030_figure2_basic_container() {
    let keys = parse(&fixture("rfc6030-figure2.xml"), &ContainerKey::None).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].secret.as_slice(), b"1234");
    assert_eq!(keys[0].kind, TokenKind::Hotp);
    assert_eq!(keys[0].serial, "12345678", "no DeviceInfo: the key Id serves as serial");
    assert_eq!(keys[0].issuer.as_deref(), Some("Issuer-A"));
}

#[test]
fn rfc6030_figure3_supplementary_data() {
    let keys = parse(&fixture("rfc6030-figure3.xml"), &ContainerKey::None).unwrap();
    let k = &keys[0];
    assert_eq!(k.secret.as_slice(), SEED);
    assert_eq!(
        (k.serial.as_str(), k.manufacturer.as_deref(), k.digits, k.counter),
        ("987654321", Some("Manufacturer"), 8, 0)
    );
}

#[test]
fn rfc6030_figure6_preshared_key_with_mac() {
    let keys = parse(&fixture("rfc6030-figure6.xml"), &preshared()).unwrap();
    assert_eq!(keys[0].secret.as_slice(), SEED);
    assert_eq!(keys[0].digits, 8);
    assert_eq!(parse(&fixture("rfc6030-figure6.xml"), &ContainerKey::None).unwrap_err(), PskcError::KeyNeeded);
    let wrong = ContainerKey::PreShared(Zeroizing::new(vec![0x11; 16]));
    assert!(matches!(
        parse(&fixture("rfc6030-figure6.xml"), &wrong).unwrap_err(),
        PskcError::Decrypt(_) | PskcError::BadMac(_)
    ));
}

#[test]
fn rfc6030_figure7_pbkdf2_passphrase() {
    let keys =
        parse(&fixture("rfc6030-figure7.xml"), &ContainerKey::Passphrase(Zeroizing::new("qwerty".into()))).unwrap();
    assert_eq!(keys[0].secret.as_slice(), SEED);
    assert_eq!((keys[0].serial.as_str(), keys[0].manufacturer.as_deref()), ("987654321", Some("TokenVendorAcme")));
    let wrong = parse(&fixture("rfc6030-figure7.xml"), &ContainerKey::Passphrase(Zeroizing::new("azerty".into())));
    assert!(matches!(wrong.unwrap_err(), PskcError::Decrypt(_) | PskcError::BadMac(_)));
    assert_eq!(
        parse(&fixture("rfc6030-figure7.xml"), &preshared()).unwrap_err(),
        PskcError::WrongKeyKind("pre-shared key")
    );
}

#[test]
fn a_tampered_ciphertext_fails_the_mac() {
    let xml = fixture("rfc6030-figure6.xml").replace("AAECAwQFBgcICQoLDA0OD+cI", "AAECAwQFBgcICQoLDA0OD+cJ");
    assert_eq!(parse(&xml, &preshared()).unwrap_err(), PskcError::BadMac("12345678".into()));
}

#[test]
fn unsupported_content_is_refused_not_guessed() {
    let ocra = fixture("rfc6030-figure3.xml").replace("pskc:hotp", "pskc:ocra");
    assert!(matches!(
        parse(&ocra, &ContainerKey::None).unwrap_err(),
        PskcError::Unsupported { what: "key algorithm", .. }
    ));
    let hex = fixture("rfc6030-figure3.xml").replace("Encoding=\"DECIMAL\"", "Encoding=\"HEXADECIMAL\"");
    assert!(matches!(
        parse(&hex, &ContainerKey::None).unwrap_err(),
        PskcError::Unsupported { what: "code encoding", .. }
    ));
    assert!(matches!(parse("<not-pskc/>", &ContainerKey::None).unwrap_err(), PskcError::NotPskc(_)));
    assert!(matches!(parse("garbage", &ContainerKey::None).unwrap_err(), PskcError::NotPskc(_)));
}

async fn directory() -> (Directory, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let d = Directory::connect(&url, DataKey::generate().unwrap()).await.unwrap();
    d.migrate().await.unwrap();
    (d, dir)
}

async fn professional(d: &Directory, id: &str) -> String {
    let hash = authn_methods::password::hash_password("a long passphrase").unwrap();
    let p = d
        .professionals()
        .create(NewProfessional {
            national_id: id.into(),
            given_name: "A".into(),
            family_name: "B".into(),
            password_hash: Some(hash),
            ..Default::default()
        })
        .await
        .unwrap();
    p.subject
}

#[tokio::test]
async fn import_assign_and_sign_in_with_a_hotp_token() {
    let (d, _t) = directory().await;
    let subject = professional(&d, "899700000011").await;
    let keys = parse(&fixture("rfc6030-figure6.xml"), &preshared()).unwrap();
    let imported = hardware::import(&d, keys).await.unwrap();
    assert_eq!(imported[0].kind, KIND_HOTP);
    assert!(!imported[0].active && imported[0].subject.is_none(), "unassigned until an operator assigns it");
    // The same file twice: refused, nothing written.
    let again = hardware::import(&d, parse(&fixture("rfc6030-figure6.xml"), &preshared()).unwrap()).await;
    assert!(matches!(again, Err(TokenAdminError::Duplicate(s)) if s == "987654321"));
    // Figure 2's four-byte seed is too weak to import.
    let weak = hardware::import(&d, parse(&fixture("rfc6030-figure2.xml"), &ContainerKey::None).unwrap()).await;
    assert!(matches!(weak, Err(TokenAdminError::WeakSecret(_))));

    hardware::assign(&d, "987654321", &subject).await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let engine = AuthEngine::new(
        d.clone(),
        store,
        EngineSettings { failure_floor: Duration::from_millis(1), ..Default::default() },
    );
    let cx = AuthContext { now: NOW, source_ip: None, interaction: "ix".into() };
    let code0 = hotp(SEED, 0, 8, HashAlgorithm::Sha1);
    let LoginAttempt::Success(r) =
        engine.password_and_otp(&cx, "899700000011", "a long passphrase", &code0).await.unwrap()
    else {
        panic!("the token's first code signs in");
    };
    assert!(r.amr.contains(&"hwk".to_owned()) && r.amr.contains(&"otp".to_owned()));
    assert_eq!(r.acr, "eidas1");
    let replay = engine.password_and_otp(&cx, "899700000011", "a long passphrase", &code0).await.unwrap();
    assert!(matches!(replay, LoginAttempt::Refused(_)), "a code is accepted once");

    hardware::unassign(&d, "987654321").await.unwrap();
    let code1 = hotp(SEED, 1, 8, HashAlgorithm::Sha1);
    let after = engine.password_and_otp(&cx, "899700000011", "a long passphrase", &code1).await.unwrap();
    assert!(matches!(after, LoginAttempt::Refused(_)), "an unassigned token signs nobody in");
}

async fn hotp_token(d: &Directory, subject: &str) -> directory::AuthenticatorRecord {
    hardware::import(d, parse(&fixture("rfc6030-figure3.xml"), &ContainerKey::None).unwrap()).await.unwrap();
    hardware::assign(d, "987654321", subject).await.unwrap();
    d.authenticators().get_by_serial("987654321").await.unwrap().unwrap()
}

#[tokio::test]
async fn hotp_look_ahead_then_resynchronisation_with_two_codes() {
    let (d, _t) = directory().await;
    let subject = professional(&d, "899700000012").await;
    let m = HardwareTokenMethod::new(d.clone(), Windows::default());
    let code = |c: u64| hotp(SEED, c, 8, HashAlgorithm::Sha1);
    let token = || async { d.authenticators().get_by_serial("987654321").await.unwrap().unwrap() };
    hotp_token(&d, &subject).await;

    assert!(m.verify(&token().await, &code(5), NOW).await.unwrap(), "within the look-ahead window");
    assert!(!m.verify(&token().await, &code(3), NOW).await.unwrap(), "the counter never goes back");
    assert!(!m.verify(&token().await, &code(5), NOW).await.unwrap(), "nor is a code used twice");
    assert!(!m.verify(&token().await, &code(50), NOW).await.unwrap(), "beyond the window: refused alone");
    let pair = format!("{} {}", code(50), code(51));
    assert!(m.verify(&token().await, &pair, NOW).await.unwrap(), "two consecutive codes resynchronise");
    assert_eq!(token().await.counter, 52);
    assert!(m.verify(&token().await, &code(52), NOW).await.unwrap(), "and the next code works");
    let not_consecutive = format!("{} {}", code(60), code(62));
    assert!(!m.verify(&token().await, &not_consecutive, NOW).await.unwrap());
}

#[tokio::test]
async fn concurrent_submissions_of_one_token_code_let_one_through() {
    let (d, _t) = directory().await;
    let subject = professional(&d, "899700000013").await;
    let record = hotp_token(&d, &subject).await;
    let code = hotp(SEED, 0, 8, HashAlgorithm::Sha1);
    let mut handles = Vec::new();
    for _ in 0..20 {
        let (d, r, c) = (d.clone(), record.clone(), code.clone());
        handles.push(tokio::spawn(async move {
            HardwareTokenMethod::new(d, Windows::default()).verify(&r, &c, NOW).await.unwrap()
        }));
    }
    let mut wins = 0;
    for h in handles {
        wins += usize::from(h.await.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn totp_tokens_follow_their_clock_drift() {
    let (d, _t) = directory().await;
    let subject = professional(&d, "899700000014").await;
    let imported =
        hardware::import(&d, parse(&fixture("totp-tokens.xml"), &ContainerKey::None).unwrap()).await.unwrap();
    assert_eq!(imported.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(), vec![KIND_TOTP, KIND_TOTP]);
    hardware::assign(&d, "TOTP-0001", &subject).await.unwrap();
    let m = HardwareTokenMethod::new(d.clone(), Windows::default());
    let token = || async { d.authenticators().get_by_serial("TOTP-0001").await.unwrap().unwrap() };
    let code_at = |t: i64| hotp(SEED, time_step(t, 0, 30) as u64, 6, HashAlgorithm::Sha1);

    // The token's clock runs one step (30 s) fast: accepted, and the drift is remembered.
    assert!(m.verify(&token().await, &code_at(NOW + 30), NOW).await.unwrap());
    let params: TokenParams = serde_json::from_value(token().await.params).unwrap();
    assert_eq!(params.drift, 1);
    // Later, two steps fast relative to the server: still within ±1 of the tracked drift.
    assert!(m.verify(&token().await, &code_at(NOW + 600 + 60), NOW + 600).await.unwrap());
    // Far off (5 minutes): refused alone, accepted as two consecutive codes.
    let far = NOW + 1200;
    assert!(!m.verify(&token().await, &code_at(far + 300), far).await.unwrap());
    let pair = format!("{} {}", code_at(far + 300), code_at(far + 330));
    assert!(m.verify(&token().await, &pair, far).await.unwrap());
    // A code already used, or older, never works again.
    assert!(!m.verify(&token().await, &code_at(far + 300), far).await.unwrap());
}
