//! Migrations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

pub async fn migrate_twice(ctx: &Ctx) {
    ctx.dir.migrate().await.unwrap();
    ctx.dir.migrate().await.unwrap();
    ctx.dir.ping().await.unwrap();
    // Data written before a re-run survives it.
    ctx.dir.professionals().create(new_professional("899700000001")).await.unwrap();
    ctx.dir.migrate().await.unwrap();
    assert_eq!(ctx.dir.professionals().count().await.unwrap(), 1);
}

pub async fn concurrent_migrations(ctx: &Ctx) {
    // Two nodes starting together on an already-migrated database, then on each other's heels.
    let a = ctx.second_node().await;
    let b = ctx.second_node().await;
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
}

// ---------------------------------------------------------------------------------------------
