//! Behaviour every backend must have. Each `pub async fn` is one test, run against SQLite by
//! `tests/sqlite.rs` and against PostgreSQL by `tests/postgres.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeSet;

use directory::{
    AccountStatus, Activity, AuditEvent, AuditHead, AuditQuery, AuditVerification, ClientRecord, ConsumeOutcome,
    DataKey, Directory, DirectoryError, HeadCheck, NewAuthenticator, NewProfessional, OtherId, Practice,
    ProfessionalUpdate, RefreshTokenRecord, SigningKeyRecord, Successor, sha256_hex,
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::json;
use zeroize::Zeroizing;

mod schema;
pub use schema::*;
mod professionals;
pub use professionals::*;
mod clients;
pub use clients::*;
mod authenticators;
pub use authenticators::*;
mod refresh_tokens;
pub use refresh_tokens::*;
mod signing_keys;
pub use signing_keys::*;
mod audit;
pub use audit::*;
mod logout_deliveries;
pub use logout_deliveries::*;

pub const KEY: [u8; 32] = [0x42; 32];
const CONCURRENCY: usize = 16;

/// A migrated directory plus what a test needs to look under it.
pub struct Ctx {
    pub dir: Directory,
    pub url: String,
}

impl Ctx {
    pub async fn new(url: String) -> Ctx {
        let dir = Directory::connect(&url, DataKey::from_bytes(KEY)).await.unwrap();
        dir.migrate().await.unwrap();
        Ctx { dir, url }
    }

    /// Another handle on the same database, as a second node would have.
    pub async fn second_node(&self) -> Directory {
        Directory::connect(&self.url, DataKey::from_bytes(KEY)).await.unwrap()
    }

    /// A plain sea-orm connection, to read and tamper with rows behind the directory's back.
    async fn raw(&self) -> DatabaseConnection {
        Database::connect(self.url.as_str()).await.unwrap()
    }
}

/// A whole chain of `records` keyed records, nothing broken.
pub fn assert_intact(v: &AuditVerification, records: u64) {
    assert_eq!((v.records, v.first_bad_id, v.unkeyed_records, v.head_check), (records, None, 0, None), "{v:?}");
    assert_eq!(v.head.as_ref().map(|h| h.id), (records > 0).then(|| i64::try_from(records).unwrap()));
    assert!(v.is_intact());
}

async fn exec(db: &DatabaseConnection, sql: &str) -> u64 {
    db.execute_unprepared(sql).await.unwrap().rows_affected()
}

async fn read_blob(db: &DatabaseConnection, sql: &str, column: &str) -> Vec<u8> {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get::<Vec<u8>>("", column).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn practice(code: &str, org: &str) -> Practice {
    Practice {
        code_profession: code.into(),
        code_categorie_professionnelle: "C".into(),
        nom_dexercice: "Martin".into(),
        activities: vec![Activity {
            code_mode_exercice: "L".into(),
            code_secteur_dactivite: "SA07".into(),
            raison_sociale_site: org.into(),
            identifiant_technique_de_la_structure: "R10000001".into(),
            numero_finess_etablissement_juridique: "750000001".into(),
            code_postal: "75001".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn new_professional(national_id: &str) -> NewProfessional {
    NewProfessional {
        national_id: national_id.into(),
        given_name: "Jeanne".into(),
        family_name: "Martin".into(),
        email: Some(format!("{national_id}@example.test")),
        civility: "MME".into(),
        practices: vec![practice("10", "Cabinet du Parc")],
        other_ids: vec![OtherId { identifiant: "10000000001".into(), origine: "RPPS".into(), qualite: 1 }],
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        ..Default::default()
    }
}
