//! Migrations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use sea_orm::DbBackend;

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

/// The refresh tokens' table carries the indexes its statements use and no other: every
/// index is written for every token stored, on the token endpoint's path. The hash (the
/// key), the grant (reuse detected), the professional then the session (logouts), the
/// expiry (the purge); revocations per client are an administrator's rare act and scan.
pub async fn refresh_token_indexes_are_those_queries_use(ctx: &Ctx) {
    let raw = ctx.raw().await;
    let backend = raw.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'refresh_tokens'",
        _ => "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'refresh_tokens'",
    };
    let mut names: Vec<String> = raw
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .collect();
    names.sort();
    let key = if backend == DbBackend::Sqlite { "sqlite_autoindex_refresh_tokens_1" } else { "refresh_tokens_pkey" };
    let mut expected =
        vec!["idx_refresh_tokens_expires_at", "idx_refresh_tokens_grant_id", "idx_refresh_tokens_subject_sid", key];
    expected.sort_unstable();
    assert_eq!(names, expected);
    if backend == DbBackend::Sqlite {
        // A session's revocation and a professional's both go through the one index.
        for filter in ["subject = 's' AND sid = 'x'", "subject = 's'"] {
            let plan = raw
                .query_all_raw(Statement::from_string(
                    backend,
                    format!("EXPLAIN QUERY PLAN UPDATE refresh_tokens SET revoked_at = 1 WHERE {filter} AND revoked_at IS NULL"),
                ))
                .await
                .unwrap();
            let detail: Vec<String> = plan.iter().map(|r| r.try_get::<String>("", "detail").unwrap()).collect();
            assert!(detail.iter().any(|d| d.contains("idx_refresh_tokens_subject_sid")), "{filter}: {detail:?}");
        }
    }
}
