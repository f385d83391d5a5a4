//! What the sources and clusters pages show: a tenant's webhooks and trigger
//! authentications (names and parameter names, never values) and its clusters' health.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use super::Engine;
use crate::actuate::ClusterHandle;
use crate::store::{self, entities};
use crate::{Error, Result};

#[derive(Clone, Debug, Serialize)]
pub struct WebhookView {
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// The last push this instance took (pushes relayed to the leader count where they land).
    pub last_push: Option<DateTime<Utc>>,
    pub value: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TriggerAuthView {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// Parameter names only; the values stay sealed in SQL.
    pub parameters: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterView {
    pub name: String,
    pub kind: String,
    /// This instance has a client for it (simulated clusters always).
    pub connected: bool,
    /// This instance holds its leader lease (acts on it).
    pub leader: bool,
    pub objects: usize,
    /// The last error its watch or sync met, and when (cleared by the next success).
    pub last_sync_error: Option<(DateTime<Utc>, String)>,
}

impl Engine {
    /// The tenant's webhook sources and trigger authentications kept in SQL.
    pub async fn sources(&self, tenant: &str) -> Result<(Vec<WebhookView>, Vec<TriggerAuthView>)> {
        let db = &self.inner.db;
        let t = store::find_tenant(db, tenant).await?.ok_or_else(|| Error::NotFound(format!("tenant {tenant}")))?;
        let hooks = entities::webhook_sources::Entity::find()
            .filter(entities::webhook_sources::Column::TenantId.eq(t.id))
            .order_by_asc(entities::webhook_sources::Column::Name)
            .all(db)
            .await?;
        let board = &self.inner.ctx.push;
        let webhooks = hooks
            .into_iter()
            .map(|h| WebhookView { last_push: board.last_push(tenant, &h.name), value: board.value(tenant, &h.name), name: h.name, created_at: h.created_at })
            .collect();
        let auths = entities::trigger_auths::Entity::find()
            .filter(entities::trigger_auths::Column::TenantId.eq(t.id))
            .order_by_asc(entities::trigger_auths::Column::Name)
            .all(db)
            .await?;
        let auths = auths
            .into_iter()
            .map(|a| TriggerAuthView {
                parameters: a.spec.get("parameters").and_then(|p| p.as_array()).into_iter().flatten().filter_map(|p| p.as_str().map(String::from)).collect(),
                kind: a.kind,
                namespace: a.namespace,
                name: a.name,
                updated_at: a.updated_at,
            })
            .collect();
        Ok((webhooks, auths))
    }

    /// The clusters the tenant's objects run on, and the ones registered to it.
    pub async fn clusters_of(&self, tenant: &str) -> Result<Vec<ClusterView>> {
        let db = &self.inner.db;
        let t = store::find_tenant(db, tenant).await?.ok_or_else(|| Error::NotFound(format!("tenant {tenant}")))?;
        let counts: std::collections::BTreeMap<String, usize> = {
            let views = self.inner.views.read().expect("views lock");
            let mut c = std::collections::BTreeMap::new();
            for v in views.values().filter(|v| v.tenant == tenant) {
                *c.entry(v.cluster.clone()).or_insert(0) += 1;
            }
            c
        };
        let errors = self.inner.sync_errors.read().expect("sync errors lock").clone();
        let rows = store::list_clusters(db).await?;
        let handles = self.inner.clusters.read().expect("clusters lock");
        Ok(rows
            .into_iter()
            .filter(|c| c.tenant_id == Some(t.id) || counts.contains_key(&c.name))
            .map(|c| {
                let handle = handles.get(&c.name);
                let simulated = c.kind == "simulated";
                ClusterView {
                    connected: simulated || handle.is_some(),
                    leader: simulated || matches!(handle, Some(ClusterHandle::Kube(k)) if k.fence().holds()),
                    objects: counts.get(&c.name).copied().unwrap_or(0),
                    last_sync_error: errors.get(&c.name).cloned(),
                    name: c.name,
                    kind: c.kind,
                }
            })
            .collect())
    }

    /// Notes (or, with `None`, clears) the last error syncing `cluster`, for the clusters page.
    pub fn sync_error(&self, cluster: &str, error: Option<String>) {
        let changed = {
            let mut errors = self.inner.sync_errors.write().expect("sync errors lock");
            match error {
                Some(e) => {
                    let e = crate::redact::redact(&e);
                    let same = errors.get(cluster).is_some_and(|(_, old)| *old == e);
                    errors.insert(cluster.to_string(), (Utc::now(), e));
                    !same
                }
                None => errors.remove(cluster).is_some(),
            }
        };
        if changed {
            self.touched(None, super::Topic::Clusters);
        }
    }
}
