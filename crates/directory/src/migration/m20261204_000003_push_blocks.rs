//! Push blocks: a professional who answered «ce n'était pas moi» gets no more push approvals
//! until they (from the wallet) or an administrator lift the block.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("push_blocks")
                    .if_not_exists()
                    .col(text("subject").primary_key())
                    .col(text("reason"))
                    .col(text_null("actor"))
                    .col(big_integer("blocked_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("push_blocks").if_exists().to_owned()).await
    }
}
