//! The scheduler at scale: N ScaledObjects (default 10,000) on simulated sources and the
//! simulated cluster, 1 s polling, for a while (default 60 s; the figure is 600 s).
//! Prints CPU (cores), RSS, p99 dispatch lateness, decisions per second and SQL rows per
//! second. Not a test: run on purpose.
//!
//!   cargo bench -p engine --bench scheduler                       # 10,000 objects, SQLite, 60 s
//!   BENCH_OBJECTS=1000 BENCH_SECS=120 cargo bench -p engine --bench scheduler
//!   BENCH_DATABASE_URL=postgres://… cargo bench -p engine --bench scheduler
//!   BENCH_PREDICTIVE=1 BENCH_OBJECTS=1000 BENCH_SECS=120 cargo bench -p engine --bench scheduler
//!
//! BENCH_PREDICTIVE=1 makes every object predictive with a day of 1-minute history in SQL,
//! so all of them train their first model in the first seconds (one training at a time, off
//! the async threads): compare its lateness with a run without it, and its RSS per object.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::sim::{SimCluster, WorkloadKind, WorkloadSpec, builtin_trace};
use engine::spec::ScaledObjectSpec;
use engine::{Engine, EngineOptions, store};
use openmetrics::{quantile, sample};

#[path = "common/openmetrics.rs"]
#[allow(dead_code)]
mod openmetrics;

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// (user + system CPU seconds, RSS bytes) of this process, from /proc.
fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss_kb: u64 = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    (ticks / 100.0, rss_kb * 1024)
}

#[tokio::main]
async fn main() {
    let objects: usize = env("BENCH_OBJECTS", 10_000);
    let secs: u64 = env("BENCH_SECS", 60);
    let predictive = env("BENCH_PREDICTIVE", 0u8) == 1;
    let dir = tempfile_dir();
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{dir}/bench.db"));
    let backend = url.split(':').next().unwrap_or("?").to_string();
    let db = store::connect(&url).await.expect("database");
    store::migrate(&db).await.expect("migrations");

    let nasa = builtin_trace("nasa-http-1995").unwrap();
    let mut sim = SimCluster::new(60.0);
    let tenant = store::ensure_tenant(&db, "bench", "Bench").await.unwrap();
    let cluster = store::ensure_cluster(&db, "bench-sim", "simulated").await.unwrap();
    let seeding = Instant::now();
    for i in 0..objects {
        let name = format!("w{i}");
        sim.add_deployment(&name, 1, 5.0, 25.0);
        sim.add_workload(WorkloadSpec {
            name: name.clone(),
            kind: if i % 3 == 0 { WorkloadKind::Queue } else { WorkloadKind::Rate },
            trace: nasa.clone(),
            scale: 1.0,
            offset_secs: (i as f64 * 137.0) % nasa.duration_secs(),
            deployment: name.clone(),
        });
        let mut spec = serde_json::json!({
            "scaleTargetRef": {"name": name},
            "pollingInterval": 1,
            "cooldownPeriod": 30,
            "maxReplicaCount": 20,
            "triggers": [{"type": "simulated", "name": "load", "metadata": {"workload": name, "target": "20", "activationTarget": "2"}}]
        });
        if predictive {
            spec["predictive"] = serde_json::json!({"mode": "on", "history": 86_400, "minHistory": 3_600});
        }
        let spec: ScaledObjectSpec = serde_json::from_value(spec).unwrap();
        let id = store::upsert_scaled_object(&db, tenant.id, cluster.id, "bench", &name, "swell", &spec).await.unwrap();
        if predictive {
            // A day of the workload's trace at one sample a minute, ending now.
            let now = chrono::Utc::now();
            let metric = spec.triggers[0].metric_name(0);
            let offset = (i as f64 * 137.0) % nasa.duration_secs();
            let samples: Vec<store::NewSample> = (1..=1440)
                .map(|k| store::NewSample { scaled_object_id: id, metric: metric.clone(), at: now - chrono::Duration::minutes(k), value: nasa.value_at(offset - k as f64 * 60.0) })
                .collect();
            for chunk in samples.chunks(500) {
                store::write_batch(&db, &[], chunk, &[]).await.unwrap();
            }
        }
    }
    println!("seeded {objects} objects on {backend} in {:.1} s", seeding.elapsed().as_secs_f64());

    let engine = Engine::new(db.clone(), EngineOptions { sim: Some(Arc::new(Mutex::new(sim))), retention: chrono::Duration::days(1), ..Default::default() })
        .await
        .unwrap();
    let (cpu0, _) = usage();
    let wall0 = Instant::now();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = engine.spawn(stopped);
    let mut peak_rss = 0;
    let mut last_report = Instant::now();
    while wall0.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak_rss = peak_rss.max(usage().1);
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            println!("  … {:.0} s", wall0.elapsed().as_secs_f64());
        }
    }
    let (cpu1, _) = usage();
    let elapsed = wall0.elapsed().as_secs_f64();
    let text = engine.metrics().encode();
    stop.send(true).unwrap();
    running.await.unwrap();

    let polls = sample(&text, "swell_scale_loop_latency_seconds_count");
    let rows = sample(&text, "swell_store_rows_written_total");
    let skipped = sample(&text, "swell_scheduler_skipped_polls_total");
    let dropped = sample(&text, "swell_store_records_dropped_total");
    let mut by_rule = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("swell_decisions_total{")) {
        let rule = line.split("rule=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("?").to_string();
        by_rule.insert(rule, line.split_whitespace().nth(1).unwrap_or("0").to_string());
    }
    println!("objects {objects}{}, backend {backend}, {elapsed:.0} s at 1 s polling", if predictive { " (predictive)" } else { "" });
    println!("  CPU            {:.2} cores", (cpu1 - cpu0) / elapsed);
    println!("  RSS (peak)     {:.0} MiB", peak_rss as f64 / 1048576.0);
    println!("  lateness p50   ≤ {:.1} ms", quantile(&text, "swell_scheduler_lateness_seconds", 0.50) * 1000.0);
    println!("  lateness p99   ≤ {:.1} ms", quantile(&text, "swell_scheduler_lateness_seconds", 0.99) * 1000.0);
    println!("  poll p99       ≤ {:.1} ms", quantile(&text, "swell_scale_loop_latency_seconds", 0.99) * 1000.0);
    println!("  decisions/s    {:.0}", polls / elapsed);
    println!("  SQL rows/s     {:.0} (logged decisions + samples; unchanged decisions are heartbeats)", rows / elapsed);
    println!("  dropped        {dropped:.0} records (writer could not keep up)");
    println!("  skipped polls  {skipped:.0}");
    println!("  rules          {by_rule:?}");
    if predictive {
        use sea_orm::{EntityTrait, PaginatorTrait};
        let models = store::entities::model_versions::Entity::find().count(&db).await.unwrap();
        println!("  models trained {models} of {objects} objects in {elapsed:.0} s (one at a time; RSS per object: compare with BENCH_PREDICTIVE=0)");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> String {
    let dir = std::env::temp_dir().join(format!("swell-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_string_lossy().into_owned()
}
