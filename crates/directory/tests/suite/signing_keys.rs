//! Signing keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const PKCS8: &[u8] = b"0\x81\x87\x02\x01\x000\x13-fake-pkcs8-private-key-material";

fn signing_key(kid: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        private_pkcs8: Zeroizing::new(PKCS8.to_vec()),
        created_at,
        retired_at: None,
        publish_until: None,
    }
}

pub async fn signing_keys_lifecycle(ctx: &Ctx) {
    let keys = ctx.dir.signing_keys();
    keys.insert(signing_key("k2", 200)).await.unwrap();
    keys.insert(signing_key("k1", 100)).await.unwrap();
    keys.insert(signing_key("k3", 300)).await.unwrap();
    assert!(matches!(keys.insert(signing_key("k1", 400)).await, Err(DirectoryError::Conflict(_))));

    let all = keys.list().await.unwrap();
    let kids: Vec<&str> = all.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["k1", "k2", "k3"]);
    assert_eq!(&all[0].private_pkcs8[..], PKCS8);
    assert!(!format!("{:?}", all[0]).contains("fake-pkcs8"));

    keys.retire("k1", 500, 1000).await.unwrap();
    keys.retire("k2", 600, 2000).await.unwrap();
    assert!(matches!(keys.retire("nope", 1, 1).await, Err(DirectoryError::NotFound)));
    let k1 = keys.list().await.unwrap().remove(0);
    assert_eq!((k1.retired_at, k1.publish_until), (Some(500), Some(1000)));

    assert_eq!(keys.purge(1000).await.unwrap(), 0, "published until 1000 inclusive");
    assert_eq!(keys.purge(1001).await.unwrap(), 1);
    let kids: Vec<String> = keys.list().await.unwrap().into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, ["k2", "k3"]);
    assert_eq!(keys.purge(i64::MAX).await.unwrap(), 1, "the current key is never purged");
}

pub async fn signing_keys_encrypted_at_rest(ctx: &Ctx) {
    ctx.dir.signing_keys().insert(signing_key("k1", 100)).await.unwrap();
    let raw = ctx.raw().await;
    let stored = read_blob(&raw, "SELECT private_key FROM signing_keys WHERE kid = 'k1'", "private_key").await;
    assert!(!contains(&stored, b"fake-pkcs8"), "the private key is stored in clear");

    let wrong = Directory::connect(&ctx.url, DataKey::from_bytes([0x13; 32])).await.unwrap();
    assert!(matches!(wrong.signing_keys().list().await, Err(DirectoryError::Crypto)));

    // Renaming the kid breaks the AAD binding.
    assert_eq!(exec(&raw, "UPDATE signing_keys SET kid = 'k9' WHERE kid = 'k1'").await, 1);
    assert!(matches!(ctx.dir.signing_keys().list().await, Err(DirectoryError::Crypto)));
}

// ---------------------------------------------------------------------------------------------
