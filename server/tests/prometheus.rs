//! The `prometheus` scaler against a real Prometheus (end2end/services.sh) that scrapes
//! Swell's own /metrics.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use engine::scalers::{self, ScalerContext};
use engine::spec::Trigger;

fn trigger(metadata: &[(&str, &str)]) -> Trigger {
    let metadata: BTreeMap<String, String> = metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    serde_json::from_value(serde_json::json!({"type": "prometheus", "name": "prom", "metadata": metadata})).unwrap()
}

async fn read(t: &Trigger) -> engine::Result<(f64, bool)> {
    let scaler = scalers::build(t, 0, &ScalerContext::new(None), "default")?;
    let (values, active) = scaler.metrics_and_activity().await?;
    Ok((values[0].value, active))
}

#[tokio::test]
async fn prometheus_scaler_reads_what_prometheus_scraped_from_swell() {
    let Some((url, targets)) = common::prometheus() else { return };
    let demo = common::Demo::start();
    let label = format!("t{}", demo.port);
    let target_file = std::path::Path::new(&targets).join(format!("{label}.json"));
    std::fs::write(&target_file, serde_json::json!([{"targets": [format!("127.0.0.1:{}", demo.port)], "labels": {"test": label}}]).to_string()).unwrap();

    // Swell's own /metrics lists its objects; wait until Prometheus has scraped them all.
    let count_query = format!("count(swell_scaled_object_desired_replicas{{test=\"{label}\"}})");
    let query = |q: &str, extra: &[(&str, &str)]| {
        let mut m = vec![("serverAddress", url.as_str()), ("query", q), ("threshold", "1")];
        m.extend_from_slice(extra);
        trigger(&m)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (objects, value) = loop {
        let (_, body) = common::get(demo.port, "/metrics").unwrap();
        let objects = body.lines().filter(|l| l.starts_with("swell_scaled_object_desired_replicas{")).count();
        let (value, _) = read(&query(&count_query, &[])).await.unwrap();
        if (objects >= 3 && value == objects as f64) || Instant::now() > deadline {
            break (objects, value);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(objects >= 3, "swell exposes its objects: {objects}");
    assert_eq!(value, objects as f64, "the scaler reads what Prometheus scraped from Swell");

    // Activation flips at activationThreshold (active when the value is above it).
    let (_, active) = read(&query(&count_query, &[("activationThreshold", &(objects - 1).to_string())])).await.unwrap();
    assert!(active);
    let (_, active) = read(&query(&count_query, &[("activationThreshold", &objects.to_string())])).await.unwrap();
    assert!(!active);

    // An empty result: 0 with ignoreNullValues (the default), an error without.
    let missing = format!("nothing_here{{test=\"{label}\"}}");
    assert_eq!(read(&query(&missing, &[])).await.unwrap(), (0.0, false));
    let err = read(&query(&missing, &[("ignoreNullValues", "false")])).await.unwrap_err().to_string();
    assert!(err.contains("ignoreNullValues"), "{err}");

    // Several series are an error that says how to fix the query.
    let err = read(&query(&format!("swell_scaled_object_desired_replicas{{test=\"{label}\"}}"), &[])).await.unwrap_err().to_string();
    assert!(err.contains(&format!("returned {objects} series")), "{err}");

    // A bad query is the server's error, not a panic.
    let err = read(&query("sum(", &[])).await.unwrap_err().to_string();
    assert!(err.contains("prometheus query failed"), "{err}");

    let _ = std::fs::remove_file(target_file);
}

#[tokio::test]
async fn unreachable_prometheus_is_an_error() {
    let port = common::free_port();
    let t = trigger(&[("serverAddress", &format!("http://127.0.0.1:{port}")), ("query", "up"), ("threshold", "1")]);
    let err = read(&t).await.unwrap_err().to_string();
    assert!(err.contains("prometheus unreachable"), "{err}");
}
