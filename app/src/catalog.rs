//! What the sources and clusters pages read: row types and their server functions.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookRow {
    pub name: String,
    pub created_at: String,
    pub last_push: Option<String>,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerAuthRow {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Parameter names; values are never sent.
    pub parameters: Vec<String>,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sources {
    pub webhooks: Vec<WebhookRow>,
    pub trigger_auths: Vec<TriggerAuthRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterRow {
    pub name: String,
    pub kind: String,
    pub connected: bool,
    pub leader: bool,
    pub objects: usize,
    pub last_sync_error: Option<String>,
}

#[cfg(feature = "ssr")]
fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The tenant's event sources: webhooks with their last push, trigger authentications by name.
#[server(client = crate::client::ApiClient, endpoint = "load_sources")]
pub async fn load_sources(tenant: String) -> Result<Sources, ServerFnError> {
    use crate::api::ssr;
    ssr::authorize(&tenant, engine::access::Role::Viewer, "load_sources").await?;
    let (hooks, auths) = ssr::engine()?.sources(&tenant).await.map_err(ssr::fail)?;
    Ok(Sources {
        webhooks: hooks.into_iter().map(|h| WebhookRow { name: h.name, created_at: when(h.created_at), last_push: h.last_push.map(when), value: h.value }).collect(),
        trigger_auths: auths
            .into_iter()
            .map(|a| TriggerAuthRow { kind: a.kind, namespace: a.namespace.unwrap_or_default(), name: a.name, parameters: a.parameters, updated_at: when(a.updated_at) })
            .collect(),
    })
}

/// The clusters the tenant's objects run on: connected, leader, objects, last sync error.
#[server(client = crate::client::ApiClient, endpoint = "load_clusters")]
pub async fn load_clusters(tenant: String) -> Result<Vec<ClusterRow>, ServerFnError> {
    use crate::api::ssr;
    ssr::authorize(&tenant, engine::access::Role::Viewer, "load_clusters").await?;
    let clusters = ssr::engine()?.clusters_of(&tenant).await.map_err(ssr::fail)?;
    Ok(clusters
        .into_iter()
        .map(|c| ClusterRow {
            name: c.name,
            kind: c.kind,
            connected: c.connected,
            leader: c.leader,
            objects: c.objects,
            last_sync_error: c.last_sync_error.map(|(at, e)| format!("{}: {e}", when(at))),
        })
        .collect())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub strategy: String,
    pub max_replicas: i64,
    pub queue: i64,
    pub max_scale: i64,
    pub running: i64,
    pub pending: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub created: i64,
    pub paused: bool,
    pub explanation: String,
    pub error: Option<String>,
    pub at: String,
}

/// What a ScaledJob strategy does, in words (KEDA's formulas).
pub fn strategy_text(strategy: &str) -> &'static str {
    match strategy {
        "custom" => "custom: new Jobs = min(maxScale − deduction − running × runningJobPercentage, max − running)",
        "accurate" => "accurate: new Jobs = maxScale − running + pending (when maxScale + running ≤ max), else max − running",
        _ => "default: new Jobs = maxScale − running (capped at max − running)",
    }
}

/// The tenant's ScaledJobs as of their last polls.
#[server(client = crate::client::ApiClient, endpoint = "load_jobs")]
pub async fn load_jobs(tenant: String) -> Result<Vec<JobRow>, ServerFnError> {
    use crate::api::ssr;
    ssr::authorize(&tenant, engine::access::Role::Viewer, "load_jobs").await?;
    Ok(ssr::engine()?
        .jobs(&tenant)
        .into_iter()
        .map(|j| JobRow {
            cluster: j.cluster,
            namespace: j.namespace,
            name: j.name,
            strategy: j.strategy,
            max_replicas: j.max_replicas,
            queue: j.queue,
            max_scale: j.max_scale,
            running: j.running,
            pending: j.pending,
            succeeded: j.succeeded,
            failed: j.failed,
            created: j.created,
            paused: j.paused,
            explanation: j.explanation,
            error: j.error,
            at: when(j.at),
        })
        .collect())
}
