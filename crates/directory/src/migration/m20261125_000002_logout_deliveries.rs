//! Back-channel logout deliveries: one row per (ended session, relying party), with its
//! attempts and outcome, so that retries survive a restart and admins can see what happened.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("logout_deliveries")
                    .if_not_exists()
                    .col(text("id").primary_key())
                    .col(text("sid"))
                    .col(text("subject"))
                    .col(text("client_id"))
                    .col(text("uri"))
                    .col(text("status"))
                    .col(big_integer("attempts"))
                    .col(text_null("last_error"))
                    .col(big_integer_null("next_attempt_at"))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .to_owned(),
            )
            .await?;
        for column in ["sid", "subject", "status", "next_attempt_at"] {
            let mut index = Index::create();
            index
                .name(format!("idx_logout_deliveries_{column}"))
                .table("logout_deliveries")
                .col(column)
                .if_not_exists();
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("logout_deliveries").if_exists().to_owned()).await
    }
}
