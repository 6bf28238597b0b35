//! The refresh tokens' session and subject indexes made one, on `(subject, sid)`.
//!
//! Every token stored is written into each index of its table, and the session's and the
//! subject's each took it on a page of their own (a professional's tokens together, but apart
//! from every other professional's): on the token endpoint's path, each rotation dirtied one
//! more page anywhere in the file, written whole to the write-ahead log. One index serves both
//! revocations: a professional's tokens are its prefix, a session's the next column (a session
//! has one professional, which the caller revoking it knows).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const SESSION_INDEX: &str = "idx_refresh_tokens_subject_sid";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(SESSION_INDEX)
                    .table("refresh_tokens")
                    .col("subject")
                    .col("sid")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        for old in ["idx_refresh_tokens_sid", "idx_refresh_tokens_subject"] {
            manager.drop_index(Index::drop().name(old).table("refresh_tokens").if_exists().to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["sid", "subject"] {
            manager
                .create_index(
                    Index::create()
                        .name(format!("idx_refresh_tokens_{column}"))
                        .table("refresh_tokens")
                        .col(column)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        manager.drop_index(Index::drop().name(SESSION_INDEX).table("refresh_tokens").if_exists().to_owned()).await
    }
}
