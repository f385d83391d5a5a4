//! The live predictor: learning from what it sees, and its models in SQL across restarts.

use super::*;
use crate::decide::{Rule, State};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learns_from_what_it_sees_then_raises_the_reactive_answer_and_says_so() {
    let spec: PredictiveSpec = serde_json::from_value(serde_json::json!({"mode": "on", "minHistory": 10800, "history": 86400, "quantile": 0.5, "podStartup": 60})).unwrap();
    let mut p = Predictor::new(spec, 30, None);
    let t0 = 1_700_000_040;
    // A 20-minute cycle around 1,000, read every 30 s for 3 hours.
    let load = |t: i64| 1000.0 + 500.0 * ((t - t0) as f64 * std::f64::consts::TAU / 1200.0).sin();
    for k in 0..=360 {
        let t = t0 + k * 30;
        p.observe(t, load(t));
        p.poll_training(t, None);
    }
    let started = std::time::Instant::now();
    while p.version == 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "no model: {:?}", p.last_error);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        p.poll_training(t0 + 360 * 30, None);
    }
    // From the last complete minute, 3 minutes on (horizon 90 s + the minute in progress).
    let f = p.forecast().expect("a forecast");
    let truth = (0..2).map(|h| load(t0 + 182 * 60 + h * 30)).sum::<f64>() / 2.0;
    assert!((f.mean - truth).abs() < 150.0, "forecast {f:?}, truth {truth}");
    let mut state = State::new(chrono::Utc::now());
    state.phase = Phase::Active;
    let mut d = Decision { state, replicas: 1, rule: Rule::ScaleToMetric, explanation: "metric / 100 per replica".into() };
    let note = p.adjust(&mut d, chrono::Utc::now(), 1, 100.0, 1, 50, Route::Direct).unwrap();
    assert!(note.acted && note.changed && note.version == 1 && note.hpa_floor.is_none(), "{note:?}");
    let want = (f.mean / 100.0).ceil() as i32;
    assert_eq!(d.replicas, want, "{}", d.explanation);
    assert!(d.explanation.contains(&format!("raised from 1 to {want}")) && d.explanation.contains("model random-forest v1"), "{}", d.explanation);
    // forecastOnly: the same words, nothing changed.
    p.spec.mode = PredictiveMode::ForecastOnly;
    let mut d2 = Decision { replicas: 1, explanation: String::new(), ..d };
    assert!(!p.adjust(&mut d2, chrono::Utc::now(), 1, 100.0, 1, 50, Route::Direct).unwrap().acted);
    assert_eq!(d2.replicas, 1);
    assert!(d2.explanation.contains(&format!("would raise to {want} (forecastOnly)")), "{}", d2.explanation);
    // hpa mode: the replicas are the HPA's to set; the metric served to it carries the forecast.
    p.spec.mode = PredictiveMode::On;
    let mut d3 = Decision { replicas: 1, explanation: String::new(), ..d2 };
    let note = p.adjust(&mut d3, chrono::Utc::now(), 1, 100.0, 1, 50, Route::Hpa { reading: 100.0 }).unwrap();
    assert_eq!((d3.replicas, note.hpa_floor), (1, Some(f.mean)), "{}", d3.explanation);
    assert!(d3.explanation.contains("the HPA is served"), "{}", d3.explanation);
    // A reading above the forecast is served as it is.
    let mut d5 = Decision { replicas: 1, explanation: String::new(), ..d3.clone() };
    let note = p.adjust(&mut d5, chrono::Utc::now(), 1, 100.0, 1, 50, Route::Hpa { reading: f.mean + 1.0 }).unwrap();
    assert!(note.hpa_floor.is_none() && !note.acted && d5.explanation.contains("no change"), "{}", d5.explanation);
    // Capped by maxScaleUpStep as the replicas are: at most 2 above the reactive 1.
    p.spec.max_scale_up_step = Some(2);
    let mut d4 = Decision { replicas: 1, explanation: String::new(), ..d3 };
    assert_eq!(p.adjust(&mut d4, chrono::Utc::now(), 1, 100.0, 1, 50, Route::Hpa { reading: 100.0 }).unwrap().hpa_floor, Some(f.mean.min(300.0)));
}

#[test]
fn history_is_a_minute_grid_trimmed_to_its_length() {
    let spec: PredictiveSpec = serde_json::from_value(serde_json::json!({"history": 600, "minHistory": 60})).unwrap();
    let mut p = Predictor::new(spec, 15, None);
    for k in 0..80 {
        p.observe(1_700_000_040 + k * 15, k as f64);
    }
    assert_eq!(p.history.values.len(), 11, "600 s of minutes and the one in progress");
    assert_eq!(p.history.values[10], Some(77.5), "the mean of the readings in the newest minute");
}

const METRIC: &str = "s0-simulated";

/// An in-memory SQLite with the migrations and one ScaledObject to hang models on.
async fn sqlite_object() -> ModelSink {
    let db = store::connect("sqlite::memory:").await.unwrap();
    store::migrate(&db).await.unwrap();
    let tenant = store::ensure_tenant(&db, "acme", "Acme").await.unwrap();
    let cluster = store::ensure_cluster(&db, "sim", "simulated").await.unwrap();
    let spec: crate::spec::ScaledObjectSpec = serde_json::from_value(serde_json::json!({
        "scaleTargetRef": {"name": "web"},
        "triggers": [{"type": "simulated", "metadata": {"workload": "w", "target": "100"}}]
    }))
    .unwrap();
    let object_id = store::upsert_scaled_object(&db, tenant.id, cluster.id, "shop", "web", "swell", &spec).await.unwrap();
    ModelSink { db, object_id }
}

/// Polls `p` (as the loop does at `now`) until `done` holds.
async fn poll_until(p: &mut Predictor, now: i64, done: impl Fn(&Predictor) -> bool) {
    let started = std::time::Instant::now();
    while !done(p) {
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "waited 120 s: error {:?}, verdict {:?}", p.last_error, p.last_verdict);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        p.poll_training(now, Some(METRIC));
    }
}

fn last_forecast(p: &Predictor, model: &dyn Forecaster) -> Option<Forecast> {
    model.predict(&p.history, p.history.values.len() - 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_live_in_sql_survive_a_restart_are_promoted_only_when_better_and_roll_back_exactly() {
    let sink = sqlite_object().await;
    let spec: PredictiveSpec = serde_json::from_value(serde_json::json!({"mode": "on", "minHistory": 7200, "history": 86400, "quantile": 0.5})).unwrap();
    let now = chrono::Utc::now().timestamp();
    let t0 = now - now.rem_euclid(60) - 3 * 3600;
    let load = |t: i64| 1000.0 + 400.0 * ((t - t0) as f64 * std::f64::consts::TAU / 1200.0).sin();
    // Three hours of samples in SQL, as the loop writes them: the predictor starts from them.
    let samples: Vec<store::NewSample> = (0..360)
        .map(|k| store::NewSample { scaled_object_id: sink.object_id, metric: METRIC.into(), at: from_unix(t0 + k * 30), value: load(t0 + k * 30) })
        .collect();
    store::write_batch(&sink.db, &[], &samples, &[]).await.unwrap();

    let mut p = Predictor::new(spec.clone(), 30, Some(sink.clone()));
    poll_until(&mut p, now, |p| p.version == 1).await;
    assert!(p.history.values.len() >= 180, "history from SQL: {} minutes", p.history.values.len());
    let f1 = p.forecast().expect("a forecast from v1");
    let versions = store::models::list(&sink.db, sink.object_id).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert!(versions[0].is_champion && versions[0].promoted && versions[0].reason == "first model" && versions[0].kind == "random-forest", "{versions:?}");
    assert!(versions[0].mae.is_some_and(|m| m < 100.0), "scored on the newest fifth: {versions:?}");

    // A restart: the champion comes back from SQL and predicts exactly as before; it is not
    // retrained before its six hours are up.
    drop(p);
    let mut p = Predictor::new(spec.clone(), 30, Some(sink.clone()));
    poll_until(&mut p, now, |p| p.version == 1).await;
    assert_eq!(p.forecast(), Some(f1));
    for _ in 0..20 {
        p.poll_training(now + 60, Some(METRIC));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(p.training.is_none() && p.trained == 1, "no training before RETRAIN");

    // The same data and seed give an equal challenger: not better, so not promoted.
    p.retrain_now();
    poll_until(&mut p, now, |p| p.trained == 2 && p.training.is_none()).await;
    assert_eq!((p.version, p.forecast()), (1, Some(f1)), "{:?}", p.last_verdict);
    let versions = store::models::list(&sink.db, sink.object_id).await.unwrap();
    assert_eq!(versions.iter().map(|v| (v.version, v.promoted, v.is_champion)).collect::<Vec<_>>(), vec![(2, false, false), (1, true, true)]);
    assert!(versions[0].reason.contains("does not beat"), "{}", versions[0].reason);

    // Two hours at a higher level: v1 never saw it, a challenger that did wins.
    let v1 = p.model.clone().expect("v1 in use");
    for k in 0..240 {
        let t = t0 + 3 * 3600 + k * 30;
        p.observe(t, load(t) + 600.0);
    }
    p.retrain_now();
    poll_until(&mut p, now, |p| p.trained == 3 && p.training.is_none()).await;
    assert_eq!(p.version, 3, "{:?}", p.last_verdict);
    let champion = store::models::champion(&sink.db, sink.object_id).await.unwrap().unwrap();
    assert!(champion.version == 3 && champion.mae < champion.champion_mae, "{:?} vs {:?}", champion.mae, champion.champion_mae);
    let f3 = p.forecast().unwrap();
    let v1_now = last_forecast(&p, v1.as_ref()).unwrap();
    assert_ne!(f3, v1_now);

    // Rollback to v1 (what Engine::rollback_model does): the bytes in SQL predict exactly
    // what v1 predicted, and a restart keeps v1.
    assert!(store::models::make_champion(&sink.db, sink.object_id, 1, 1, "alice", "shop/web").await.unwrap());
    let row = store::models::get(&sink.db, sink.object_id, 1).await.unwrap().unwrap();
    p.use_model(super::super::stored::decode(&row.model).unwrap(), 1);
    assert_eq!(p.forecast(), Some(v1_now));
    let mut p = Predictor::new(spec, 30, Some(sink.clone()));
    poll_until(&mut p, now, |p| p.version == 1).await;
    assert_eq!(p.forecast(), last_forecast(&p, v1.as_ref()));
    assert!(!store::models::make_champion(&sink.db, sink.object_id, 1, 9, "alice", "shop/web").await.unwrap(), "no version 9");
}
