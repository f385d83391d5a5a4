//! Steady state on a real control plane: what 1,000 ScaledObjects (or 10,000 for ten
//! minutes) cost the API server when nothing changes. Not a test: run on purpose.
//!
//!   cargo bench -p engine --bench steady_state
//!   BENCH_OBJECTS=1000 BENCH_SECS=60 cargo bench -p engine --bench steady_state
//!   BENCH_OBJECTS=10000 BENCH_SECS=600 cargo bench -p engine --bench steady_state
//!   BENCH_DATABASE_URL=postgres://… (SQLite in a temporary folder otherwise)
//!   BENCH_TRIGGER=cron (no I/O per poll; metrics-api by default)
//!
//! BENCH_OBJECTS Deployments at 1 replica, one direct-mode ScaledObject each (1 s polling, a
//! metric that keeps them at 1). The API server's `apiserver_request_total` is read over a
//! quiet window without Swell (the control plane's own traffic) and then over BENCH_SECS with
//! Swell polling; the difference per poll is Swell's cost. Prints requests per poll, Swell's
//! cores and RSS (this process, also every BENCH_RSS_EVERY seconds, 60, so a leak shows),
//! the API server's cores, and the scheduler's lateness, skipped polls and dropped records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::actuate::{Fence, KubeCluster};
use engine::spec::ScaledObjectSpec;
use engine::{Engine, EngineOptions, store};
use testenv::ControlPlane;
use openmetrics::{quantile, sample, sum};
use testenv::k8s::{MetricEndpoint, deployment, namespace};

#[path = "common/openmetrics.rs"]
mod openmetrics;

/// As `swell` itself runs (server/src/main.rs): the RSS printed is the production one.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// User + system CPU seconds of a process.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|r| r.1.split_whitespace().collect()).unwrap_or_default();
    fields.get(11).zip(fields.get(12)).map(|(u, s)| (u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0)) / 100.0).unwrap_or(0.0)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

/// The sum of `apiserver_request_total` over every label set.
async fn apiserver_requests(cp: &ControlPlane) -> f64 {
    let http = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let text = http
        .get(format!("{}/metrics", cp.api_url))
        .bearer_auth(&cp.token)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("the API server's /metrics")
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Polls run so far, from the engine's loop latency histogram.
fn polls(engine: &Engine) -> f64 {
    sample(&engine.metrics().encode(), "swell_scale_loop_latency_seconds_count")
}

#[tokio::main]
async fn main() {
    let objects: usize = env("BENCH_OBJECTS", 1000);
    let secs: u64 = env("BENCH_SECS", 60);
    let quiet: u64 = env("BENCH_QUIET_SECS", 20);
    let cp = ControlPlane::start().expect("control plane starts");
    let apiserver_pid = cp.pid("apiserver").expect("kube-apiserver runs").to_string();
    let client = cp.client().await;
    namespace(&client, "bench").await;
    for i in 0..objects {
        deployment(&client, "bench", &format!("d{i}"), 1).await;
    }
    let metric = MetricEndpoint::start(5).await;
    // `metrics-api`: one HTTP GET per poll to an endpoint in this process (10,000 objects make
    // 10,000 requests a second, client and server on the same cores); `cron`: no I/O, so what
    // is left is Swell's own cost.
    let trigger = match std::env::var("BENCH_TRIGGER").as_deref() {
        Ok("cron") => serde_json::json!({"type": "cron", "metadata": {"timezone": "UTC", "start": "0 0 * * *", "end": "59 23 * * *", "desiredReplicas": "1"}}),
        _ => serde_json::json!({"type": "metrics-api", "metadata": {"url": metric.url, "valueLocation": "value", "targetValue": "10"}}),
    };
    // A file, not `sqlite::memory:`, whose rows would count in this process's RSS.
    let dir = std::env::temp_dir().join(format!("swell-steady-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.display()));
    let db = store::connect(&url).await.unwrap();
    store::migrate(&db).await.unwrap();
    store::ensure_tenant(&db, "bench", "bench").await.unwrap();
    store::ensure_cluster(&db, "bench", "kubeconfig").await.unwrap();
    let engine = Engine::new(db, EngineOptions { tick: Duration::from_millis(100), ..Default::default() }).await.unwrap();
    engine.add_cluster(Arc::new(KubeCluster::new("bench", client.clone(), Fence::always())));
    for i in 0..objects {
        let spec: ScaledObjectSpec = serde_json::from_value(serde_json::json!({
            "scaleTargetRef": {"name": format!("d{i}")}, "actuation": "direct", "pollingInterval": 1, "minReplicaCount": 1, "maxReplicaCount": 10,
            "triggers": [trigger.clone()]
        }))
        .unwrap();
        engine.apply("bench", "bench", "bench", &format!("so{i}"), "swell", spec, "bench").await.unwrap();
    }
    // The control plane's own traffic (controllers, leases), without Swell.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let q0 = apiserver_requests(&cp).await;
    tokio::time::sleep(Duration::from_secs(quiet)).await;
    let background_per_sec = (apiserver_requests(&cp).await - q0 - 1.0) / quiet as f64;

    let (stop, rx) = tokio::sync::watch::channel(false);
    let handle = engine.spawn(rx);
    tokio::time::sleep(Duration::from_secs(5)).await; // every object polled, caches listed
    let me = std::process::id().to_string();
    let (r0, p0, c0, a0, t0) = (apiserver_requests(&cp).await, polls(&engine), cpu_secs(&me), cpu_secs(&apiserver_pid), Instant::now());
    let rss_every: u64 = env("BENCH_RSS_EVERY", 60);
    while t0.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(rss_every).min(Duration::from_secs(secs).saturating_sub(t0.elapsed()))).await;
        let text = engine.metrics().encode();
        println!(
            "  after {:>4} s: RSS {:.0} MiB, {:.0} polls, {:.0} skipped; SQL rows queued − written {:.0}, kept pending {:.0}",
            t0.elapsed().as_secs(),
            rss_mib(),
            polls(&engine) - p0,
            sample(&text, "swell_scheduler_skipped_polls_total"),
            sample(&text, "swell_store_rows_queued_total") - sample(&text, "swell_store_rows_written_total"),
            sample(&text, "swell_store_rows_pending"),
        );
    }
    let (r1, p1, c1, a1) = (apiserver_requests(&cp).await, polls(&engine), cpu_secs(&me), cpu_secs(&apiserver_pid));
    let elapsed = t0.elapsed().as_secs_f64();
    let text = engine.metrics().encode();
    let _ = stop.send(true);
    let _ = handle.await;
    // One request of each window is this benchmark's own /metrics read.
    let swell_requests = ((r1 - r0 - 1.0) - background_per_sec * elapsed).max(0.0);
    let polls = p1 - p0;
    println!(
        "{objects} ScaledObjects, 1 s polling, {secs} s steady state: {polls:.0} polls ({:.0}/s), API server requests {:.0} in the window \
         ({:.1}/s of which {background_per_sec:.1}/s the control plane's own) → {:.4} requests per poll from Swell",
        polls / elapsed,
        r1 - r0,
        (r1 - r0) / elapsed,
        swell_requests / polls.max(1.0)
    );
    println!("Swell (this process): {:.2} cores, RSS {:.0} MiB; kube-apiserver: {:.2} cores", (c1 - c0) / elapsed, rss_mib(), (a1 - a0) / elapsed);
    println!(
        "scheduler: lateness p50 ≤ {:.1} ms, p99 ≤ {:.1} ms; poll p99 ≤ {:.1} ms; skipped polls {:.0}; dropped records {:.0}; scale writes {:.0}; actuation errors {:.0}",
        quantile(&text, "swell_scheduler_lateness_seconds", 0.50) * 1000.0,
        quantile(&text, "swell_scheduler_lateness_seconds", 0.99) * 1000.0,
        quantile(&text, "swell_scale_loop_latency_seconds", 0.99) * 1000.0,
        sample(&text, "swell_scheduler_skipped_polls_total"),
        sample(&text, "swell_store_records_dropped_total"),
        sample(&text, "swell_scale_writes_total"),
        sum(&text, "swell_actuation_errors_total"),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
