//! Webhook pushes that reached an instance which does not lead, relayed through SQL to the
//! leader (every instance serves the hooks; only the leader decides).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("push_relay")
                    .col(big_pk_auto("id"))
                    .col(string("tenant"))
                    .col(string("source"))
                    // "set" or "add"
                    .col(string("op"))
                    .col(double("value"))
                    // the instance that received it (it does not apply its own rows)
                    .col(string("instance"))
                    .col(timestamp_with_time_zone("at"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("push_relay").take()).await
    }
}
