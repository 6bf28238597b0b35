//! The shared suite against PostgreSQL: a fresh server per test (started by the harness from the
//! Debian binaries).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;

use std::time::{Duration, Instant};

use directory::{DataKey, Directory, DirectoryError};
use suite::Ctx;
use test_support::postgres::PostgresServer;

async fn server() -> PostgresServer {
    tokio::task::spawn_blocking(PostgresServer::start).await.unwrap().unwrap()
}

async fn setup() -> (PostgresServer, Ctx) {
    let pg = server().await;
    let ctx = Ctx::new(pg.url()).await;
    (pg, ctx)
}

macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (_pg, ctx) = setup().await;
                suite::$name(&ctx).await;
            }
        )*
    };
}

suite_tests!(
    migrate_twice,
    concurrent_migrations,
    refresh_token_indexes_are_those_queries_use,
    professionals_crud,
    professionals_conflicts_and_errors,
    clients_crud,
    authenticators_crud,
    authenticator_secret_encrypted_at_rest,
    advance_counter_is_monotonic,
    advance_counter_concurrent_single_winner,
    label_and_use_without_counter,
    refresh_tokens_lifecycle,
    refresh_consume_concurrent_single_winner,
    refresh_rotation_stores_only_the_winners_successor,
    refresh_writes_carry_their_record_only_when_they_take_effect,
    signing_keys_lifecycle,
    signing_keys_encrypted_at_rest,
    audit_append_and_query,
    audit_detects_edited_record,
    audit_detects_edited_details,
    audit_detects_deleted_record,
    audit_concurrent_appends_keep_one_chain,
    audit_group_commit_returns_each_callers_record,
    item_13_a_chain_rewritten_without_the_key_is_caught,
    item_13_an_exported_head_catches_truncation_and_rebuilt_chains,
    item_13_unkeyed_records_are_only_accepted_before_the_first_keyed_one,
    logout_deliveries_lifecycle,
    push_blocks_lifecycle,
    admin_roles_lifecycle,
    professionals_search,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_migrations() {
    // Several nodes starting at once on an empty database: the advisory lock serialises them.
    let pg = server().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let url = pg.url();
        tasks.spawn(async move {
            let dir = Directory::connect(&url, DataKey::from_bytes(suite::KEY)).await.unwrap();
            dir.migrate().await
        });
    }
    for result in tasks.join_all().await {
        result.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_while_down_and_recovers() {
    let (pg, ctx) = setup().await;
    assert_eq!(ctx.dir.backend(), "postgres");
    ctx.dir.professionals().count().await.unwrap();

    let pg = tokio::task::spawn_blocking(move || {
        pg.stop().unwrap();
        pg
    })
    .await
    .unwrap();
    let started = Instant::now();
    let err = ctx.dir.professionals().get_by_national_id("899700000001").await.unwrap_err();
    assert!(matches!(err, DirectoryError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(15), "fail fast, not hang");
    assert!(matches!(ctx.dir.ping().await, Err(DirectoryError::Unavailable(_))));

    let pg = tokio::task::spawn_blocking(move || {
        pg.restart().unwrap();
        pg
    })
    .await
    .unwrap();
    // The same handle serves again once the database is back, without a restart of ours.
    ctx.dir.ping().await.unwrap();
    assert_eq!(ctx.dir.professionals().count().await.unwrap(), 0);
    drop(pg);
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let port = test_support::free_port().unwrap();
    let url = format!("postgres://caducee@127.0.0.1:{port}/postgres");
    let err = Directory::connect(&url, DataKey::from_bytes(suite::KEY)).await.unwrap_err();
    assert!(matches!(err, DirectoryError::Unavailable(_)), "{err:?}");
}
