use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authenticators")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub subject: Option<String>,
    pub kind: String,
    pub label: String,
    pub serial: Option<String>,
    /// Sealed with the data key (see `crypto.rs`), never the plaintext seed.
    pub secret: Vec<u8>,
    /// JSON object (algorithm, digits, period...).
    pub params: String,
    pub active: bool,
    pub counter: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

// Hand-written so that even the sealed secret stays out of logs.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("authenticator::Model").field("id", &self.id).field("kind", &self.kind).finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
