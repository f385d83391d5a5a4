//! Tenancy and login: each tenant's OIDC provider settings (client secret sealed), the
//! namespaces it owns per cluster, its users, role bindings, API tokens (only a hash kept),
//! and login sessions (tower-sessions records). Replaces the placeholder `users`,
//! `memberships`, `api_tokens` and `sessions` tables of the first migration, which nothing
//! ever wrote to.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["api_tokens", "memberships", "users", "sessions"] {
            manager.drop_table(Table::drop().table(t).if_exists().take()).await?;
        }
        let tenant_fk = |table: &'static str| ForeignKey::create().from(table, "tenant_id").to("tenants", "id").on_delete(ForeignKeyAction::Cascade).take();
        manager
            .create_table(
                Table::create()
                    .table("tenant_oidc")
                    .col(integer("tenant_id").primary_key())
                    .col(string("issuer"))
                    .col(string("client_id"))
                    .col(blob_null("client_secret_enc"))
                    // space-separated, e.g. "openid email profile"
                    .col(string("scopes"))
                    // the ID token claim that lists the user's groups
                    .col(string("groups_claim"))
                    // {"group": "viewer" | "operator" | "admin"}
                    .col(json("role_map"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut tenant_fk("tenant_oidc"))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("tenant_namespaces")
                    .col(pk_auto("id"))
                    .col(integer("tenant_id"))
                    .col(string("cluster"))
                    .col(string("namespace"))
                    .foreign_key(&mut tenant_fk("tenant_namespaces"))
                    .take(),
            )
            .await?;
        manager
            .create_index(Index::create().name("tenant_namespaces_unique").table("tenant_namespaces").col("cluster").col("namespace").unique().take())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(pk_auto("id"))
                    .col(integer("tenant_id"))
                    .col(string("issuer"))
                    .col(string("subject"))
                    .col(string_null("email"))
                    .col(string_null("name"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("last_login_at"))
                    .foreign_key(&mut tenant_fk("users"))
                    .take(),
            )
            .await?;
        manager.create_index(Index::create().name("users_identity").table("users").col("tenant_id").col("issuer").col("subject").unique().take()).await?;
        manager
            .create_table(
                Table::create()
                    .table("role_bindings")
                    .col(pk_auto("id"))
                    .col(integer("tenant_id"))
                    // an email address or an ID token subject
                    .col(string("principal"))
                    .col(string("role"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut tenant_fk("role_bindings"))
                    .take(),
            )
            .await?;
        manager.create_index(Index::create().name("role_bindings_unique").table("role_bindings").col("tenant_id").col("principal").unique().take()).await?;
        manager
            .create_table(
                Table::create()
                    .table("api_tokens")
                    .col(pk_auto("id"))
                    .col(integer("tenant_id"))
                    .col(string("name"))
                    // SHA-256 of the token, hex; the token itself is shown once
                    .col(string("hash"))
                    .col(string("role"))
                    .col(string("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(timestamp_with_time_zone_null("last_used_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .foreign_key(&mut tenant_fk("api_tokens"))
                    .take(),
            )
            .await?;
        manager.create_index(Index::create().name("api_tokens_hash").table("api_tokens").col("hash").unique().take()).await?;
        manager
            .create_table(
                Table::create()
                    .table("sessions")
                    .col(string("id").primary_key())
                    .col(blob("data"))
                    .col(timestamp_with_time_zone("expires_at"))
                    // "tenant-id/user-id" of a signed-in session, so revoking a user ends them
                    .col(string_null("user_key"))
                    .take(),
            )
            .await?;
        manager.create_index(Index::create().name("sessions_expires").table("sessions").col("expires_at").take()).await?;
        manager.create_index(Index::create().name("sessions_user").table("sessions").col("user_key").take()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in ["sessions", "api_tokens", "role_bindings", "users", "tenant_namespaces", "tenant_oidc"] {
            manager.drop_table(Table::drop().table(t).take()).await?;
        }
        Ok(())
    }
}
