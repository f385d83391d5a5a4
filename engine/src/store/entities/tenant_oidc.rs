//! SeaORM entity, in the shape sea-orm-cli generates; the schema is owned by `migrations/`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_oidc")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: i32,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_enc: Option<Vec<u8>>,
    pub scopes: String,
    pub groups_claim: String,
    pub role_map: Json,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
