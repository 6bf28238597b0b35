//! Authenticators: CRUD, encryption at rest, the single-use counter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const SEED: &[u8] = b"12345678901234567890-totp-seed";

fn totp(subject: Option<&str>, serial: Option<&str>) -> NewAuthenticator {
    NewAuthenticator {
        subject: subject.map(str::to_owned),
        kind: "totp".into(),
        label: "Phone".into(),
        serial: serial.map(str::to_owned),
        secret: Zeroizing::new(SEED.to_vec()),
        params: json!({"algorithm": "SHA1", "digits": 6, "period": 30}),
        active: false,
        counter: 0,
    }
}

pub async fn authenticators_crud(ctx: &Ctx) {
    let auths = ctx.dir.authenticators();
    let a = auths.create(totp(Some("sub-1"), None)).await.unwrap();
    let b = auths.create(totp(Some("sub-1"), None)).await.unwrap();
    let token = auths.create(NewAuthenticator { kind: "hotp".into(), ..totp(None, Some("SN-0001")) }).await.unwrap();
    auths.create(totp(Some("sub-2"), None)).await.unwrap();

    let dup = auths.create(totp(None, Some("SN-0001"))).await;
    assert!(matches!(dup, Err(DirectoryError::Conflict(_))), "{dup:?}");

    let got = auths.get(&a.id).await.unwrap().unwrap();
    assert_eq!(&got.secret[..], SEED);
    assert_eq!(got.params, json!({"algorithm": "SHA1", "digits": 6, "period": 30}));
    assert!(!got.active);
    assert!(auths.get("nope").await.unwrap().is_none());
    let debug = format!("{got:?}");
    assert!(!debug.contains("totp-seed") && !debug.contains("49, 50, 51"), "{debug}");

    let by_serial = auths.get_by_serial("SN-0001").await.unwrap().unwrap();
    assert_eq!(by_serial.id, token.id);
    assert_eq!(by_serial.kind, "hotp");
    assert!(auths.get_by_serial("SN-9999").await.unwrap().is_none());

    let mine: BTreeSet<String> = auths.list_for_subject("sub-1").await.unwrap().into_iter().map(|x| x.id).collect();
    assert_eq!(mine, BTreeSet::from([a.id.clone(), b.id.clone()]));
    assert_eq!(auths.list_all().await.unwrap().len(), 4);

    auths.activate(&a.id).await.unwrap();
    assert!(auths.get(&a.id).await.unwrap().unwrap().active);
    auths.deactivate(&a.id).await.unwrap();
    assert!(!auths.get(&a.id).await.unwrap().unwrap().active);

    auths.assign(&token.id, Some("sub-1".into())).await.unwrap();
    assert_eq!(auths.list_for_subject("sub-1").await.unwrap().len(), 3);
    auths.assign(&token.id, None).await.unwrap();
    assert_eq!(auths.get(&token.id).await.unwrap().unwrap().subject, None);
    // The secret is bound to the row id and kind, not to its owner: reassignment keeps it readable.
    assert_eq!(&auths.get(&token.id).await.unwrap().unwrap().secret[..], SEED);

    auths.set_params(&token.id, &json!({"digits": 8, "drift": 2})).await.unwrap();
    assert_eq!(auths.get(&token.id).await.unwrap().unwrap().params, json!({"digits": 8, "drift": 2}));
    assert!(matches!(auths.set_params("nope", &json!({})).await, Err(DirectoryError::NotFound)));

    assert!(matches!(auths.activate("nope").await, Err(DirectoryError::NotFound)));
    assert!(matches!(auths.assign("nope", None).await, Err(DirectoryError::NotFound)));

    assert!(auths.delete(&b.id).await.unwrap());
    assert!(!auths.delete(&b.id).await.unwrap());
    assert_eq!(auths.list_for_subject("sub-1").await.unwrap().len(), 1);
}

pub async fn authenticator_secret_encrypted_at_rest(ctx: &Ctx) {
    let auths = ctx.dir.authenticators();
    let a = auths.create(totp(Some("sub-1"), None)).await.unwrap();
    let b = auths.create(totp(Some("sub-2"), None)).await.unwrap();

    let raw = ctx.raw().await;
    let stored = read_blob(&raw, &format!("SELECT secret FROM authenticators WHERE id = '{}'", a.id), "secret").await;
    assert!(!contains(&stored, SEED), "the seed is stored in clear");
    assert!(stored.len() >= SEED.len() + 12 + 16);

    // Another data key cannot read it.
    let wrong = Directory::connect(&ctx.url, DataKey::from_bytes([0x13; 32])).await.unwrap();
    assert!(matches!(wrong.authenticators().get(&a.id).await, Err(DirectoryError::Crypto)));
    assert!(matches!(wrong.authenticators().list_for_subject("sub-1").await, Err(DirectoryError::Crypto)));

    // A ciphertext copied onto another row does not decrypt there.
    let sql = format!(
        "UPDATE authenticators SET secret = (SELECT secret FROM authenticators WHERE id = '{}') \
         WHERE id = '{}'",
        a.id, b.id
    );
    assert_eq!(exec(&raw, &sql).await, 1);
    assert!(matches!(auths.get(&b.id).await, Err(DirectoryError::Crypto)));
    assert_eq!(&auths.get(&a.id).await.unwrap().unwrap().secret[..], SEED);
}

pub async fn advance_counter_is_monotonic(ctx: &Ctx) {
    let auths = ctx.dir.authenticators();
    let a = auths.create(totp(Some("sub-1"), None)).await.unwrap();
    assert!(auths.advance_counter(&a.id, 100, 3000).await.unwrap());
    let got = auths.get(&a.id).await.unwrap().unwrap();
    assert_eq!((got.counter, got.last_used_at), (100, Some(3000)));
    // The same time step again (a replayed code) and an older one are refused.
    assert!(!auths.advance_counter(&a.id, 100, 3001).await.unwrap());
    assert!(!auths.advance_counter(&a.id, 99, 3001).await.unwrap());
    assert_eq!(auths.get(&a.id).await.unwrap().unwrap().last_used_at, Some(3000));
    assert!(auths.advance_counter(&a.id, 101, 3030).await.unwrap());
    assert!(!auths.advance_counter("nope", 1, 1).await.unwrap());
}

/// A passkey's name changes, and a use that moves no counter is recorded (WebAuthn credentials
/// whose authenticator keeps none); a credential id of the longest kind fits its unique serial.
pub async fn label_and_use_without_counter(ctx: &Ctx) {
    let auths = ctx.dir.authenticators();
    let serial = format!("webauthn:{}", "A".repeat(1366));
    let a = auths.create(totp(Some("sub-1"), Some(&serial))).await.unwrap();
    auths.set_label(&a.id, "Clé du cabinet").await.unwrap();
    auths.touch(&a.id, 4242).await.unwrap();
    let got = auths.get_by_serial(&serial).await.unwrap().unwrap();
    assert_eq!((got.label.as_str(), got.last_used_at, got.counter), ("Clé du cabinet", Some(4242), a.counter));
    assert!(matches!(auths.set_label("nope", "x").await, Err(directory::DirectoryError::NotFound)));
    assert!(matches!(auths.touch("nope", 1).await, Err(directory::DirectoryError::NotFound)));
}

pub async fn advance_counter_concurrent_single_winner(ctx: &Ctx) {
    let a = ctx.dir.authenticators().create(totp(Some("sub-1"), None)).await.unwrap();
    let node2 = ctx.second_node().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONCURRENCY {
        let dir = if i % 2 == 0 { ctx.dir.clone() } else { node2.clone() };
        let id = a.id.clone();
        tasks.spawn(async move { dir.authenticators().advance_counter(&id, 5000, 1).await.unwrap() });
    }
    let wins = tasks.join_all().await.into_iter().filter(|won| *won).count();
    assert_eq!(wins, 1, "a TOTP step must be accepted exactly once");
}

// ---------------------------------------------------------------------------------------------
