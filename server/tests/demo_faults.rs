//! A broken metric injected into a running `swell demo` (a ×100 spike, stuck at zero, not a
//! number) is caught by the anomaly guard and held by web-frontend's `hold` policy: the
//! replicas do not follow the broken value and do not thrash; the decision says why. The
//! predictive demo object forecasts from its first minute.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, get, swell};

fn send(port: u16, cookie: &str, method: &str, path: &str, body: &str) -> u16 {
    let origin = format!("http://127.0.0.1:{port}");
    common::request(port, method, path, &[("Cookie", cookie), ("Origin", &origin), ("Content-Type", "application/json")], body).unwrap().0
}

/// web-frontend's desired replicas, from /metrics.
fn desired(port: u16) -> i32 {
    let (_, body) = get(port, "/metrics").expect("/metrics answers");
    body.lines()
        .find(|l| l.starts_with("swell_scaled_object_desired_replicas{") && l.contains("scaled_object=\"web-frontend\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no desired replicas for web-frontend in /metrics"))
}

/// Watches the replicas for `secs` while a fault is in: returns every value seen.
fn watch(port: u16, secs: u64) -> Vec<i32> {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    while Instant::now() < end {
        seen.push(desired(port));
        std::thread::sleep(Duration::from_millis(250));
    }
    seen
}

fn changes(seen: &[i32]) -> usize {
    seen.windows(2).filter(|w| w[0] != w[1]).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_metric_in_a_running_demo_is_held_without_thrashing_and_the_forecast_is_there_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = swell(dir.path()).args(["demo", "--bind", &format!("127.0.0.1:{port}"), "--log", "warn"]).stdin(std::process::Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while get(port, "/healthz").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60) && child.try_wait().unwrap().is_none(), "swell demo did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let db = engine::store::connect(&format!("sqlite://{}/data/swell.db", dir.path().display())).await.unwrap();
    let cookie = common::demo_session(port);
    assert_eq!(send(port, "", "POST", "/demo/faults/web-requests", r#"{"fault": "notANumber"}"#), 403, "faults need a signed-in operator");
    let id = engine::store::load_objects(&db).await.unwrap().into_iter().find(|o| o.name == "web-frontend").unwrap().id;
    let explanations = |n: u64| {
        let db = db.clone();
        async move { engine::store::recent_decisions(&db, id, n).await.unwrap().into_iter().map(|d| d.explanation).collect::<Vec<_>>() }
    };

    // A forecast within the first minute: the history was seeded, the model trained at once.
    loop {
        let recent = explanations(5).await;
        if recent.iter().any(|e| e.contains("model random-forest v1")) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no forecast in the first minute: {recent:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The plain guards judge against 30 good polls (1 s each).
    tokio::time::sleep(Duration::from_secs(35).saturating_sub(started.elapsed())).await;

    for (fault, said) in [(r#"{"fault": "spike", "factor": 100}"#, "the typical"), (r#"{"fault": "stuckAtZero"}"#, "fell at once"), (r#"{"fault": "notANumber"}"#, "not a number")] {
        let before = desired(port);
        assert_eq!(send(port, &cookie, "POST", "/demo/faults/web-requests", fault), 200, "{fault}");
        let seen = watch(port, 6);
        assert_eq!(send(port, &cookie, "DELETE", "/demo/faults/web-requests", ""), 200);
        // Held: at most the one change already under way when the fault came; never to the
        // maximum (12) on a ×100 spike, never down on a blank metric.
        assert!(changes(&seen) <= 1 && seen.iter().all(|n| (n - before).abs() <= 1 && *n < 12), "{fault}: replicas {before} then {seen:?}");
        let recent = explanations(10).await;
        assert!(recent.iter().any(|e| e.contains(said) && e.contains("held at") && e.contains("anomaly policy hold")), "{fault}: {recent:?}");
        // Mended: decisions come from the metric again.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let last = explanations(1).await;
        assert!(!last[0].contains("held at"), "after {fault}: {last:?}");
    }
    // Decisions record the forecast (mean, quantile, model, version, whether it changed the
    // answer) and the anomaly (finding, policy) in their inputs.
    let rows = engine::store::recent_decisions(&db, id, 200).await.unwrap();
    assert!(rows.iter().any(|d| d.inputs["forecast"]["model"] == "random-forest" && d.inputs["forecast"]["version"].as_u64() >= Some(1) && d.inputs["forecast"]["quantile"] == 0.9), "no forecast recorded");
    assert!(rows.iter().any(|d| d.inputs["anomaly"]["policy"] == "hold" && d.inputs["anomaly"]["mitigated"] == true), "no anomaly recorded");
    let (_, metrics) = get(port, "/metrics").unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("swell_anomalies_total{policy=\"hold\"}") && !l.ends_with(" 0")), "anomalies are counted: {metrics}");
    // Bad input names the fix; an unknown workload is a 404.
    assert_eq!(send(port, &cookie, "POST", "/demo/faults/web-requests", "{\"fault\": \"melt\"}"), 400);
    assert_eq!(send(port, &cookie, "POST", "/demo/faults/nope", r#"{"fault": "notANumber"}"#), 404);
    let _ = child.kill();
    let _ = child.wait();
}
