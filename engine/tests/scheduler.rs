//! The scheduler under the real loop: polls of one object never overlap, a slow scaler
//! neither stalls the others nor hangs (timeout), and a new pollingInterval applies live.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use engine::sim::{SimCluster, Trace, WorkloadKind, WorkloadSpec};
use engine::spec::ScaledObjectSpec;
use engine::{Engine, EngineOptions, store};

fn cluster() -> SimCluster {
    let mut c = SimCluster::new(1.0);
    let flat = Arc::new(Trace { name: "flat".into(), step_secs: 60.0, values: vec![30.0, 30.0] });
    for name in ["fast", "slow"] {
        c.add_deployment(name, 1, 0.0, 10.0);
        c.add_workload(WorkloadSpec { name: name.into(), kind: WorkloadKind::Rate, trace: flat.clone(), scale: 1.0, offset_secs: 0.0, deployment: name.into() });
    }
    c
}

fn spec(workload: &str, polling: u32, latency_ms: u64) -> ScaledObjectSpec {
    serde_json::from_value(serde_json::json!({
        "scaleTargetRef": {"name": workload},
        "pollingInterval": polling,
        "minReplicaCount": 1,
        "triggers": [{"type": "simulated", "name": workload, "metadata": {
            "workload": workload, "target": "10", "latencyMs": latency_ms.to_string()
        }}]
    }))
    .unwrap()
}

/// These tests count polls by their decisions, so every decision is logged.
async fn setup(db: &engine::DatabaseConnection, opts: EngineOptions, slow_ms: u64) -> (Engine, i32, i32) {
    let opts = EngineOptions { decision_heartbeat: chrono::Duration::zero(), ..opts };
    store::ensure_tenant(db, "t", "T").await.unwrap();
    store::ensure_cluster(db, "sim", "simulated").await.unwrap();
    let engine = Engine::new(db.clone(), opts).await.unwrap();
    let fast = engine.apply("t", "sim", "ns", "fast", "swell", spec("fast", 1, 0), "test").await.unwrap();
    let slow = engine.apply("t", "sim", "ns", "slow", "swell", spec("slow", 1, slow_ms), "test").await.unwrap();
    (engine, fast, slow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_scaler_neither_stalls_others_nor_overlaps_itself() {
    for t in common::databases().await {
        let opts = EngineOptions { sim: Some(Arc::new(Mutex::new(cluster()))), scaler_timeout: Duration::from_secs(10), ..Default::default() };
        let (engine, fast, slow) = setup(&t.db, opts, 2_500).await;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let running = engine.spawn(stopped);
        tokio::time::sleep(Duration::from_millis(4_300)).await;
        stop.send(true).unwrap();
        running.await.unwrap();

        let fast_n = store::recent_decisions(&t.db, fast, 100).await.unwrap().len();
        let slow_n = store::recent_decisions(&t.db, slow, 100).await.unwrap().len();
        // fast: due at 0,1,2,3,4 s; slow: 2.5 s per poll, so polls at 0 and ~3 s, the ones
        // due meanwhile skipped rather than stacked.
        assert!((4..=5).contains(&fast_n), "{}: fast polled {fast_n} times", t.kind);
        assert!((1..=2).contains(&slow_n), "{}: slow polled {slow_n} times", t.kind);
        let metrics = engine.metrics().encode();
        let skipped: f64 = metrics
            .lines()
            .find(|l| l.starts_with("swell_scheduler_skipped_polls_total "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(skipped >= 1.0, "{}: overlapping polls were skipped: {metrics}", t.kind);
    }
}

#[tokio::test]
async fn a_scaler_past_its_timeout_fails_the_poll_and_others_go_on() {
    for t in common::databases().await {
        let opts = EngineOptions { sim: Some(Arc::new(Mutex::new(cluster()))), scaler_timeout: Duration::from_millis(300), ..Default::default() };
        let (engine, fast, slow) = setup(&t.db, opts, 2_500).await;
        engine.tick_at(std::time::Instant::now(), Utc::now()).await.unwrap();
        let fast_d = &store::recent_decisions(&t.db, fast, 1).await.unwrap()[0];
        let slow_d = &store::recent_decisions(&t.db, slow, 1).await.unwrap()[0];
        assert_eq!(fast_d.rule, "scale_to_metric", "{}", t.kind);
        assert_eq!(slow_d.rule, "scaler_error_hold", "{}", t.kind);
        assert!(slow_d.explanation.contains("timed out after 300 ms"), "{}: {}", t.kind, slow_d.explanation);
    }
}

#[tokio::test]
async fn a_new_polling_interval_applies_without_restart() {
    for t in common::databases().await {
        let opts = EngineOptions { sim: Some(Arc::new(Mutex::new(cluster()))), ..Default::default() };
        let (engine, fast, _) = setup(&t.db, opts, 0).await;
        let start = engine.started() + Duration::from_secs(1);
        let wall0 = Utc::now();
        let tick = |s: u64| engine.tick_at(start + Duration::from_secs(s), wall0 + chrono::Duration::seconds(s as i64));
        for s in 0..10 {
            tick(s).await.unwrap();
        }
        assert_eq!(store::recent_decisions(&t.db, fast, 100).await.unwrap().len(), 10, "{}: every second", t.kind);
        engine.apply("t", "sim", "ns", "fast", "swell", spec("fast", 5, 0), "test").await.unwrap();
        for s in 10..30 {
            tick(s).await.unwrap();
        }
        // One more at the old cadence (already scheduled at 10 s), then every 5 s: 15, 20, 25.
        assert_eq!(store::recent_decisions(&t.db, fast, 100).await.unwrap().len(), 14, "{}: every 5 s after the change", t.kind);
        // Bad specs are refused whole and change nothing.
        let err = engine.apply("t", "sim", "ns", "fast", "swell", spec("fast", 0, 0), "test").await.unwrap_err();
        assert!(err.to_string().starts_with("spec.pollingInterval"), "{err}");
        let err = engine
            .apply("t", "sim", "ns", "other", "swell", serde_json::from_value(serde_json::json!({"scaleTargetRef": {"name": "x"}, "triggers": [{"type": "kafkaa"}]})).unwrap(), "test")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unknown trigger type \"kafkaa\""), "{err}");
        assert_eq!(engine.overview("t").len(), 2);
    }
}

#[tokio::test]
async fn failed_actuation_is_retried_with_backoff_and_shown_until_it_succeeds() {
    for t in common::databases().await {
        let sim = Arc::new(Mutex::new(cluster()));
        let opts = EngineOptions { sim: Some(sim.clone()), ..Default::default() };
        let (engine, fast, _) = setup(&t.db, opts, 0).await;
        let mut ghost_spec = spec("fast", 1, 0);
        ghost_spec.scale_target_ref.name = "ghost".into(); // no such deployment (yet)
        let ghost = engine.apply("t", "sim", "ns", "ghost", "swell", ghost_spec, "test").await.unwrap();

        let start = std::time::Instant::now();
        for step in 0..40u64 {
            engine.tick_at(start + Duration::from_millis(50 * step), Utc::now()).await.unwrap();
        }
        let errors = |text: &str, name: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with("swell_actuation_errors_total{") && l.contains(&format!("scaled_object=\"{name}\"")))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        let text = engine.metrics().encode();
        // Regular polling would try twice in these 2 s; the backoff (100 ms, 200 ms, 400 ms, …
        // with jitter, capped at the polling interval) tries sooner and more often.
        let attempts = errors(&text, "ghost");
        assert!(attempts >= 4.0, "{}: {attempts} attempts", t.kind);
        let view = engine.overview("t").into_iter().find(|v| v.id == ghost).unwrap();
        assert!(view.error.as_deref().unwrap_or("").contains("deployment ghost not found"), "{}: {:?}", t.kind, view.error);
        assert!(store::recent_decisions(&t.db, fast, 10).await.unwrap().len() >= 2, "{}: others unaffected", t.kind);

        // The workload appears: the next attempt succeeds and the error clears.
        sim.lock().unwrap().add_deployment("ghost", 1, 0.0, 10.0);
        for step in 40..70u64 {
            engine.tick_at(start + Duration::from_millis(50 * step), Utc::now()).await.unwrap();
        }
        let view = engine.overview("t").into_iter().find(|v| v.id == ghost).unwrap();
        assert_eq!(view.error, None, "{}", t.kind);
        assert!(!store::recent_decisions(&t.db, ghost, 10).await.unwrap().is_empty(), "{}", t.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_object_leaves_no_metric_series_behind() {
    let db = store::connect("sqlite::memory:").await.unwrap();
    store::migrate(&db).await.unwrap();
    let opts = EngineOptions { sim: Some(Arc::new(Mutex::new(cluster()))), ..Default::default() };
    let (engine, fast, _slow) = setup(&db, opts, 0).await;
    engine.tick_at(std::time::Instant::now(), chrono::Utc::now()).await.unwrap();
    let series = |name: &str| engine.metrics().encode().lines().filter(|l| l.contains(&format!("scaled_object=\"{name}\""))).count();
    assert!(series("fast") > 0 && series("slow") > 0, "{}", engine.metrics().encode());
    // Labels carry the cluster, the object type and the trigger index (KEDA's set plus cluster).
    let line = engine.metrics().encode().lines().find(|l| l.starts_with("swell_scaler_active{") && l.contains("\"fast\"")).unwrap().to_string();
    assert!(line.contains("cluster=\"sim\"") && line.contains("type=\"scaledobject\"") && line.contains("trigger_index=\"0\""), "{line}");
    assert!(engine.remove("t", fast, "test").await.unwrap());
    assert_eq!(series("fast"), 0, "series of a removed object are left: {}", engine.metrics().encode());
    assert!(series("slow") > 0, "the other object's series went too");
}

/// KEDA's metrics path: the HPA's request asks the scaler then and there, unless the trigger
/// says useCachedMetrics, when the last poll's value is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_api_reads_live_unless_use_cached_metrics() {
    let db = store::connect("sqlite::memory:").await.unwrap();
    store::migrate(&db).await.unwrap();
    store::ensure_tenant(&db, "t", "T").await.unwrap();
    store::ensure_cluster(&db, "sim", "simulated").await.unwrap();
    let engine = Engine::new(db, EngineOptions { sim: Some(Arc::new(Mutex::new(cluster()))), ..Default::default() }).await.unwrap();
    let metric = testenv::k8s::MetricEndpoint::start(10).await;
    for (name, cached) in [("fast", false), ("slow", true)] {
        let spec: ScaledObjectSpec = serde_json::from_value(serde_json::json!({
            "scaleTargetRef": {"name": name}, "pollingInterval": 300, "minReplicaCount": 1,
            "triggers": [{"type": "metrics-api", "useCachedMetrics": cached, "metadata": {"url": metric.url, "valueLocation": "value", "targetValue": "5"}}]
        }))
        .unwrap();
        engine.apply("t", "sim", "ns", name, "swell", spec, "test").await.unwrap();
    }
    engine.tick_at(std::time::Instant::now(), Utc::now()).await.unwrap();
    let name = engine.find("sim", "ns", "fast").unwrap().external.keys().next().cloned().expect("an external metric");
    assert_eq!(engine.external_metric_now(Some("sim"), "ns", "fast", &name).await, Some(10.0));
    metric.set(40);
    // No poll since (polling interval 300 s): live reads 40, the cached trigger still 10.
    assert_eq!(engine.external_metric_now(Some("sim"), "ns", "fast", &name).await, Some(40.0));
    assert_eq!(engine.external_metric_now(Some("sim"), "ns", "slow", &name).await, Some(10.0));
}
