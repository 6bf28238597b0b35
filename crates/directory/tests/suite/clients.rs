//! Clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        secret_hash: Some("$argon2id$client".into()),
        metadata: json!({"redirect_uris": ["https://rp.example.test/cb"], "client_name": "RP"}),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        credentials_changed_at: None,
    }
}

pub async fn clients_crud(ctx: &Ctx) {
    let clients = ctx.dir.clients();
    clients.create(client("rp-b")).await.unwrap();
    clients.create(client("rp-a")).await.unwrap();
    let dup = clients.create(client("rp-a")).await;
    assert!(matches!(dup, Err(DirectoryError::Conflict(_))), "{dup:?}");

    assert_eq!(clients.get("rp-a").await.unwrap().unwrap(), client("rp-a"));
    assert!(clients.get("rp-z").await.unwrap().is_none());
    let ids: Vec<String> = clients.list().await.unwrap().into_iter().map(|c| c.client_id).collect();
    assert_eq!(ids, ["rp-a", "rp-b"]);

    let meta = json!({"redirect_uris": ["https://new.example.test/cb"], "nested": {"a": [1, 2]}});
    clients.update_metadata("rp-a", meta.clone(), None).await.unwrap();
    let got = clients.get("rp-a").await.unwrap().unwrap();
    assert_eq!(got.metadata, meta);
    assert!(got.updated_at > got.created_at);
    assert_eq!(got.credentials_changed_at, None, "a change that is not of credentials");
    clients.update_metadata("rp-a", meta.clone(), Some(1_800_000_000)).await.unwrap();
    assert_eq!(clients.get("rp-a").await.unwrap().unwrap().credentials_changed_at, Some(1_800_000_000));

    clients.set_secret_hash("rp-a", None, 1_800_000_005).await.unwrap();
    let got = clients.get("rp-a").await.unwrap().unwrap();
    assert_eq!((got.secret_hash, got.credentials_changed_at), (None, Some(1_800_000_005)));
    assert!(!format!("{:?}", client("x")).contains("argon2"));

    assert!(matches!(clients.update_metadata("rp-z", json!({}), None).await, Err(DirectoryError::NotFound)));
    assert!(matches!(clients.set_secret_hash("rp-z", None, 1).await, Err(DirectoryError::NotFound)));

    assert!(clients.delete("rp-a").await.unwrap());
    assert!(!clients.delete("rp-a").await.unwrap());
    assert_eq!(clients.list().await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
