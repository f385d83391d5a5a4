//! SQL storage: connection, migrations and the queries the engine makes.

pub mod entities;
mod history;
pub mod models;
pub mod relay;
mod secrets;
pub mod sessions;
pub mod state;
pub mod tenancy;

pub use history::{NewDecision, NewSample, decisions_between, existing_objects, prune_history, recent_decisions, recent_decisions_where, samples_between, write_batch};
pub use secrets::{delete_trigger_auth, put_trigger_auth, put_webhook_source, trigger_auth_purpose, trigger_auth_sealed, webhook_secret};

use chrono::{DateTime, Utc};
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectOptions, Database, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use crate::spec::ScaledObjectSpec;
use crate::{Error, Result};
use entities::{audit_log, clusters, decisions, metric_samples, object_state, overrides, scaled_objects, tenants, triggers};

/// Opens the database (creating a SQLite file and its folder if needed), without migrating.
pub async fn connect(url: &str) -> Result<DatabaseConnection> {
    if let Some(path) = sqlite_file(url) {
        if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::invalid("database_url", format!("cannot create {}: {e}", dir.display())))?;
        }
    }
    let url = if sqlite_file(url).is_some() && !url.contains("mode=") {
        format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
    } else {
        url.to_string()
    };
    let mut opts = ConnectOptions::new(url);
    opts.sqlx_logging(false).connect_timeout(std::time::Duration::from_secs(5));
    if opts.get_url().starts_with("sqlite::memory:") {
        // One connection: every query must see the same in-memory database.
        opts.max_connections(1).min_connections(1).idle_timeout(None::<std::time::Duration>).max_lifetime(None::<std::time::Duration>);
    }
    Ok(Database::connect(opts).await?)
}

fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.starts_with(":memory:") && !path.is_empty()).then_some(path)
}

pub async fn migrate(db: &DatabaseConnection) -> Result<()> {
    Ok(Migrator::up(db, None).await?)
}

/// True when every migration this build knows has been applied.
pub async fn migrations_applied(db: &DatabaseConnection) -> Result<bool> {
    Ok(Migrator::get_pending_migrations(db).await?.is_empty())
}

pub async fn ping(db: &DatabaseConnection) -> Result<()> {
    Ok(db.ping().await?)
}

/// A ScaledObject as the engine loads it.
#[derive(Clone, Debug)]
pub struct StoredObject {
    pub id: i32,
    pub tenant: String,
    pub cluster: String,
    pub cluster_kind: String,
    pub namespace: String,
    pub name: String,
    /// `swell` (made in Swell) or `cluster` (synced from a CRD).
    pub origin: String,
    pub spec: ScaledObjectSpec,
}

pub async fn ensure_tenant(db: &DatabaseConnection, slug: &str, name: &str) -> Result<tenants::Model> {
    if let Some(t) = tenants::Entity::find().filter(tenants::Column::Slug.eq(slug)).one(db).await? {
        return Ok(t);
    }
    let inserted = tenants::ActiveModel { slug: Set(slug.into()), name: Set(name.into()), created_at: Set(Utc::now()), ..Default::default() }
        .insert(db)
        .await;
    match inserted {
        Ok(t) => Ok(t),
        // Another task created it between our read and insert (unique slug).
        Err(e) => find_tenant(db, slug).await?.ok_or(Error::Db(e)),
    }
}

pub async fn find_tenant(db: &DatabaseConnection, slug: &str) -> Result<Option<tenants::Model>> {
    Ok(tenants::Entity::find().filter(tenants::Column::Slug.eq(slug)).one(db).await?)
}

pub async fn find_cluster(db: &DatabaseConnection, name: &str) -> Result<Option<clusters::Model>> {
    Ok(clusters::Entity::find().filter(clusters::Column::Name.eq(name)).one(db).await?)
}

pub async fn ensure_cluster(db: &DatabaseConnection, name: &str, kind: &str) -> Result<clusters::Model> {
    if let Some(c) = clusters::Entity::find().filter(clusters::Column::Name.eq(name)).one(db).await? {
        return Ok(c);
    }
    let inserted = clusters::ActiveModel { name: Set(name.into()), kind: Set(kind.into()), created_at: Set(Utc::now()), ..Default::default() }
        .insert(db)
        .await;
    match inserted {
        Ok(c) => Ok(c),
        Err(e) => find_cluster(db, name).await?.ok_or(Error::Db(e)),
    }
}

/// Creates or replaces a ScaledObject and its trigger rows in one transaction.
pub async fn upsert_scaled_object(
    db: &DatabaseConnection,
    tenant_id: i32,
    cluster_id: i32,
    namespace: &str,
    name: &str,
    origin: &str,
    spec: &ScaledObjectSpec,
) -> Result<i32> {
    spec.validate()?;
    let spec_json = serde_json::to_value(spec).expect("specs serialize");
    let now = Utc::now();
    let txn = db.begin().await?;
    let existing = scaled_objects::Entity::find()
        .filter(scaled_objects::Column::ClusterId.eq(cluster_id))
        .filter(scaled_objects::Column::Namespace.eq(namespace))
        .filter(scaled_objects::Column::Name.eq(name))
        .one(&txn)
        .await?;
    let id = match existing {
        Some(row) => {
            let mut active: scaled_objects::ActiveModel = row.into();
            // A namespace mapped to another tenant moves its objects there.
            active.tenant_id = Set(tenant_id);
            active.spec = Set(spec_json);
            active.origin = Set(origin.into());
            active.updated_at = Set(now);
            active.update(&txn).await?.id
        }
        None => {
            scaled_objects::ActiveModel {
                tenant_id: Set(tenant_id),
                cluster_id: Set(cluster_id),
                namespace: Set(namespace.into()),
                name: Set(name.into()),
                origin: Set(origin.into()),
                spec: Set(spec_json),
                status: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?
            .id
        }
    };
    triggers::Entity::delete_many().filter(triggers::Column::ScaledObjectId.eq(id)).exec(&txn).await?;
    let rows = spec.triggers.iter().enumerate().map(|(i, t)| triggers::ActiveModel {
        scaled_object_id: Set(Some(id)),
        scaled_job_id: Set(None),
        position: Set(i as i32),
        name: Set(t.name.clone()),
        trigger_type: Set(t.trigger_type.clone()),
        metadata: Set(serde_json::to_value(&t.metadata).expect("maps serialize")),
        auth_ref: Set(None),
        ..Default::default()
    });
    triggers::Entity::insert_many(rows).exec(&txn).await?;
    txn.commit().await?;
    Ok(id)
}

pub async fn load_objects(db: &DatabaseConnection) -> Result<Vec<StoredObject>> {
    let tenants: std::collections::HashMap<i32, String> =
        tenants::Entity::find().all(db).await?.into_iter().map(|t| (t.id, t.slug)).collect();
    let clusters: std::collections::HashMap<i32, clusters::Model> =
        clusters::Entity::find().all(db).await?.into_iter().map(|c| (c.id, c)).collect();
    let mut out = Vec::new();
    for row in scaled_objects::Entity::find().order_by_asc(scaled_objects::Column::Id).all(db).await? {
        let field = format!("scaled object {}/{}", row.namespace, row.name);
        let spec: ScaledObjectSpec =
            serde_json::from_value(row.spec).map_err(|e| Error::invalid(format!("{field} spec"), e.to_string()))?;
        let cluster = clusters.get(&row.cluster_id).ok_or_else(|| Error::NotFound(format!("cluster {}", row.cluster_id)))?;
        out.push(StoredObject {
            id: row.id,
            tenant: tenants.get(&row.tenant_id).cloned().unwrap_or_default(),
            cluster: cluster.name.clone(),
            cluster_kind: cluster.kind.clone(),
            namespace: row.namespace,
            name: row.name,
            origin: row.origin,
            spec,
        });
    }
    Ok(out)
}

/// Writes one audit entry, on a connection or inside the caller's transaction.
pub async fn audit<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant_id: Option<i32>,
    actor: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<()> {
    audit_log::ActiveModel {
        tenant_id: Set(tenant_id),
        actor: Set(actor.into()),
        action: Set(action.into()),
        target: Set(target.into()),
        detail: Set(detail),
        at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The overrides in force at `now` (not cleared, not expired), one per object at most.
pub async fn active_overrides(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<Vec<overrides::Model>> {
    let rows = overrides::Entity::find()
        .filter(overrides::Column::ClearedAt.is_null())
        .order_by_asc(overrides::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().filter(|o| o.expires_at.is_none_or(|e| e > now)).collect())
}

/// Replaces the object's override (clearing any earlier one) and writes the audit entry,
/// all in one transaction.
pub async fn set_override(
    db: &DatabaseConnection,
    scaled_object_id: i32,
    kind: &str,
    replicas: Option<i32>,
    reason: &str,
    actor: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<overrides::Model> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let object = scaled_objects::Entity::find_by_id(scaled_object_id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("scaled object {scaled_object_id}")))?;
    clear_active(&txn, scaled_object_id, now).await?;
    let row = overrides::ActiveModel {
        scaled_object_id: Set(scaled_object_id),
        kind: Set(kind.into()),
        replicas: Set(replicas),
        reason: Set(reason.into()),
        created_by: Set(actor.into()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        cleared_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit(
        &txn,
        Some(object.tenant_id),
        actor,
        &format!("override.{kind}"),
        &format!("{}/{}", object.namespace, object.name),
        serde_json::json!({"replicas": replicas, "reason": reason, "expires_at": expires_at}),
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// Clears the object's override (resume); returns whether there was one.
pub async fn clear_override(db: &DatabaseConnection, scaled_object_id: i32, reason: &str, actor: &str) -> Result<bool> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let object = scaled_objects::Entity::find_by_id(scaled_object_id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("scaled object {scaled_object_id}")))?;
    let cleared = clear_active(&txn, scaled_object_id, now).await?;
    audit(
        &txn,
        Some(object.tenant_id),
        actor,
        "override.clear",
        &format!("{}/{}", object.namespace, object.name),
        serde_json::json!({"reason": reason, "cleared": cleared}),
    )
    .await?;
    txn.commit().await?;
    Ok(cleared > 0)
}

async fn clear_active(txn: &sea_orm::DatabaseTransaction, scaled_object_id: i32, now: DateTime<Utc>) -> Result<u64> {
    use sea_orm::sea_query::Expr;
    let res = overrides::Entity::update_many()
        .col_expr(overrides::Column::ClearedAt, Expr::value(now))
        .filter(overrides::Column::ScaledObjectId.eq(scaled_object_id))
        .filter(overrides::Column::ClearedAt.is_null())
        .exec(txn)
        .await?;
    Ok(res.rows_affected)
}

/// The audit log of a tenant, newest first.
pub async fn audit_entries(db: &DatabaseConnection, tenant_id: i32, limit: u64) -> Result<Vec<audit_log::Model>> {
    audit_entries_matching(db, tenant_id, "", limit).await
}

/// The tenant's newest `limit` audit entries whose action starts with `action`.
pub async fn audit_entries_matching(db: &DatabaseConnection, tenant_id: i32, action: &str, limit: u64) -> Result<Vec<audit_log::Model>> {
    let mut q = audit_log::Entity::find().filter(audit_log::Column::TenantId.eq(tenant_id));
    if !action.is_empty() {
        q = q.filter(audit_log::Column::Action.starts_with(action));
    }
    Ok(q.order_by_desc(audit_log::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Deletes a ScaledObject with its triggers, overrides, decisions and samples, in one
/// transaction, and audits it.
pub async fn delete_scaled_object(db: &DatabaseConnection, id: i32, actor: &str, what: &str) -> Result<()> {
    let txn = db.begin().await?;
    let row = scaled_objects::Entity::find_by_id(id).one(&txn).await?;
    let tenant_id = row.as_ref().map(|r| r.tenant_id);
    if let Some(r) = &row {
        delete_trigger_auth(&txn, r.tenant_id, &r.namespace, &crate::inline_secrets::auth_name(&r.name)).await?;
    }
    triggers::Entity::delete_many().filter(triggers::Column::ScaledObjectId.eq(id)).exec(&txn).await?;
    overrides::Entity::delete_many().filter(overrides::Column::ScaledObjectId.eq(id)).exec(&txn).await?;
    decisions::Entity::delete_many().filter(decisions::Column::ScaledObjectId.eq(id)).exec(&txn).await?;
    metric_samples::Entity::delete_many().filter(metric_samples::Column::ScaledObjectId.eq(id)).exec(&txn).await?;
    object_state::Entity::delete_many().filter(object_state::Column::ScaledObjectId.eq(id)).exec(&txn).await?;
    scaled_objects::Entity::delete_by_id(id).exec(&txn).await?;
    audit(&txn, tenant_id, actor, "scaled_object.delete", what, serde_json::json!({})).await?;
    txn.commit().await?;
    Ok(())
}

/// The ids, namespaces and names of a cluster's objects that came from its CRDs.
pub async fn cluster_origin_objects(db: &DatabaseConnection, cluster: &str) -> Result<Vec<(i32, String, String, String)>> {
    let Some(c) = find_cluster(db, cluster).await? else { return Ok(Vec::new()) };
    let tenants: std::collections::HashMap<i32, String> =
        tenants::Entity::find().all(db).await?.into_iter().map(|t| (t.id, t.slug)).collect();
    Ok(scaled_objects::Entity::find()
        .filter(scaled_objects::Column::ClusterId.eq(c.id))
        .filter(scaled_objects::Column::Origin.eq("cluster"))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.id, tenants.get(&r.tenant_id).cloned().unwrap_or_default(), r.namespace, r.name))
        .collect())
}

/// Registers (or replaces) a real cluster: `kind` is `kubeconfig` (with the sealed
/// kubeconfig) or `in-cluster`; its CRD objects belong to `tenant_id`.
pub async fn register_cluster(db: &DatabaseConnection, name: &str, kind: &str, kubeconfig_enc: Option<Vec<u8>>, tenant_id: i32) -> Result<clusters::Model> {
    let row = match find_cluster(db, name).await? {
        Some(existing) => {
            let mut active: clusters::ActiveModel = existing.into();
            active.kind = Set(kind.into());
            active.kubeconfig_enc = Set(kubeconfig_enc);
            active.tenant_id = Set(Some(tenant_id));
            active.update(db).await?
        }
        None => {
            clusters::ActiveModel {
                name: Set(name.into()),
                kind: Set(kind.into()),
                kubeconfig_enc: Set(kubeconfig_enc),
                tenant_id: Set(Some(tenant_id)),
                created_at: Set(Utc::now()),
                ..Default::default()
            }
            .insert(db)
            .await?
        }
    };
    audit(db, Some(tenant_id), "cli", "cluster.register", name, serde_json::json!({"kind": kind})).await?;
    Ok(row)
}

/// Every cluster, oldest first.
pub async fn list_clusters(db: &DatabaseConnection) -> Result<Vec<clusters::Model>> {
    Ok(clusters::Entity::find().order_by_asc(clusters::Column::Id).all(db).await?)
}

pub async fn tenant_slug(db: &DatabaseConnection, id: i32) -> Result<Option<String>> {
    Ok(tenants::Entity::find_by_id(id).one(db).await?.map(|t| t.slug))
}

/// Creates or replaces a ScaledJob synced from a cluster (spec as JSON, status as last seen).
pub async fn upsert_scaled_job(
    db: &DatabaseConnection,
    tenant_id: i32,
    cluster_id: i32,
    namespace: &str,
    name: &str,
    spec: serde_json::Value,
    status: Option<serde_json::Value>,
) -> Result<i32> {
    use entities::scaled_jobs;
    let now = Utc::now();
    let existing = scaled_jobs::Entity::find()
        .filter(scaled_jobs::Column::ClusterId.eq(cluster_id))
        .filter(scaled_jobs::Column::Namespace.eq(namespace))
        .filter(scaled_jobs::Column::Name.eq(name))
        .one(db)
        .await?;
    Ok(match existing {
        Some(row) => {
            let mut active: scaled_jobs::ActiveModel = row.into();
            active.spec = Set(spec);
            active.status = Set(status);
            active.updated_at = Set(now);
            active.update(db).await?.id
        }
        None => {
            scaled_jobs::ActiveModel {
                tenant_id: Set(tenant_id),
                cluster_id: Set(cluster_id),
                namespace: Set(namespace.into()),
                name: Set(name.into()),
                origin: Set("cluster".into()),
                spec: Set(spec),
                status: Set(status),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?
            .id
        }
    })
}

pub async fn delete_scaled_job(db: &DatabaseConnection, cluster_id: i32, namespace: &str, name: &str) -> Result<()> {
    use entities::scaled_jobs;
    scaled_jobs::Entity::delete_many()
        .filter(scaled_jobs::Column::ClusterId.eq(cluster_id))
        .filter(scaled_jobs::Column::Namespace.eq(namespace))
        .filter(scaled_jobs::Column::Name.eq(name))
        .exec(db)
        .await?;
    Ok(())
}

/// (namespace, name) of every ScaledJob stored for a cluster.
pub async fn scaled_jobs_of(db: &DatabaseConnection, cluster_id: i32) -> Result<Vec<(String, String)>> {
    use entities::scaled_jobs;
    Ok(scaled_jobs::Entity::find()
        .filter(scaled_jobs::Column::ClusterId.eq(cluster_id))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.namespace, r.name))
        .collect())
}
