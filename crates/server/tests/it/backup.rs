//! Backups and restores, as docs/operations.md tells operators to take them, with real
//! processes: `caducee backup` for the embedded SQLite file, `pg_dump` and `pg_restore` for
//! PostgreSQL, each taken while the provider serves. A provider started on the restored
//! database with the same master key (and the session store, Redis in production, which a
//! database restore leaves alone) still refreshes the refresh token issued before, still
//! publishes the key that signed the access token, and still signs the professional in.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use directory::{DataKey, Directory};
use reqwest::StatusCode;
use server::testing::{Storage, TestProvider};
use session_store::{MemoryStore, SessionStore};
use test_support::postgres::PostgresServer;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_caducee");

/// What the tests keep of the provider that was backed up, once it is stopped.
struct Before {
    issuer: String,
    secret: String,
    totp: Vec<u8>,
}

/// The tokens a relying party got before the backup.
struct Issued {
    access_token: String,
    refresh_token: String,
    id_token: String,
}

/// A professional signs in and the relying party `rp` exchanges the code.
async fn sign_in(s: &Setup) -> Issued {
    let code = login(&Browser::new(), &s.p, "rp", USER, &s.totp, 0).await;
    let (status, tokens) = exchange(&s.p, "rp", &s.secret, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let field = |name: &str| tokens[name].as_str().unwrap_or_else(|| panic!("{name} in {tokens}")).to_owned();
    Issued { access_token: field("access_token"), refresh_token: field("refresh_token"), id_token: field("id_token") }
}

/// The `kid` in a JWT's header.
fn kid(jwt: &str) -> String {
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<serde_json::Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
}

/// `caducee ARGS` with only these `CADUCEE_*` variables.
fn caducee(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().to_ascii_uppercase().starts_with("CADUCEE_") {
            cmd.env_remove(name);
        }
    }
    let out = cmd.envs(env.iter().copied()).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A provider on the restored `directory`, with the issuer of the one backed up and its session
/// store; what was issued before the backup still holds there.
async fn check_restored(before: &Before, directory: Directory, store: Arc<dyn SessionStore>, issued: &Issued) {
    directory.migrate().await.unwrap();
    let issuer = before.issuer.clone();
    let p = TestProvider::start_with(Storage::Shared { directory, store }, |c| c.issuer = issuer).await.unwrap();

    let jwks: serde_json::Value = reqwest::get(p.url("/jwks")).await.unwrap().json().await.unwrap();
    let published: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    for token in [&issued.access_token, &issued.id_token] {
        assert!(published.contains(&kid(token).as_str()), "{} in {published:?}", kid(token));
    }
    assert_eq!(userinfo(&p, &issued.access_token).await, StatusCode::OK, "the old access token still verifies");

    let (status, refreshed) = refresh(&p, "rp", &before.secret, &issued.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "the refresh token issued before the backup refreshes: {refreshed}");
    assert!(refreshed["access_token"].is_string() && refreshed["refresh_token"].is_string(), "{refreshed}");
    assert_eq!(userinfo(&p, refreshed["access_token"].as_str().unwrap()).await, StatusCode::OK);

    // The account, its password and its TOTP app came back: a new sign-in (the next TOTP step,
    // the first one having been used before the backup).
    let code = login(&Browser::new(), &p, "rp", USER, &before.totp, 1).await;
    assert_eq!(exchange(&p, "rp", &before.secret, &code).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_sqlite_backup_taken_while_serving_restores_into_a_new_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let key = DataKey::generate().unwrap();
    let key_b64 = key.to_base64().to_string();
    let url = format!("sqlite://{}?mode=rwc", data.path().join("caducee.db").display());
    let directory = Directory::connect(&url, key).await.unwrap();
    directory.migrate().await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let s = setup(TestProvider::start_with(Storage::Shared { directory, store: store.clone() }, |_| {}).await.unwrap())
        .await;
    let issuer = s.p.app.config.issuer.clone();
    let issued = sign_in(&s).await;

    // The operator's command, on the embedded default's data folder, while the provider serves.
    let restored_dir = tempfile::tempdir().unwrap();
    let copy = restored_dir.path().join("caducee.db");
    let data_dir = data.path().display().to_string();
    let env = [("CADUCEE_DATA_DIR", data_dir.as_str()), ("CADUCEE_MASTER_KEY", key_b64.as_str())];
    let (ok, out, err) = caducee(data.path(), &["backup", "--to", copy.to_str().unwrap()], &env);
    assert!(ok, "{err}");
    assert!(out.contains("database copied to") && err.contains("master key is not in the copy"), "{out}{err}");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o077, 0, "the copy is private");
    let (ok, _, err) = caducee(data.path(), &["backup", "--to", copy.to_str().unwrap()], &env);
    assert!(!ok && err.contains("already exists"), "an existing file is never overwritten: {err}");
    // Audited, the operator as its actor.
    let (ok, out, err) = caducee(data.path(), &["audit", "list", "--event", "admin.backup"], &env);
    assert!(ok, "{err}");
    let records: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(records.len(), 1, "{out}");
    assert!(records[0]["actor"].as_str().unwrap().starts_with("operator:"));
    assert_eq!(records[0]["details"]["file"], copy.display().to_string());

    // Nothing to back up where there is no database, and no master key made up for it.
    let empty = tempfile::tempdir().unwrap();
    let empty_dir = empty.path().display().to_string();
    let (ok, _, err) = caducee(empty.path(), &["backup", "--to", "x.db"], &[("CADUCEE_DATA_DIR", empty_dir.as_str())]);
    assert!(!ok && err.contains("no database"), "{err}");
    assert!(!empty.path().join("master.key").exists() && !empty.path().join("caducee.db").exists());

    // Restore: the copy is the new data folder's database; the old folder is gone.
    let Setup { p, secret, totp } = s;
    p.stop().await;
    drop(data);
    let restored =
        Directory::connect(&format!("sqlite://{}?mode=rwc", copy.display()), DataKey::from_base64(&key_b64).unwrap())
            .await
            .unwrap();
    check_restored(&Before { issuer, secret, totp }, restored, store, &issued).await;
}

#[tokio::test]
async fn a_pg_dump_taken_while_serving_restores_into_a_new_postgresql() {
    let pg = PostgresServer::start().unwrap();
    let key = DataKey::generate().unwrap();
    let key_b64 = key.to_base64().to_string();
    let directory = Directory::connect(&pg.url(), key).await.unwrap();
    directory.migrate().await.unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let s = setup(TestProvider::start_with(Storage::Shared { directory, store: store.clone() }, |_| {}).await.unwrap())
        .await;
    let issuer = s.p.app.config.issuer.clone();
    let issued = sign_in(&s).await;

    // `caducee backup` is for SQLite, and says what to use instead.
    let work = tempfile::tempdir().unwrap();
    let pg_url = pg.url();
    let (ok, _, err) = caducee(
        work.path(),
        &["backup", "--to", "x.db"],
        &[("CADUCEE_DATABASE_URL", pg_url.as_str()), ("CADUCEE_MASTER_KEY", key_b64.as_str())],
    );
    assert!(!ok && err.contains("pg_dump"), "{err}");

    // docs/operations.md's commands, while the provider serves.
    let dump = work.path().join("caducee.dump");
    let out = Command::new(pg.client_program("pg_dump"))
        .args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
        .arg(&dump)
        .arg(format!("--dbname={pg_url}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    let Setup { p, secret, totp } = s;
    p.stop().await;
    drop(pg);

    let fresh = PostgresServer::start().unwrap();
    let out = Command::new(fresh.client_program("pg_restore"))
        .args(["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"])
        .arg(format!("--dbname={}", fresh.url()))
        .arg(&dump)
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));
    let restored = Directory::connect(&fresh.url(), DataKey::from_base64(&key_b64).unwrap()).await.unwrap();
    check_restored(&Before { issuer, secret, totp }, restored, store, &issued).await;
}
