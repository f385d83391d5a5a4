//! SeaORM entity, in the shape sea-orm-cli generates; the schema is owned by `migrations/`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "model_versions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub scaled_object_id: i32,
    pub version: i32,
    pub kind: String,
    pub metric: String,
    pub horizon_secs: i32,
    pub trained_from: DateTimeUtc,
    pub trained_to: DateTimeUtc,
    pub validated_to: DateTimeUtc,
    pub mae: Option<f64>,
    pub mape: Option<f64>,
    pub scored_points: i32,
    pub champion_mae: Option<f64>,
    pub promoted: bool,
    pub is_champion: bool,
    pub reason: String,
    pub model: Vec<u8>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
