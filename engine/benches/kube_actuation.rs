//! Direct-mode actuation on a real control plane (etcd, kube-apiserver,
//! kube-controller-manager built from source). Not a test: run on purpose.
//!
//!   cargo bench -p engine --bench kube_actuation
//!   BENCH_CHANGES=1000 BENCH_DEPLOYMENTS=500 BENCH_SECS=30 cargo bench -p engine --bench kube_actuation
//!
//! Prints:
//! 1. latency from "desired replicas changed" to the scale PATCH acknowledged (the
//!    actuator's `scale`, which is what the engine awaits after `decide`), p50/p99 over
//!    BENCH_CHANGES changes of one Deployment;
//! 2. scale PATCHes per second sustained across BENCH_DEPLOYMENTS Deployments driven by the
//!    engine itself (one direct-mode ScaledObject each, 1 s polling, a metric that flips
//!    every second), and the engine's own CPU while doing it;
//! 3. the raw ceiling: PATCHes per second with 32 in flight, no engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use engine::actuate::{Fence, KubeCluster};
use engine::spec::{ScaleTargetRef, ScaledObjectSpec};
use engine::{Engine, EngineOptions, store};
use testenv::ControlPlane;
use testenv::k8s::namespace;

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn create_deployments(client: &kube::Client, n: usize) {
    for i in 0..n {
        testenv::k8s::deployment(client, "bench", &format!("d{i}"), 0).await;
    }
}

#[tokio::main]
async fn main() {
    let changes: usize = env("BENCH_CHANGES", 1000);
    let deployments: usize = env("BENCH_DEPLOYMENTS", 500);
    let secs: u64 = env("BENCH_SECS", 30);
    let started = Instant::now();
    let cp = ControlPlane::start().expect("control plane starts");
    println!("control plane ready in {:.1} s (binaries already built)", started.elapsed().as_secs_f64());
    let client = cp.client().await;
    namespace(&client, "bench").await;
    create_deployments(&client, deployments.max(1)).await;
    let cluster = Arc::new(KubeCluster::new("bench", client.clone(), Fence::always()));

    // 1. Latency of one change → PATCH acknowledged.
    let target = |i: usize| ScaleTargetRef { name: format!("d{i}"), kind: "Deployment".into(), api_version: "apps/v1".into(), env_source_container_name: None };
    cluster.scale("bench", &target(0), 1).await.unwrap(); // discovery, connection warm-up
    let mut lat = Vec::with_capacity(changes);
    for i in 0..changes {
        let t = Instant::now();
        cluster.scale("bench", &target(0), 1 + (i % 5) as i32).await.unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "change → scale PATCH acknowledged, {changes} changes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().unwrap()
    );

    // 3. Raw ceiling: 32 PATCHes in flight over all Deployments.
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(10);
    let mut tasks = Vec::new();
    for w in 0..32 {
        let (cluster, done) = (cluster.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < until {
                let t = ScaleTargetRef { name: format!("d{}", i % deployments), kind: "Deployment".into(), api_version: "apps/v1".into(), env_source_container_name: None };
                cluster.scale("bench", &t, 1 + (i / deployments % 2) as i32).await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
                i += 32;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("raw ceiling, 32 in flight, no engine: {:.0} scale PATCHes/s", done.load(Ordering::Relaxed) as f64 / 10.0);

    // 2. The engine driving every Deployment, 1 s polling, a metric that flips each second.
    let value = Arc::new(AtomicI64::new(10));
    let v = value.clone();
    let app = axum::Router::new().route("/m", axum::routing::get(move || {
        let v = v.clone();
        async move { axum::Json(serde_json::json!({"value": v.load(Ordering::Relaxed)})) }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/m", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let db = store::connect("sqlite::memory:").await.unwrap();
    store::migrate(&db).await.unwrap();
    store::ensure_tenant(&db, "bench", "bench").await.unwrap();
    store::ensure_cluster(&db, "bench", "kubeconfig").await.unwrap();
    let engine = Engine::new(db, EngineOptions { tick: Duration::from_millis(100), ..Default::default() }).await.unwrap();
    engine.add_cluster(cluster.clone());
    for i in 0..deployments {
        let spec: ScaledObjectSpec = serde_json::from_value(serde_json::json!({
            "scaleTargetRef": {"name": format!("d{i}")}, "actuation": "direct", "pollingInterval": 1, "minReplicaCount": 1, "maxReplicaCount": 10,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 100, "periodSeconds": 1}]},
                "scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 100, "periodSeconds": 1}]}}}},
            "triggers": [{"type": "metrics-api", "metadata": {"url": url, "valueLocation": "value", "targetValue": "10"}}]
        }))
        .unwrap();
        engine.apply("bench", "bench", "bench", &format!("so{i}"), "swell", spec, "bench").await.unwrap();
    }
    let (stop, rx) = tokio::sync::watch::channel(false);
    let handle = engine.spawn(rx);
    tokio::time::sleep(Duration::from_secs(3)).await; // every object polled once
    let writes = |e: &Engine| e.metrics().encode().lines().find(|l| l.starts_with("swell_scale_writes_total ")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()).unwrap_or(0.0);
    let (w0, c0, t0) = (writes(&engine), cpu_secs(), Instant::now());
    for s in 0..secs {
        value.store(if s % 2 == 0 { 30 } else { 10 }, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (w1, c1, elapsed) = (writes(&engine), cpu_secs(), t0.elapsed().as_secs_f64());
    let _ = stop.send(true);
    let _ = handle.await;
    println!(
        "engine, {deployments} Deployments at 1 s polling, {secs} s: {:.0} scale PATCHes/s sustained ({:.0} % of one per object per second); bench process CPU {:.2} cores",
        (w1 - w0) / elapsed,
        (w1 - w0) / elapsed / deployments as f64 * 100.0,
        (c1 - c0) / elapsed
    );
}
