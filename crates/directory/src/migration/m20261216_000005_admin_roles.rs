//! The administrators: professionals who may sign in to the console (`/admin`). A row is the
//! role; no row, no role. A table of its own rather than a column of `professionals`, so that
//! granting and revoking never rewrite the account and the row says who granted it and when.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("admin_roles")
                    .if_not_exists()
                    .col(text("subject").primary_key())
                    .col(text_null("granted_by"))
                    .col(big_integer("granted_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("admin_roles").if_exists().to_owned()).await
    }
}
