//! What a ScaledObject's loop must remember across a restart or a leader change (KEDA keeps
//! the same in its status): the last time a source was active, consecutive failures per
//! metric, the target's replicas before Swell first scaled it, and when Swell first saw it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("object_state")
                    .col(integer("scaled_object_id").primary_key())
                    .col(timestamp_with_time_zone_null("last_active_at"))
                    // {"metric": consecutive failures}
                    .col(json("health"))
                    .col(integer_null("original_replicas"))
                    .col(timestamp_with_time_zone("first_seen_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(ForeignKey::create().from("object_state", "scaled_object_id").to("scaled_objects", "id").on_delete(ForeignKeyAction::Cascade))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("object_state").take()).await
    }
}
