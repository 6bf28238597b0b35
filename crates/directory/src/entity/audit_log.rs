use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Assigned by the appender (last id + 1) inside the serialised transaction, so ids are
    /// contiguous and part of the hashed content.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub source_ip: Option<String>,
    pub outcome: String,
    /// JSON text exactly as hashed: the hash covers these bytes, not a re-serialisation.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
