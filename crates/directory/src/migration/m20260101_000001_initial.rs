use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("professionals")
                    .if_not_exists()
                    .col(text("id").primary_key())
                    .col(text_uniq("subject"))
                    .col(text_uniq("national_id"))
                    .col(text("given_name"))
                    .col(text("family_name"))
                    .col(text_null("email"))
                    .col(text("civility"))
                    .col(text("practices"))
                    .col(text("other_ids"))
                    .col(text_null("password_hash"))
                    .col(text("status"))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("clients")
                    .if_not_exists()
                    .col(text("client_id").primary_key())
                    .col(text_null("secret_hash"))
                    .col(text("metadata"))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("authenticators")
                    .if_not_exists()
                    .col(text("id").primary_key())
                    .col(text_null("subject"))
                    .col(text("kind"))
                    .col(text("label"))
                    .col(text_null("serial"))
                    .col(blob("secret"))
                    .col(text("params"))
                    .col(boolean("active"))
                    .col(big_integer("counter"))
                    .col(big_integer("created_at"))
                    .col(big_integer_null("last_used_at"))
                    .to_owned(),
            )
            .await?;
        // A unique index rather than a unique column: several unassigned software authenticators
        // have no serial, and both backends let NULLs repeat in a unique index.
        create_index(manager, "authenticators", "serial", true).await?;
        create_index(manager, "authenticators", "subject", false).await?;

        manager
            .create_table(
                Table::create()
                    .table("refresh_tokens")
                    .if_not_exists()
                    .col(text("token_hash").primary_key())
                    .col(text("grant_id"))
                    .col(text("client_id"))
                    .col(text("subject"))
                    .col(text("sid"))
                    .col(text("payload"))
                    .col(big_integer("created_at"))
                    .col(big_integer("expires_at"))
                    .col(big_integer_null("consumed_at"))
                    .col(big_integer_null("revoked_at"))
                    .to_owned(),
            )
            .await?;
        for column in ["grant_id", "sid", "subject", "expires_at"] {
            create_index(manager, "refresh_tokens", column, false).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table("signing_keys")
                    .if_not_exists()
                    .col(text("kid").primary_key())
                    .col(text("alg"))
                    .col(blob("private_key"))
                    .col(big_integer("created_at"))
                    .col(big_integer_null("retired_at"))
                    .col(big_integer_null("publish_until"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("audit_log")
                    .if_not_exists()
                    // Not auto-increment: the appender assigns last id + 1 under its lock.
                    .col(big_integer("id").primary_key())
                    .col(big_integer("at"))
                    .col(text("event"))
                    .col(text_null("actor"))
                    .col(text_null("subject"))
                    .col(text_null("client_id"))
                    .col(text_null("source_ip"))
                    .col(text("outcome"))
                    .col(text("details"))
                    .col(text("prev_hash"))
                    .col(text("hash"))
                    .to_owned(),
            )
            .await?;
        for column in ["subject", "event", "at"] {
            create_index(manager, "audit_log", column, false).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["audit_log", "signing_keys", "refresh_tokens", "authenticators", "clients", "professionals"] {
            manager.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

async fn create_index(
    manager: &SchemaManager<'_>,
    table: &'static str,
    column: &'static str,
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(format!("idx_{table}_{column}")).table(table).col(column).if_not_exists();
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}
