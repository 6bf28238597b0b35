//! The shared suite against SQLite: a fresh database file per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;

use directory::{DataKey, Directory, DirectoryError};
use suite::Ctx;

async fn setup() -> (tempfile::TempDir, Ctx) {
    let tmp = tempfile::tempdir().unwrap();
    // No file yet: connect must create it.
    let url = format!("sqlite://{}", tmp.path().join("directory.db").display());
    let ctx = Ctx::new(url).await;
    (tmp, ctx)
}

macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (_tmp, ctx) = setup().await;
                suite::$name(&ctx).await;
            }
        )*
    };
}

suite_tests!(
    migrate_twice,
    concurrent_migrations,
    professionals_crud,
    professionals_conflicts_and_errors,
    clients_crud,
    authenticators_crud,
    authenticator_secret_encrypted_at_rest,
    advance_counter_is_monotonic,
    advance_counter_concurrent_single_winner,
    refresh_tokens_lifecycle,
    refresh_consume_concurrent_single_winner,
    signing_keys_lifecycle,
    signing_keys_encrypted_at_rest,
    audit_append_and_query,
    audit_detects_edited_record,
    audit_detects_edited_details,
    audit_detects_deleted_record,
    audit_concurrent_appends_keep_one_chain,
    audit_group_commit_returns_each_callers_record,
    logout_deliveries_lifecycle,
    push_blocks_lifecycle,
);

#[tokio::test]
async fn in_memory_database_works() {
    let dir = Directory::connect("sqlite::memory:", DataKey::from_bytes(suite::KEY)).await.unwrap();
    dir.migrate().await.unwrap();
    dir.migrate().await.unwrap();
    assert_eq!(dir.backend(), "sqlite");
    assert_eq!(dir.professionals().count().await.unwrap(), 0);
}

#[tokio::test]
async fn unreachable_file_is_unavailable() {
    let err = Directory::connect("sqlite:///nonexistent-caducee-dir/sub/directory.db", DataKey::from_bytes(suite::KEY))
        .await
        .unwrap_err();
    assert!(matches!(err, DirectoryError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn unknown_scheme_is_invalid() {
    let err = Directory::connect("mysql://localhost/x", DataKey::from_bytes(suite::KEY)).await.unwrap_err();
    assert!(matches!(err, DirectoryError::Invalid(_)), "{err:?}");
}
