//! When a client's credentials (its secret, its keys, the way it authenticates) last changed,
//! so that tokens issued before can be told apart from those issued after: the admin API
//! refuses the former. `NULL` until the first change after registration.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table("clients").add_column(big_integer_null("credentials_changed_at")).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table("clients").drop_column("credentials_changed_at").to_owned()).await
    }
}
