//! Webhook sources: a named push endpoint per tenant with its HMAC secret, sealed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhook_sources")
                    .col(pk_auto("id"))
                    .col(integer("tenant_id"))
                    .col(string("name"))
                    // the HMAC secret, sealed (crypto.rs)
                    .col(blob("secret_enc"))
                    .col(timestamp_with_time_zone_default_now("created_at"))
                    .foreign_key(ForeignKey::create().from("webhook_sources", "tenant_id").to("tenants", "id").on_delete(ForeignKeyAction::Cascade))
                    .take(),
            )
            .await?;
        manager
            .create_index(Index::create().name("ux_webhook_sources_tenant_name").table("webhook_sources").col("tenant_id").col("name").unique().take())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("webhook_sources").take()).await
    }
}
