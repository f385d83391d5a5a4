//! `hpa` mode with a forecast, on a real control plane: the object's history comes from SQL,
//! and the metric served to the HPA (cached and read live, as the external metrics API does)
//! is max(reading, forecast) when the forecast is higher; the replicas stay the HPA's. The
//! engine's model API: a retraining recorded, a rollback to v1 used by the next polls.

mod common;

use std::time::Duration;

use common::cluster::{MetricEndpoint, Running, deployment, eventually, install_swell_crds, namespace};
use engine::actuate::Fence;
use engine::spec::ScaledObject;
use engine::store;
use kube::api::{Api, Patch, PatchParams, PostParams};
use testenv::ControlPlane;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hpa_is_served_the_forecast_when_it_is_above_the_reading() {
    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    install_swell_crds(&client).await;
    namespace(&client, "shop").await;
    deployment(&client, "shop", "web", 1).await;
    let metric = MetricEndpoint::start(100).await;
    let running = Running::start(vec![("east", client.clone(), Fence::always())]).await;
    let spec = |min_history: u32| {
        serde_json::json!({
            "scaleTargetRef": {"name": "web"}, "pollingInterval": 1, "minReplicaCount": 1, "maxReplicaCount": 50,
            "predictive": {"mode": "on", "model": "linear", "history": 86_400, "minHistory": min_history, "podStartup": 60, "quantile": 0.5},
            "triggers": [{"type": "metrics-api", "metadata": {"url": metric.url, "valueLocation": "value", "targetValue": "10"}}]
        })
    };
    let so: ScaledObject = serde_json::from_value(serde_json::json!({"apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "web"}, "spec": spec(3_600)})).unwrap();
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    api.create(&PostParams::default(), &so).await.unwrap();
    let view = eventually("the object polled", WAIT, || async { running.engine.find("east", "shop", "web").filter(|v| !v.external.is_empty()) }).await;
    let name = view.external.keys().next().cloned().unwrap();

    // Two hours of a steady (noisy) climb to 200, as the loop would have sampled it; the
    // reading now (100) is a dip the forecast does not believe.
    let db = running.engine.db();
    let metric_name = view.metrics[0].0.clone();
    let now = chrono::Utc::now();
    let samples: Vec<store::NewSample> = (1..=240)
        .map(|k| store::NewSample { scaled_object_id: view.id, metric: metric_name.clone(), at: now - chrono::Duration::seconds(30 * k), value: 200.0 - 0.5 * k as f64 + ((k * 7919) % 7) as f64 - 3.0 })
        .collect();
    store::write_batch(db, &[], &samples, &[]).await.unwrap();
    // A changed predictive spec starts the predictor again: from SQL, with that history.
    api.patch("web", &PatchParams::apply("test").force(), &Patch::Apply(serde_json::json!({"apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "spec": spec(3_000)}))).await.unwrap();

    let started = std::time::Instant::now();
    let view = loop {
        let v = running.engine.find("east", "shop", "web").unwrap();
        if v.forecast.as_ref().is_some_and(|f| f.hpa_floor.is_some()) {
            break v;
        }
        assert!(started.elapsed() < WAIT, "no forecast served to the HPA: forecast {:?}, decision {:?}, predictor: {:?}", v.forecast, v.last_decision, v.model_status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let note = view.forecast.clone().unwrap();
    let floor = note.hpa_floor.unwrap();
    assert!(floor > 100.0 && note.acted && note.version >= 1, "{note:?}");
    assert!(view.external[&name] >= floor, "cached: {:?}", view.external);
    let live = running.engine.external_metric_now(Some("east"), "shop", "web", &name).await.unwrap();
    assert!(live >= floor.min(view.external[&name]) && live > 100.0, "live read {live}, floor {floor}");
    assert!(view.last_decision.as_deref().is_some_and(|d| d.contains("the HPA is served")), "{:?}", view.last_decision);
    // The model is stored and is the champion.
    let versions = store::models::list(db, view.id).await.unwrap();
    assert!(versions.iter().any(|v| v.is_champion && v.kind == "linear"), "{versions:?}");
    // Through the engine's API: a retraining records v2 (promoted only if better); a rollback
    // to v1 makes it the champion again and the next polls forecast with it.
    running.engine.retrain_model("team", view.id).await.unwrap();
    eventually("v2 recorded", WAIT, || async { store::models::list(db, view.id).await.ok().filter(|v| v.len() == 2) }).await;
    running.engine.rollback_model("team", view.id, 1, "alice").await.unwrap();
    let versions = store::models::list(db, view.id).await.unwrap();
    assert_eq!(versions.iter().filter(|v| v.is_champion).map(|v| v.version).collect::<Vec<_>>(), vec![1], "{versions:?}");
    eventually("forecasts from v1 again", WAIT, || async { running.engine.find("east", "shop", "web")?.forecast.filter(|f| f.version == 1).map(|_| ()) }).await;
    assert!(running.engine.rollback_model("team", view.id, 9, "alice").await.unwrap_err().to_string().contains("model version 9"));
    // A reading above the forecast is served (never less than it).
    metric.set(10_000);
    eventually("the reading served when it is higher", WAIT, || async {
        let v = running.engine.find("east", "shop", "web")?;
        (v.metrics[0].1 == 10_000.0 && v.external.get(&name).is_some_and(|x| *x >= 10_000.0)).then_some(())
    })
    .await;
}
