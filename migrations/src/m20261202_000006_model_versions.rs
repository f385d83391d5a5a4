//! Every forecasting model an object's predictor trained: its training window, the scores
//! it and the champion of the time got on the newest part of the history, whether it became
//! the champion, and the serialized model (zlib-compressed JSON), so a restart, a new
//! leader or a rollback uses exactly the model that was judged.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("model_versions")
                    .col(big_pk_auto("id"))
                    .col(integer("scaled_object_id"))
                    // 1, 2, … per object
                    .col(integer("version"))
                    // random-forest, linear, seasonal-naive-day
                    .col(string("kind"))
                    .col(string("metric"))
                    .col(integer("horizon_secs"))
                    .col(timestamp_with_time_zone("trained_from"))
                    .col(timestamp_with_time_zone("trained_to"))
                    .col(timestamp_with_time_zone("validated_to"))
                    .col(double_null("mae"))
                    .col(double_null("mape"))
                    .col(integer("scored_points"))
                    // the champion's MAE on the same window when this one was judged
                    .col(double_null("champion_mae"))
                    .col(boolean("promoted"))
                    .col(boolean("is_champion"))
                    .col(string("reason"))
                    .col(blob("model"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(ForeignKey::create().from("model_versions", "scaled_object_id").to("scaled_objects", "id").on_delete(ForeignKeyAction::Cascade))
                    .take(),
            )
            .await?;
        manager
            .create_index(Index::create().name("model_versions_object_version").table("model_versions").col("scaled_object_id").col("version").unique().take())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("model_versions").take()).await
    }
}
