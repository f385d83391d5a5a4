//! SeaORM entity, in the shape sea-orm-cli generates; the schema is owned by `migrations/`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "object_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub scaled_object_id: i32,
    pub last_active_at: Option<DateTimeUtc>,
    pub health: Json,
    pub original_replicas: Option<i32>,
    pub first_seen_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
