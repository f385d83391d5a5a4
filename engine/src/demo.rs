//! The demo: a simulated cluster replaying real traces, and three ScaledObjects on it.

use std::collections::BTreeMap;

use sea_orm::DatabaseConnection;

use crate::Result;
use crate::sim::{SimCluster, WorkloadKind, WorkloadSpec, builtin_trace};
use crate::spec::{Actuation, Advanced, HpaBehavior, HpaConfig, ScaleTargetRef, ScaledObjectSpec, ScalingRules, Trigger};
use crate::predict::config::{AnomalySpec, PredictiveSpec};
use crate::store;

pub const TENANT: &str = "demo";
pub const CLUSTER: &str = "simulated";
/// A deployment of the simulated cluster no demo object scales, for objects users make.
pub const PLAYGROUND: &str = "playground";
pub const NAMESPACE: &str = "shop";

/// Trace seconds per wall-clock second: one recorded minute plays in one second.
pub const SPEED: f64 = 60.0;

/// The history a predictive demo object keeps (6 hours of wall clock: 15 days of trace).
const HISTORY_SECS: u32 = 6 * 3600;

struct DemoObject {
    name: &'static str,
    deployment: &'static str,
    workload: WorkloadSpec,
    startup_delay_secs: f64,
    pod_throughput: f64,
    target: f64,
    activation_target: f64,
    min: i32,
    max: i32,
    cooldown: u32,
    predictive: Option<PredictiveSpec>,
    anomaly: Option<AnomalySpec>,
}

fn objects() -> Vec<DemoObject> {
    let nasa = builtin_trace("nasa-http-1995").expect("shipped");
    let mongo = builtin_trace("mongo-01-2018").expect("shipped");
    vec![
        DemoObject {
            name: "web-frontend",
            deployment: "web",
            // NASA KSC requests per minute, replayed as requests per second.
            workload: WorkloadSpec { name: "web-requests".into(), kind: WorkloadKind::Rate, trace: nasa.clone(), scale: 1.0, offset_secs: 8.0 * 3600.0, deployment: "web".into() },
            startup_delay_secs: 5.0,
            pod_throughput: 25.0,
            target: 20.0,
            activation_target: 0.0,
            min: 1,
            max: 12,
            cooldown: 60,
            // Forecast from the first minute (history seeded from the trace below) and guarded.
            predictive: Some(serde_json::from_value(serde_json::json!({"mode": "on", "history": HISTORY_SECS, "minHistory": 3600, "podStartup": 5})).expect("demo spec")),
            anomaly: Some(serde_json::from_value(serde_json::json!({"policy": "hold", "minHistory": 300})).expect("demo spec")),
        },
        DemoObject {
            name: "catalog-api",
            deployment: "catalog",
            // MongoDB queries per second, one hundredth of the recorded rate.
            workload: WorkloadSpec { name: "catalog-queries".into(), kind: WorkloadKind::Rate, trace: mongo, scale: 0.01, offset_secs: 2910.0 * 60.0, deployment: "catalog".into() },
            startup_delay_secs: 8.0,
            pod_throughput: 8.0,
            target: 6.0,
            activation_target: 0.0,
            min: 1,
            max: 12,
            cooldown: 60,
            predictive: None,
            anomaly: Some(serde_json::from_value(serde_json::json!({"policy": "clampStep", "minHistory": 300})).expect("demo spec")),
        },
        DemoObject {
            name: "orders-worker",
            deployment: "worker",
            // A queue whose arrivals follow the NASA trace a day and a half later, at a fifth.
            workload: WorkloadSpec { name: "orders-queue".into(), kind: WorkloadKind::Queue, trace: nasa, scale: 0.2, offset_secs: 36.0 * 3600.0, deployment: "worker".into() },
            startup_delay_secs: 3.0,
            pod_throughput: 5.0,
            target: 10.0,
            activation_target: 5.0,
            min: 0,
            max: 8,
            cooldown: 20,
            predictive: None,
            anomaly: None,
        },
    ]
}

/// The simulated cluster with the demo's deployments and workloads.
pub fn cluster() -> SimCluster {
    cluster_with_playgrounds(1)
}

/// The name of the `n`th deployment left for users' objects (`playground`, `playground-2`, …).
pub fn playground(n: usize) -> String {
    if n <= 1 { PLAYGROUND.to_string() } else { format!("{PLAYGROUND}-{n}") }
}

/// The demo's cluster with `n` playground deployments (at least one), for benchmarks that
/// make many objects, each needing a deployment of its own.
pub fn cluster_with_playgrounds(n: usize) -> SimCluster {
    let mut c = SimCluster::new(SPEED);
    for o in objects() {
        c.add_deployment(o.deployment, o.min.max(1), o.startup_delay_secs, o.pod_throughput);
        c.add_workload(o.workload);
    }
    // No object scales it: it is there for objects made in the dashboard or the CLI.
    for i in 1..=n.max(1) {
        c.add_deployment(&playground(i), 1, 5.0, 10.0);
    }
    c
}

/// Stores the demo tenant, cluster and ScaledObjects (idempotent: re-running replaces them).
pub async fn seed(db: &DatabaseConnection) -> Result<()> {
    let tenant = store::ensure_tenant(db, TENANT, "Demo").await?;
    let cluster = store::ensure_cluster(db, CLUSTER, "simulated").await?;
    for o in objects() {
        let metadata: BTreeMap<String, String> = [
            ("workload".to_string(), o.workload.name.clone()),
            ("target".to_string(), o.target.to_string()),
            ("activationTarget".to_string(), o.activation_target.to_string()),
        ]
        .into();
        let spec = ScaledObjectSpec {
            scale_target_ref: ScaleTargetRef { name: o.deployment.into(), kind: "Deployment".into(), api_version: "apps/v1".into(), env_source_container_name: None },
            // The simulated cluster has no HPA controller: Swell moves it itself.
            actuation: Actuation::Direct,
            polling_interval: 1,
            cooldown_period: o.cooldown,
            initial_cooldown_period: 0,
            idle_replica_count: None,
            min_replica_count: o.min,
            max_replica_count: o.max,
            fallback: None,
            // The trace plays at 60× speed, so the HPA's 300 s scale-down window would hide
            // an hour of traffic; 20 s keeps the demo lively.
            advanced: Some(Advanced {
                horizontal_pod_autoscaler_config: Some(HpaConfig {
                    name: None,
                    behavior: Some(HpaBehavior {
                        scale_up: None,
                        scale_down: Some(ScalingRules { stabilization_window_seconds: Some(20), ..Default::default() }),
                    }),
                }),
                ..Default::default()
            }),
            triggers: vec![Trigger { trigger_type: "simulated".into(), name: Some(o.workload.name.clone()), metadata, metric_type: None, use_cached_metrics: false, authentication_ref: None }],
            predictive: o.predictive.clone(),
            anomaly: o.anomaly.clone(),
        };
        let metric = spec.triggers[0].metric_name(0);
        let id = store::upsert_scaled_object(db, tenant.id, cluster.id, NAMESPACE, o.name, "swell", &spec).await?;
        if spec.predictive.is_some() {
            seed_history(db, id, &metric, &o.workload).await?;
        }
    }
    Ok(())
}

/// What the metric read in the hours before the demo started (the trace played backwards at
/// the demo's speed), so a predictive object trains at its first poll and forecasts from its
/// first minute. Left alone when the object already has recent samples (a restarted demo).
async fn seed_history(db: &DatabaseConnection, id: i32, metric: &str, w: &WorkloadSpec) -> Result<()> {
    let now = chrono::Utc::now();
    let from = now - chrono::Duration::seconds(HISTORY_SECS as i64);
    if !store::samples_between(db, id, metric, from, now).await?.is_empty() {
        return Ok(());
    }
    let samples: Vec<store::NewSample> = (1..=HISTORY_SECS as i64 / 30)
        .rev()
        .map(|k| {
            let ago = k * 30;
            let value = w.trace.value_at(w.offset_secs - ago as f64 * SPEED) * w.scale;
            store::NewSample { scaled_object_id: id, metric: metric.to_string(), at: now - chrono::Duration::seconds(ago), value }
        })
        .collect();
    for chunk in samples.chunks(200) {
        store::write_batch(db, &[], chunk, &[]).await?;
    }
    Ok(())
}
