//! Back-channel logout deliveries: recording attempts, claiming due retries once across nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use directory::{DeliveryQuery, DeliveryStatus, LogoutDeliveryRecord};

use super::*;

fn delivery(id: &str, client: &str, next: Option<i64>) -> LogoutDeliveryRecord {
    LogoutDeliveryRecord {
        id: id.into(),
        sid: "sid-1".into(),
        subject: "sub-1".into(),
        client_id: client.into(),
        uri: format!("https://{client}.example/logout"),
        status: DeliveryStatus::Pending,
        attempts: 1,
        last_error: Some("timeout".into()),
        next_attempt_at: next,
        created_at: 100,
        updated_at: 100,
    }
}

pub async fn logout_deliveries_lifecycle(ctx: &Ctx) {
    let d = ctx.dir.logout_deliveries();
    d.insert(&delivery("a", "rp1", Some(110))).await.unwrap();
    d.insert(&delivery("b", "rp2", Some(500))).await.unwrap();
    d.insert(&LogoutDeliveryRecord {
        status: DeliveryStatus::Delivered,
        next_attempt_at: None,
        ..delivery("c", "rp3", None)
    })
    .await
    .unwrap();

    let all = d.query(&DeliveryQuery { sid: Some("sid-1".into()), ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 3);
    let pending =
        d.query(&DeliveryQuery { status: Some(DeliveryStatus::Pending), ..Default::default() }).await.unwrap();
    assert_eq!(pending.len(), 2);

    // Only what is due is claimed, and a claim is taken once even by two nodes.
    let other = ctx.second_node().await;
    let other = other.logout_deliveries();
    let (mine, theirs) = tokio::join!(d.claim_due(200, 260, 10), other.claim_due(200, 260, 10));
    let (mine, theirs) = (mine.unwrap(), theirs.unwrap());
    assert_eq!(mine.len() + theirs.len(), 1, "{mine:?} {theirs:?}");
    assert_eq!(mine.iter().chain(&theirs).next().unwrap().id, "a");
    assert!(d.claim_due(200, 260, 10).await.unwrap().is_empty(), "leased until 260");

    d.update("a", DeliveryStatus::Delivered, 2, None, None, 210).await.unwrap();
    let a = d.get("a").await.unwrap().unwrap();
    assert_eq!((a.status, a.attempts, a.last_error, a.updated_at), (DeliveryStatus::Delivered, 2, None, 210));
    assert!(matches!(d.update("zz", DeliveryStatus::Failed, 1, None, None, 1).await, Err(DirectoryError::NotFound)));
    assert!(d.claim_due(10_000, 10_100, 10).await.unwrap().iter().all(|r| r.id == "b"));
}

/// A push block is set once (the first reason stays), seen by a second node, and lifted once.
pub async fn push_blocks_lifecycle(ctx: &Ctx) {
    let blocks = ctx.dir.push_blocks();
    assert_eq!(blocks.get("sub-1").await.unwrap(), None);
    assert!(blocks.block("sub-1", "not_me", None, 100).await.unwrap());
    assert!(!blocks.block("sub-1", "admin", Some("admin-1"), 200).await.unwrap());
    let other = ctx.second_node().await;
    let seen = other.push_blocks().get("sub-1").await.unwrap().unwrap();
    assert_eq!((seen.reason.as_str(), seen.actor, seen.blocked_at), ("not_me", None, 100));
    assert_eq!(blocks.get("sub-2").await.unwrap(), None);
    assert!(other.push_blocks().unblock("sub-1").await.unwrap());
    assert!(!blocks.unblock("sub-1").await.unwrap());
    assert_eq!(blocks.get("sub-1").await.unwrap(), None);
}

pub async fn admin_roles_lifecycle(ctx: &Ctx) {
    let roles = ctx.dir.admin_roles();
    assert!(!roles.is_admin("sub-1").await.unwrap());
    assert!(roles.grant("sub-1", Some("cli:ops"), 100).await.unwrap());
    // A second grant keeps the first one's author and time.
    assert!(!roles.grant("sub-1", None, 200).await.unwrap());
    let other = ctx.second_node().await;
    let seen = other.admin_roles().get("sub-1").await.unwrap().unwrap();
    assert_eq!((seen.granted_by.as_deref(), seen.granted_at), (Some("cli:ops"), 100));
    assert!(roles.grant("sub-2", None, 150).await.unwrap());
    let all: Vec<String> = roles.list().await.unwrap().into_iter().map(|r| r.subject).collect();
    assert_eq!(all, ["sub-1", "sub-2"]);
    assert!(other.admin_roles().revoke("sub-1").await.unwrap());
    assert!(!roles.revoke("sub-1").await.unwrap());
    assert!(!roles.is_admin("sub-1").await.unwrap());
    assert!(roles.is_admin("sub-2").await.unwrap());
}

pub async fn professionals_search(ctx: &Ctx) {
    let pros = ctx.dir.professionals();
    pros.create(new_professional("899700000001")).await.unwrap();
    let mut other = new_professional("899700000002");
    other.given_name = "Paul".into();
    other.family_name = "Dupont_Durand".into();
    pros.create(other).await.unwrap();
    let ids = |list: Vec<directory::Professional>| list.into_iter().map(|p| p.national_id).collect::<Vec<_>>();
    assert_eq!(ids(pros.search("899700000002", 10).await.unwrap()), ["899700000002"]);
    // Names, whatever their case, on both backends.
    assert_eq!(ids(pros.search("marTIN", 10).await.unwrap()), ["899700000001"]);
    assert_eq!(ids(pros.search("pau", 10).await.unwrap()), ["899700000002"]);
    // A wildcard typed is a character, not "anything".
    assert_eq!(ids(pros.search("_", 10).await.unwrap()), ["899700000002"]);
    assert!(pros.search("%", 10).await.unwrap().is_empty());
    assert!(pros.search("  ", 10).await.unwrap().is_empty());
    assert_eq!(pros.search("a", 1).await.unwrap().len(), 1);
}
