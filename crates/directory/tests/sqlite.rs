//! The shared suite against SQLite: a fresh database file per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;

use directory::{AuditEvent, DataKey, Directory, DirectoryError};
use sea_orm::{
    ConnectionTrait as _, Database, DbBackend, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait as _,
};
use suite::{Ctx, assert_intact};

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

#[tokio::test]
async fn in_memory_database_works() {
    let dir = Directory::connect("sqlite::memory:", DataKey::from_bytes(suite::KEY)).await.unwrap();
    dir.migrate().await.unwrap();
    dir.migrate().await.unwrap();
    assert_eq!(dir.backend(), "sqlite");
    assert_eq!(dir.professionals().count().await.unwrap(), 0);
    // No second connection can see an in-memory database: appends go through the pool.
    let first = dir.audit().append(audit_event(1)).await.unwrap();
    let second = dir.audit().append(audit_event(2)).await.unwrap();
    assert_eq!((first.id, second.id, second.prev_hash.as_str()), (1, 2, first.hash.as_str()));
    assert_intact(&dir.audit().verify(None).await.unwrap(), 2);
}

/// In memory, refresh-token writes go through the pool (no writer thread): a rotation still
/// consumes once and stores its successor with it.
#[tokio::test]
async fn in_memory_rotation_consumes_and_stores_its_successor() {
    use directory::{ConsumeOutcome, RefreshTokenRecord, Successor, sha256_hex};
    let dir = Directory::connect("sqlite::memory:", DataKey::from_bytes(suite::KEY)).await.unwrap();
    dir.migrate().await.unwrap();
    let t = RefreshTokenRecord {
        token_hash: sha256_hex(b"t"),
        grant_id: "g".into(),
        client_id: "rp".into(),
        subject: "sub".into(),
        sid: "sid".into(),
        payload: serde_json::json!({"scopes": ["openid"]}),
        created_at: 1,
        expires_at: 100,
        consumed_at: None,
        revoked_at: None,
    };
    dir.refresh_tokens().insert(t.clone()).await.unwrap();
    let next = Successor { token_hash: sha256_hex(b"n"), created_at: 10, expires_at: 90 };
    let used = dir.refresh_tokens().rotate(&t.token_hash, 10, Some(next.clone())).await.unwrap();
    assert_eq!(used, ConsumeOutcome::Consumed(RefreshTokenRecord { consumed_at: Some(10), ..t.clone() }));
    let stored = dir.refresh_tokens().get(&next.token_hash).await.unwrap().unwrap();
    assert_eq!((stored.grant_id.as_str(), stored.expires_at, stored.consumed_at), ("g", 90, None));
    let again = Successor { token_hash: sha256_hex(b"m"), created_at: 11, expires_at: 90 };
    assert!(matches!(
        dir.refresh_tokens().rotate(&t.token_hash, 11, Some(again.clone())).await.unwrap(),
        ConsumeOutcome::AlreadyConsumed(_)
    ));
    assert_eq!(dir.refresh_tokens().get(&again.token_hash).await.unwrap(), None);
}

fn audit_event(at: i64) -> AuditEvent {
    AuditEvent { event: "token_issued".into(), outcome: "success".into(), at, ..Default::default() }
}

/// `(log frames, frames checkpointed)` of the file's write-ahead log, from a connection of its own.
async fn wal_frames(url: &str) -> (i64, i64) {
    let raw = Database::connect(url).await.unwrap();
    let row = raw
        .query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA wal_checkpoint(PASSIVE)"))
        .await
        .unwrap()
        .unwrap();
    (row.try_get_by_index::<i64>(1).unwrap(), row.try_get_by_index::<i64>(2).unwrap())
}

/// On a file, the audit log's own thread writes, and SQLite no longer checkpoints inside its
/// commits: the checkpointer thread must, and must let the log start over even while records
/// keep coming (a checkpoint beside a busy writer never catches up with its last frames by
/// itself), or the write-ahead log would grow with every record ever written. On a loaded
/// machine the checkpointer (lowest priority) may not run at all: the writer then copies the
/// log itself, so the bound holds whatever the scheduler does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_starts_over_under_steady_writes() {
    let (_tmp, ctx) = setup().await;
    // One append at a time: at least one log frame per commit, so a log that never started
    // over would hold at least as many frames as commits.
    let commits = 20_000i64;
    for at in 0..commits {
        ctx.dir.audit().append(audit_event(at)).await.unwrap();
    }
    let (frames, checkpointed) = wal_frames(&ctx.url).await;
    assert!(
        frames < commits,
        "the log never started over: {frames} frames ({checkpointed} checkpointed) after {commits} commits"
    );
    assert_intact(&ctx.dir.audit().verify(None).await.unwrap(), u64::try_from(commits).unwrap());
}

/// Another process writing the same file (the CLI, a second server) holds SQLite's write lock:
/// appends wait for it instead of failing or forking the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_append_waits_for_another_writer_of_the_file() {
    let (_tmp, ctx) = setup().await;
    ctx.dir.audit().append(audit_event(1)).await.unwrap();
    let other = Database::connect(ctx.url.as_str()).await.unwrap();
    let txn = other
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .unwrap();
    let dir = ctx.dir.clone();
    let waiting = tokio::spawn(async move { dir.audit().append(audit_event(2)).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the append went through another writer's lock");
    txn.commit().await.unwrap();
    let record = waiting.await.unwrap().unwrap();
    assert_eq!(record.id, 2);
    assert_intact(&ctx.dir.audit().verify(None).await.unwrap(), 2);
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
