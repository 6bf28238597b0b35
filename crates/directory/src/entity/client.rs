use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    pub secret_hash: Option<String>,
    /// JSON object owned by the protocol crate.
    pub metadata: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the secret or keys last changed; `None` if never since registration.
    pub credentials_changed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
