//! The engine's Prometheus metrics (KEDA's set, named `swell_*`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// One scaled object (or job): KEDA's `namespace`, `scaledObject` and `type` labels, plus
/// the cluster it lives in.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub cluster: String,
    pub namespace: String,
    pub scaled_object: String,
    /// `scaledobject` or `scaledjob`.
    pub r#type: String,
}

/// One trigger of an object: KEDA's `scaler`, `metric` and `triggerIndex` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScalerLabels {
    pub cluster: String,
    pub namespace: String,
    pub scaled_object: String,
    pub r#type: String,
    pub scaler: String,
    pub metric: String,
    pub trigger_index: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// What a failed write to a cluster was: `status`, `event`, `scaledjob_status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub what: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub scaler_metrics_value: Family<ScalerLabels, Gauge<f64, AtomicU64>>,
    pub scaler_active: Family<ScalerLabels, Gauge>,
    pub scaler_errors: Family<ScalerLabels, Counter>,
    pub scaler_latency: Family<ScalerLabels, Gauge<f64, AtomicU64>>,
    pub paused: Family<ObjectLabels, Gauge>,
    pub desired_replicas: Family<ObjectLabels, Gauge>,
    pub decisions: Family<RuleLabels, Counter>,
    /// Broken metric readings caught, by the anomaly policy that answered them.
    pub anomalies: Family<PolicyLabels, Counter>,
    pub forecast_mape: Family<ObjectLabels, Gauge<f64, AtomicU64>>,
    pub actuation_errors: Family<ObjectLabels, Counter>,
    pub loop_latency: Histogram,
    pub tick_lateness: Histogram,
    pub skipped_polls: Counter,
    pub rows_written: Counter,
    /// Decision and sample rows handed to the writer; queued = written + pending + dropped.
    pub rows_queued: Counter,
    /// Rows kept in memory until SQL answers again (an outage, a slow database).
    pub rows_pending: Gauge,
    pub rows_dropped: Counter,
    pub scale_writes: Counter,
    /// 1 while this instance holds the leader lease (or runs without election).
    pub leader: Gauge,
    /// Webhook pushes by outcome (accepted, bad_signature, stale, unknown_source, …).
    pub webhook_requests: Family<OutcomeLabels, Counter>,
    /// Status and event writes the API server refused or never answered.
    pub cluster_write_errors: Family<WriteLabels, Counter>,
    /// Calls refused by authorization (no session, other tenant, role too low, bad token).
    pub refusals: Counter,
    /// Sign-ins by outcome (ok, refused, failed).
    pub logins: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("swell");
        let m = Metrics {
            scaler_metrics_value: Family::default(),
            scaler_active: Family::default(),
            scaler_errors: Family::default(),
            scaler_latency: Family::default(),
            paused: Family::default(),
            desired_replicas: Family::default(),
            decisions: Family::default(),
            anomalies: Family::default(),
            forecast_mape: Family::default(),
            actuation_errors: Family::default(),
            loop_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            // 0.1 ms to ~13 s in steps of 1.5×, fine enough to read a p99 from.
            tick_lateness: Histogram::new(exponential_buckets(0.0001, 1.5, 30)),
            skipped_polls: Counter::default(),
            rows_written: Counter::default(),
            rows_queued: Counter::default(),
            rows_pending: Gauge::default(),
            rows_dropped: Counter::default(),
            scale_writes: Counter::default(),
            leader: Gauge::default(),
            webhook_requests: Family::default(),
            cluster_write_errors: Family::default(),
            refusals: Counter::default(),
            logins: Family::default(),
            registry: Registry::default(),
        };
        registry.register("scaler_metrics_value", "Current value of each scaler's metric", m.scaler_metrics_value.clone());
        registry.register("scaler_active", "1 when the scaler reports its source active", m.scaler_active.clone());
        registry.register("scaler_errors", "Errors from scalers", m.scaler_errors.clone());
        registry.register("scaler_metrics_latency_seconds", "How long the scaler's last query took", m.scaler_latency.clone());
        registry.register("scaled_object_paused", "1 while the object is paused (override or annotation)", m.paused.clone());
        registry.register("scaled_object_desired_replicas", "Replicas the last decision asked for", m.desired_replicas.clone());
        registry.register("decisions", "Scaling decisions by the rule that fired", m.decisions.clone());
        registry.register("anomalies", "Broken metric readings caught, by the anomaly policy applied", m.anomalies.clone());
        registry.register("forecast_mape", "Validation MAPE of the forecast model in use (error on data it was not trained on; 0.1 = 10 %)", m.forecast_mape.clone());
        registry.register("actuation_errors", "Failed scale writes", m.actuation_errors.clone());
        registry.register("scale_loop_latency_seconds", "Time one object's poll, decision and actuation took", m.loop_latency.clone());
        registry.register("scheduler_lateness_seconds", "How late a poll was dispatched after it was due", m.tick_lateness.clone());
        registry.register("scheduler_skipped_polls", "Polls skipped because the previous poll of the object was still running", m.skipped_polls.clone());
        registry.register("store_rows_written", "Decision and sample rows written to SQL", m.rows_written.clone());
        registry.register("store_rows_queued", "Decision and sample rows handed to the SQL writer", m.rows_queued.clone());
        registry.register("store_rows_pending", "Rows kept in memory until SQL answers again", m.rows_pending.clone());
        registry.register("store_records_dropped", "Poll records, and rows kept through an outage, dropped because SQL could not keep up", m.rows_dropped.clone());
        registry.register("scale_writes", "Scale subresource writes to real clusters", m.scale_writes.clone());
        registry.register("leader", "1 while this instance may actuate (holds the leader lease)", m.leader.clone());
        registry.register("webhook_requests", "Webhook pushes by outcome", m.webhook_requests.clone());
        registry.register("cluster_write_errors", "Status and event writes that failed", m.cluster_write_errors.clone());
        registry.register("access_refusals", "Calls refused by authorization", m.refusals.clone());
        registry.register("logins", "Sign-ins by outcome", m.logins.clone());
        // Series with a fixed set of labels exist from the start at 0, so `rate()` and
        // `increase()` see the first event and dashboards show 0 rather than nothing.
        for what in ["status", "event", "scaledjob_status"] {
            let _ = m.cluster_write_errors.get_or_create(&WriteLabels { what: what.into() });
        }
        for outcome in ["accepted", "unsigned", "malformed", "stale", "unknown_source", "bad_signature", "replay"] {
            let _ = m.webhook_requests.get_or_create(&OutcomeLabels { outcome: outcome.into() });
        }
        for outcome in ["ok", "refused", "failed"] {
            let _ = m.logins.get_or_create(&OutcomeLabels { outcome: outcome.into() });
        }
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts a failed status or event write.
    pub fn write_failed(&self, what: &str) {
        self.cluster_write_errors.get_or_create(&WriteLabels { what: what.into() }).inc();
    }

    /// Drops every series of an object that is gone, so dashboards do not show it forever.
    pub fn forget(&self, object: &ObjectLabels, triggers: &[ScalerLabels]) {
        self.paused.remove(object);
        self.desired_replicas.remove(object);
        self.actuation_errors.remove(object);
        self.forecast_mape.remove(object);
        for t in triggers {
            self.scaler_metrics_value.remove(t);
            self.scaler_active.remove(t);
            self.scaler_errors.remove(t);
            self.scaler_latency.remove(t);
        }
    }

    /// The OpenMetrics text exposition of everything registered.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
