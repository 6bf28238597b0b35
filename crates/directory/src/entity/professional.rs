use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "professionals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub subject: String,
    #[sea_orm(unique)]
    pub national_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub civility: String,
    /// JSON array of `Practice`.
    pub practices: String,
    /// JSON array of `OtherId`.
    pub other_ids: String,
    pub password_hash: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
