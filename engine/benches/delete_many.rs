//! Deleting many ScaledObjects at once on a real control plane: how soon polling stops and
//! how soon the finalizers are gone. Not a test: run on purpose.
//!
//!   cargo bench -p engine --bench delete_many
//!   BENCH_OBJECTS=1000 cargo bench -p engine --bench delete_many
//!
//! BENCH_OBJECTS Deployments, one direct-mode ScaledObject each (1 s polling, a metric that
//! wants 2 replicas), synced from the cluster by the engine (CRD watch, finalizer). Once all
//! run, every ScaledObject is deleted with one DELETE of the collection. Prints the time
//! until the last poll, until the engine forgot the last object and until the API server
//! lists none (every finalizer removed), with the polls, actuation errors and failed
//! cluster writes counted from the delete on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::actuate::{Fence, KubeCluster};
use engine::spec::ScaledObject;
use engine::{Engine, EngineOptions, store, sync};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use testenv::ControlPlane;
use testenv::k8s::{MetricEndpoint, deployment, install_crds, namespace};

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The sum of a counter (or a histogram's `_count`) over every label set.
fn total(engine: &Engine, name: &str) -> f64 {
    engine
        .metrics()
        .encode()
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::main]
async fn main() {
    let objects: usize = env("BENCH_OBJECTS", 1000);
    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    install_crds(&client, engine::crd::all()).await;
    namespace(&client, "bench").await;
    let metric = MetricEndpoint::start(15).await;
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "bench");
    let started = Instant::now();
    for i in 0..objects {
        let name = format!("d{i}");
        deployment(&client, "bench", &name, 1).await;
        let so: ScaledObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": format!("so{i}")},
            "spec": {"scaleTargetRef": {"name": name}, "actuation": "direct", "pollingInterval": 1, "minReplicaCount": 1, "maxReplicaCount": 10,
                     "triggers": [{"type": "metrics-api", "metadata": {"url": metric.url, "valueLocation": "value", "targetValue": "10"}}]}
        }))
        .unwrap();
        api.create(&PostParams::default(), &so).await.unwrap();
    }
    println!("{objects} Deployments and ScaledObjects created in {:.1} s", started.elapsed().as_secs_f64());

    let db = store::connect("sqlite::memory:").await.unwrap();
    store::migrate(&db).await.unwrap();
    let engine = Engine::new(db, EngineOptions { tick: Duration::from_millis(200), ..Default::default() }).await.unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let handle = engine.spawn(rx.clone());
    let cluster = Arc::new(KubeCluster::new("bench", client.clone(), Fence::always()));
    let synced = sync::run(engine.clone(), cluster, "bench".into(), Duration::from_millis(300), rx.clone());
    tokio::spawn(async move { synced.await.expect("cluster sync runs") });
    let started = Instant::now();
    while engine.cluster_objects("bench").iter().filter(|v| v.desired_replicas == Some(2)).count() < objects {
        assert!(started.elapsed() < Duration::from_secs(600), "not every object runs");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("all {objects} synced and at 2 replicas {:.1} s after the engine started", started.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(5)).await;

    let (polls0, errors0, writes0) = (total(&engine, "swell_scale_loop_latency_seconds_count"), total(&engine, "swell_actuation_errors_total"), total(&engine, "swell_cluster_write_errors_total"));
    let t0 = Instant::now();
    api.delete_collection(&DeleteParams::default(), &ListParams::default()).await.unwrap();
    let acked = t0.elapsed().as_secs_f64();
    let (mut last_poll, mut forgotten, mut gone) = (0.0, None, None);
    let mut polls = polls0;
    while t0.elapsed() < Duration::from_secs(300) {
        let p = total(&engine, "swell_scale_loop_latency_seconds_count");
        if p > polls {
            polls = p;
            last_poll = t0.elapsed().as_secs_f64();
        }
        if forgotten.is_none() && engine.cluster_objects("bench").is_empty() {
            forgotten = Some(t0.elapsed().as_secs_f64());
        }
        if gone.is_none() && api.list(&ListParams::default().limit(1)).await.map(|l| l.items.is_empty()).unwrap_or(false) {
            gone = Some(t0.elapsed().as_secs_f64());
        }
        if let (Some(_), Some(g)) = (forgotten, gone) {
            if t0.elapsed().as_secs_f64() > g + 5.0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let show = |t: Option<f64>| t.map_or("not within 300 s".to_string(), |t| format!("{t:.2} s"));
    println!(
        "deleting {objects} at once (DELETE acknowledged in {acked:.2} s): last poll {last_poll:.2} s after, the engine forgot the last {}, the API server lists none {}",
        show(forgotten),
        show(gone)
    );
    println!(
        "from the delete on: {:.0} polls, {:.0} actuation errors, {:.0} failed cluster writes",
        polls - polls0,
        total(&engine, "swell_actuation_errors_total") - errors0,
        total(&engine, "swell_cluster_write_errors_total") - writes0
    );
    for line in engine.metrics().encode().lines().filter(|l| l.starts_with("swell_cluster_write_errors_total{")) {
        println!("  {line}");
    }
    let _ = stop.send(true);
    let _ = handle.await;
}
