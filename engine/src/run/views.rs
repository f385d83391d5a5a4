//! What the dashboard, the CLI and the metrics API read: each object's view as of its last poll.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Engine;
use crate::decide::Phase;
use crate::store::{self, StoredObject};
use crate::Result;

/// Readings a sparkline keeps.
pub const SPARK_POINTS: usize = 60;

/// What the dashboard shows of one ScaledObject.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectView {
    pub id: i32,
    pub tenant: String,
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// `swell` (made in Swell) or `cluster` (synced from a CRD).
    pub origin: String,
    pub target: String,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub current_replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub desired_replicas: Option<i32>,
    pub phase: String,
    pub metrics: Vec<(String, f64)>,
    pub last_decision: Option<String>,
    pub last_decision_at: Option<DateTime<Utc>>,
    /// Why the object cannot be scaled, when it cannot (bad spec, unknown cluster…).
    pub error: Option<String>,
    /// The manual override in force, described.
    pub override_: Option<String>,
    /// What the metrics API serves the HPA, by external metric name (after fallback).
    pub external: BTreeMap<String, f64>,
    /// The last time a source was active, as persisted (KEDA `status.lastActiveTime`).
    pub last_active: Option<DateTime<Utc>>,
    /// Consecutive failures per metric (KEDA `status.health`).
    pub health: BTreeMap<String, u32>,
    /// The target's replicas when Swell first saw it (KEDA `status.originalReplicaCount`).
    pub original_replicas: Option<i32>,
    /// The rule of the last decision (`scale_to_zero`, `fallback`…).
    pub last_rule: Option<String>,
    /// Annotations that were read leniently, said in words.
    pub warnings: Vec<String>,
    /// Each trigger's metric, target and activation threshold, in trigger order.
    pub triggers: Vec<TriggerView>,
    /// The first metric's last [`SPARK_POINTS`] readings (unix ms, value), for sparklines.
    pub spark: std::collections::VecDeque<(i64, f64)>,
    /// What the forecast was and did at the last poll (predictive objects).
    pub forecast: Option<crate::predict::live::ForecastNote>,
    /// The predictor's state in words (model in use, training, history still missing).
    pub model_status: Option<String>,
    /// What the anomaly guard found at the last poll, and what its policy did.
    pub anomaly: Option<crate::predict::guard::AnomalyNote>,
    /// External metrics whose reading looks broken: the last good value is served instead.
    #[serde(skip)]
    pub(crate) held: BTreeMap<String, f64>,
    /// In hpa mode: the forecast served for an external metric instead of a lower reading.
    #[serde(skip)]
    pub(crate) forecast_floor: Option<(String, f64)>,
    /// The spec in force (for status; not sent to pages).
    #[serde(skip)]
    pub spec: Option<std::sync::Arc<crate::spec::ScaledObjectSpec>>,
    /// The scalers the metrics API asks at request time (triggers without useCachedMetrics).
    #[serde(skip)]
    pub(crate) live: LiveMetrics,
}

/// External metric name → the scaler to ask for it when the HPA asks (KEDA's default; with
/// `useCachedMetrics` the last poll's value is served instead).
#[derive(Clone, Default)]
pub(crate) struct LiveMetrics(pub(crate) Vec<(String, std::sync::Arc<dyn crate::scalers::Scaler>)>);

impl std::fmt::Debug for LiveMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
}

impl ObjectView {
    /// The view of an object that has not been polled yet.
    pub(super) fn of(stored: &StoredObject) -> Self {
        ObjectView {
            id: stored.id,
            tenant: stored.tenant.clone(),
            cluster: stored.cluster.clone(),
            namespace: stored.namespace.clone(),
            name: stored.name.clone(),
            origin: stored.origin.clone(),
            target: format!("{}/{}", stored.spec.scale_target_ref.kind, stored.spec.scale_target_ref.name),
            min_replicas: stored.spec.min_replica_count,
            max_replicas: stored.spec.max_replica_count,
            current_replicas: None,
            ready_replicas: None,
            desired_replicas: None,
            phase: Phase::Idle.as_str().into(),
            metrics: Vec::new(),
            last_decision: None,
            last_decision_at: None,
            error: None,
            override_: None,
            external: BTreeMap::new(),
            last_active: None,
            health: BTreeMap::new(),
            original_replicas: None,
            last_rule: None,
            warnings: Vec::new(),
            triggers: Vec::new(),
            spark: Default::default(),
            forecast: None,
            forecast_floor: None,
            model_status: None,
            anomaly: None,
            held: BTreeMap::new(),
            spec: Some(std::sync::Arc::new(stored.spec.clone())),
            live: LiveMetrics::default(),
        }
    }
}

/// One trigger as the dashboard shows it: its metric, its targets and its last reading.
#[derive(Clone, Debug, Serialize)]
pub struct TriggerView {
    pub kind: String,
    pub metric: String,
    pub target: f64,
    pub activation_target: f64,
    /// The last reading (the sum over the trigger's values), or why it failed.
    pub last: std::result::Result<f64, String>,
    /// How long the last reading took.
    pub latency_ms: u64,
}

/// One recorded decision, as the dashboard shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DecisionView {
    pub at: DateTime<Utc>,
    pub state: String,
    pub rule: String,
    pub prev_replicas: i32,
    pub new_replicas: i32,
    pub explanation: String,
}

impl Engine {
    /// Tenants that own at least one object, sorted.
    pub fn tenants(&self) -> Vec<String> {
        let views = self.inner.views.read().expect("views lock");
        let mut t: Vec<String> = views.values().map(|v| v.tenant.clone()).collect();
        t.sort();
        t.dedup();
        t
    }

    /// The tenant's ScaledObjects as of the last pass of the loop.
    pub fn overview(&self, tenant: &str) -> Vec<ObjectView> {
        let views = self.inner.views.read().expect("views lock");
        views.values().filter(|v| v.tenant == tenant).cloned().collect()
    }

    /// The object's newest decisions, newest first (what the loop has written so far).
    pub async fn decisions(&self, tenant: &str, object_id: i32, limit: u64) -> Result<Vec<DecisionView>> {
        self.decisions_where(tenant, object_id, None, None, limit).await
    }

    /// [`Engine::decisions`] of one rule and since a time, when given.
    pub async fn decisions_where(&self, tenant: &str, object_id: i32, rule: Option<&str>, since: Option<DateTime<Utc>>, limit: u64) -> Result<Vec<DecisionView>> {
        self.require_object(tenant, object_id)?;
        Ok(store::recent_decisions_where(&self.inner.db, object_id, rule, since, limit)
            .await?
            .into_iter()
            .map(|d| DecisionView {
                at: d.at,
                state: d.state,
                rule: d.rule,
                prev_replicas: d.prev_replicas,
                new_replicas: d.new_replicas,
                explanation: d.explanation,
            })
            .collect())
    }

    /// One object's view, if it exists in `tenant`.
    pub fn object(&self, tenant: &str, object_id: i32) -> Option<ObjectView> {
        let views = self.inner.views.read().expect("views lock");
        views.get(&object_id).filter(|v| v.tenant == tenant).cloned()
    }

    /// The current value of an external metric for the HPA of `object` (what
    /// `external.metrics.k8s.io` serves), looked up by its name (`s<index>-<trigger metric>`
    /// or `composite-metric`), so a failing trigger never shifts another's value.
    pub fn external_metric(&self, cluster: Option<&str>, namespace: &str, object: &str, metric: &str) -> Option<f64> {
        let views = self.inner.views.read().expect("views lock");
        views
            .values()
            .filter(|v| v.namespace == namespace && v.name == object && cluster.is_none_or(|c| c == v.cluster))
            .find_map(|v| v.external.get(metric).copied())
    }

    /// [`Engine::external_metric`] as KEDA serves it: a trigger without `useCachedMetrics`
    /// is asked at request time (under the scaler timeout); its last poll's value (with
    /// fallback) stands in when that query fails, and for cached triggers and composites.
    pub async fn external_metric_now(&self, cluster: Option<&str>, namespace: &str, object: &str, metric: &str) -> Option<f64> {
        let (live, floor) = {
            let views = self.inner.views.read().expect("views lock");
            let view = views.values().find(|v| v.namespace == namespace && v.name == object && cluster.is_none_or(|c| c == v.cluster));
            let live = view.and_then(|v| v.live.0.iter().find(|(name, _)| name == metric).map(|(_, s)| s.clone()));
            let floor = view.and_then(|v| v.forecast_floor.as_ref().filter(|(name, _)| name == metric).map(|(_, f)| *f));
            // A metric that looked broken at the last poll is served from it, not read again.
            let live = live.filter(|_| !view.is_some_and(|v| v.held.contains_key(metric)));
            (live, floor)
        };
        if let Some(scaler) = live {
            if let Ok(Ok((values, _))) = tokio::time::timeout(self.inner.opts.scaler_timeout, scaler.metrics_and_activity()).await {
                let now: f64 = values.iter().map(|v| v.value).sum();
                return Some(floor.map_or(now, |f| now.max(f)));
            }
        }
        self.external_metric(cluster, namespace, object, metric)
    }

    /// The id of an object by its place in a cluster.
    pub fn find(&self, cluster: &str, namespace: &str, name: &str) -> Option<ObjectView> {
        let views = self.inner.views.read().expect("views lock");
        views.values().find(|v| v.cluster == cluster && v.namespace == namespace && v.name == name).cloned()
    }

    /// Every object of one cluster, as of the last pass.
    pub fn cluster_objects(&self, cluster: &str) -> Vec<ObjectView> {
        let views = self.inner.views.read().expect("views lock");
        views.values().filter(|v| v.cluster == cluster).cloned().collect()
    }
}

