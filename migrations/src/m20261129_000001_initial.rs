//! The first schema: tenancy, clusters, scaling objects and their history, models, audit,
//! API tokens and web sessions.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn now(col: &'static str) -> ColumnDef {
    timestamp_with_time_zone_default_now(col)
}

fn fk(from: (&'static str, &'static str), to: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

fn index(table: &'static str, name: &'static str, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for col in cols {
        idx.col(*col);
    }
    if unique {
        idx.unique();
    }
    idx.take()
}

/// Tables in creation order (a table only refers to tables before it).
fn tables() -> Vec<TableCreateStatement> {
    vec![
        Table::create()
            .table("tenants")
            .col(pk_auto("id"))
            .col(string_uniq("slug"))
            .col(string("name"))
            .col(now("created_at"))
            .take(),
        Table::create()
            .table("users")
            .col(pk_auto("id"))
            .col(integer("tenant_id"))
            .col(string("subject"))
            .col(string_null("email"))
            .col(string_null("display_name"))
            .col(now("created_at"))
            .foreign_key(&mut fk(("users", "tenant_id"), "tenants"))
            .take(),
        Table::create()
            .table("memberships")
            .col(pk_auto("id"))
            .col(integer("user_id"))
            .col(integer("tenant_id"))
            // viewer | operator | admin
            .col(string("role"))
            .col(now("created_at"))
            .foreign_key(&mut fk(("memberships", "user_id"), "users"))
            .foreign_key(&mut fk(("memberships", "tenant_id"), "tenants"))
            .take(),
        Table::create()
            .table("clusters")
            .col(pk_auto("id"))
            .col(string_uniq("name"))
            // simulated | kubeconfig | in-cluster
            .col(string("kind"))
            // encrypted kubeconfig (crypto.rs); null for simulated and in-cluster
            .col(blob_null("kubeconfig_enc"))
            .col(now("created_at"))
            .take(),
        scaling_table("scaled_objects"),
        scaling_table("scaled_jobs"),
        Table::create()
            .table("triggers")
            .col(pk_auto("id"))
            .col(integer_null("scaled_object_id"))
            .col(integer_null("scaled_job_id"))
            .col(integer("position"))
            .col(string_null("name"))
            .col(string("trigger_type"))
            .col(json("metadata"))
            .col(string_null("auth_ref"))
            .foreign_key(&mut fk(("triggers", "scaled_object_id"), "scaled_objects"))
            .foreign_key(&mut fk(("triggers", "scaled_job_id"), "scaled_jobs"))
            .take(),
        Table::create()
            .table("trigger_auths")
            .col(pk_auto("id"))
            .col(integer("tenant_id"))
            // TriggerAuthentication | ClusterTriggerAuthentication
            .col(string("kind"))
            .col(string_null("namespace"))
            .col(string("name"))
            // the non-secret part of the spec (secretTargetRef, env, podIdentity)
            .col(json("spec"))
            // secret values, encrypted as one sealed blob (crypto.rs)
            .col(blob_null("secrets_enc"))
            .col(now("created_at"))
            .col(now("updated_at"))
            .foreign_key(&mut fk(("trigger_auths", "tenant_id"), "tenants"))
            .take(),
        Table::create()
            .table("overrides")
            .col(pk_auto("id"))
            .col(integer("scaled_object_id"))
            // replicas | pause
            .col(string("kind"))
            .col(integer_null("replicas"))
            .col(text("reason"))
            .col(string("created_by"))
            .col(now("created_at"))
            .col(timestamp_with_time_zone_null("expires_at"))
            .col(timestamp_with_time_zone_null("cleared_at"))
            .foreign_key(&mut fk(("overrides", "scaled_object_id"), "scaled_objects"))
            .take(),
        Table::create()
            .table("decisions")
            .col(big_pk_auto("id"))
            .col(integer("scaled_object_id"))
            .col(timestamp_with_time_zone("at"))
            .col(string("state"))
            .col(string("rule"))
            .col(integer("prev_replicas"))
            .col(integer("new_replicas"))
            .col(text("explanation"))
            .col(json("inputs"))
            .foreign_key(&mut fk(("decisions", "scaled_object_id"), "scaled_objects"))
            .take(),
        Table::create()
            .table("metric_samples")
            .col(big_pk_auto("id"))
            .col(integer("scaled_object_id"))
            .col(string("metric"))
            .col(timestamp_with_time_zone("at"))
            .col(double("value"))
            .foreign_key(&mut fk(("metric_samples", "scaled_object_id"), "scaled_objects"))
            .take(),
        Table::create()
            .table("models")
            .col(pk_auto("id"))
            .col(integer("scaled_object_id"))
            .col(integer("version"))
            .col(string("kind"))
            .col(blob("data"))
            .col(json("scores"))
            .col(boolean("active"))
            .col(now("created_at"))
            .foreign_key(&mut fk(("models", "scaled_object_id"), "scaled_objects"))
            .take(),
        Table::create()
            .table("audit_log")
            .col(big_pk_auto("id"))
            .col(integer_null("tenant_id"))
            .col(string("actor"))
            .col(string("action"))
            .col(string("target"))
            .col(json("detail"))
            .col(now("at"))
            .foreign_key(&mut fk(("audit_log", "tenant_id"), "tenants"))
            .take(),
        Table::create()
            .table("api_tokens")
            .col(pk_auto("id"))
            .col(integer("user_id"))
            .col(integer("tenant_id"))
            .col(string("name"))
            // SHA-256 of the token; the token itself is shown once and never stored
            .col(string_uniq("token_hash"))
            .col(now("created_at"))
            .col(timestamp_with_time_zone_null("last_used_at"))
            .col(timestamp_with_time_zone_null("expires_at"))
            .foreign_key(&mut fk(("api_tokens", "user_id"), "users"))
            .foreign_key(&mut fk(("api_tokens", "tenant_id"), "tenants"))
            .take(),
        // tower-sessions store
        Table::create()
            .table("sessions")
            .col(string("id").primary_key().take())
            .col(blob("data"))
            .col(timestamp_with_time_zone("expiry_date"))
            .take(),
    ]
}

/// ScaledObjects and ScaledJobs share a shape: identity, ownership, origin, spec, status.
fn scaling_table(name: &'static str) -> TableCreateStatement {
    Table::create()
        .table(name)
        .col(pk_auto("id"))
        .col(integer("tenant_id"))
        .col(integer("cluster_id"))
        .col(string("namespace"))
        .col(string("name"))
        // swell (dashboard, CLI, API) | cluster (synced from a CRD)
        .col(string("origin"))
        // the full KEDA-shaped spec as the user wrote it
        .col(json("spec"))
        .col(json_null("status"))
        .col(now("created_at"))
        .col(now("updated_at"))
        .foreign_key(&mut fk((name, "tenant_id"), "tenants"))
        .foreign_key(&mut fk((name, "cluster_id"), "clusters"))
        .take()
}

fn indices() -> Vec<IndexCreateStatement> {
    vec![
        index("users", "ux_users_tenant_subject", &["tenant_id", "subject"], true),
        index("memberships", "ux_memberships_user_tenant", &["user_id", "tenant_id"], true),
        index("scaled_objects", "ux_scaled_objects_ident", &["cluster_id", "namespace", "name"], true),
        index("scaled_objects", "ix_scaled_objects_tenant", &["tenant_id"], false),
        index("scaled_jobs", "ux_scaled_jobs_ident", &["cluster_id", "namespace", "name"], true),
        index("triggers", "ix_triggers_object", &["scaled_object_id"], false),
        index("triggers", "ix_triggers_job", &["scaled_job_id"], false),
        index("triggers", "ix_triggers_type", &["trigger_type"], false),
        index("trigger_auths", "ux_trigger_auths_ident", &["tenant_id", "kind", "namespace", "name"], true),
        index("overrides", "ix_overrides_object", &["scaled_object_id", "created_at"], false),
        index("decisions", "ix_decisions_object_at", &["scaled_object_id", "at"], false),
        index("decisions", "ix_decisions_at", &["at"], false),
        index("metric_samples", "ix_samples_object_metric_at", &["scaled_object_id", "metric", "at"], false),
        index("metric_samples", "ix_samples_at", &["at"], false),
        index("models", "ux_models_object_version", &["scaled_object_id", "version"], true),
        index("audit_log", "ix_audit_tenant_at", &["tenant_id", "at"], false),
        index("sessions", "ix_sessions_expiry", &["expiry_date"], false),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            manager.create_table(table).await?;
        }
        for idx in indices() {
            manager.create_index(idx).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables().into_iter().rev() {
            let name = table.get_table_name().cloned().expect("every table is named");
            // if_exists: migration 000007 replaced (and on its way down drops) the placeholder
            // users, memberships, api_tokens and sessions tables.
            manager.drop_table(Table::drop().table(name).if_exists().take()).await?;
        }
        Ok(())
    }
}
