//! Schema migrations, one tree for SQLite and PostgreSQL.
//!
//! Only portable column types: `text`, `bigint`, `boolean`, `blob`/`bytea`. JSON documents are
//! `text` (not `json`/`jsonb`) so that both backends store the exact bytes we wrote.
//! Never edit a migration once released: add a new one.

use sea_orm_migration::prelude::*;

mod m20260101_000001_initial;
mod m20261125_000002_logout_deliveries;
mod m20261204_000003_push_blocks;
mod m20261215_000004_client_credentials_changed;
mod m20261216_000005_admin_roles;
mod m20261217_000006_refresh_token_session_index;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_initial::Migration),
            Box::new(m20261125_000002_logout_deliveries::Migration),
            Box::new(m20261204_000003_push_blocks::Migration),
            Box::new(m20261215_000004_client_credentials_changed::Migration),
            Box::new(m20261216_000005_admin_roles::Migration),
            Box::new(m20261217_000006_refresh_token_session_index::Migration),
        ]
    }
}
