//! The demo runs through the real engine loop: seeded objects, simulated cluster, decisions
//! written to SQL, replicas that follow the recorded traces.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use engine::{Engine, EngineOptions, demo, store};

#[tokio::test]
async fn demo_objects_scale_and_every_decision_is_recorded() {
    for t in common::databases().await {
        demo::seed(&t.db).await.unwrap();
        demo::seed(&t.db).await.unwrap(); // idempotent
        let sim = Arc::new(Mutex::new(demo::cluster()));
        // Every decision logged, to count them against polls.
        let opts = EngineOptions { sim: Some(sim.clone()), decision_heartbeat: chrono::Duration::zero(), ..Default::default() };
        let engine = Engine::new(t.db.clone(), opts).await.unwrap();
        assert_eq!(engine.tenants(), vec!["demo".to_string()]);

        let mut seen = std::collections::BTreeMap::<String, std::collections::BTreeSet<i32>>::new();
        let wall0 = Utc::now();
        for second in 0..90u64 {
            // Monotonic and wall time advance together, as in the real loop.
            let wall = wall0 + chrono::Duration::seconds(second as i64);
            engine.tick_at(engine.started() + Duration::from_secs(second), wall).await.unwrap();
            for v in engine.overview("demo") {
                assert!(v.error.is_none(), "{}: {:?}", t.kind, v.error);
                // Polls are spread over the first interval: an object may not have polled yet.
                let Some(replicas) = v.current_replicas else { continue };
                assert!(replicas >= v.min_replicas && replicas <= v.max_replicas, "{}: {} at {replicas}", t.kind, v.name);
                seen.entry(v.name.clone()).or_default().insert(replicas);
            }
        }
        assert_eq!(seen.len(), 3, "{}: three demo objects", t.kind);
        for (name, replicas) in &seen {
            let view = engine.overview("demo").into_iter().find(|v| &v.name == name).unwrap();
            let last: Vec<String> = store::recent_decisions(&t.db, view.id, 5).await.unwrap().into_iter().map(|d| d.explanation).collect();
            assert!(replicas.len() > 1, "{}: {name} never changed replicas in 90 s: {replicas:?}; last decisions: {last:#?}", t.kind);
        }

        let view = engine.overview("demo").into_iter().find(|v| v.name == "web-frontend").unwrap();
        let decisions = store::recent_decisions(&t.db, view.id, 200).await.unwrap();
        assert!((89..=90).contains(&decisions.len()), "{}: one decision per poll, got {}", t.kind, decisions.len());
        assert_eq!(view.last_decision.as_deref(), Some(decisions[0].explanation.as_str()));
        assert!(decisions.iter().any(|d| d.explanation.starts_with("scaled ")), "{}", t.kind);
        let metrics = engine.metrics().encode();
        for name in ["swell_decisions_total", "swell_scaler_metrics_value", "swell_scaler_active", "swell_scaler_metrics_latency_seconds", "swell_scale_loop_latency_seconds", "swell_scheduler_lateness_seconds"] {
            assert!(metrics.contains(name), "{name} missing from {metrics}");
        }
    }
}

fn find(engine: &Engine, name: &str) -> engine::ObjectView {
    engine.overview("demo").into_iter().find(|v| v.name == name).unwrap()
}

#[tokio::test]
async fn overrides_and_pause_hold_in_the_simulated_cluster_and_survive_a_restart() {
    use engine::OverrideInput;
    for t in common::databases().await {
        demo::seed(&t.db).await.unwrap();
        let opts = || EngineOptions { sim: Some(Arc::new(Mutex::new(demo::cluster()))), ..Default::default() };
        let engine = Engine::new(t.db.clone(), opts()).await.unwrap();
        let at = |e: &Engine, s: u64| e.started() + Duration::from_secs(s);
        // Wall time for second `s` of an engine's life, in step with `at`.
        let wall0 = Utc::now();
        let wall = |s: u64| wall0 + chrono::Duration::seconds(s as i64);
        for s in 0..5 {
            engine.tick_at(at(&engine, s), wall(s)).await.unwrap();
        }
        let web = find(&engine, "web-frontend");
        let worker = find(&engine, "orders-worker");

        // Bad input is refused, naming the field; nothing is stored.
        let err = engine.set_override("demo", web.id, OverrideInput::Replicas(3), "  ", "alice", None).await.unwrap_err();
        assert!(err.to_string().starts_with("reason"), "{err}");
        let err = engine.set_override("demo", web.id, OverrideInput::Replicas(-1), "x", "alice", None).await.unwrap_err();
        assert!(err.to_string().starts_with("replicas"), "{err}");
        let err = engine.set_override("demo", web.id, OverrideInput::Pause, "x", "alice", Some(Utc::now() - chrono::Duration::seconds(1))).await.unwrap_err();
        assert!(err.to_string().starts_with("expires_at"), "{err}");
        assert!(engine.set_override("demo", 999_999, OverrideInput::Pause, "x", "alice", None).await.is_err());
        let err = engine.set_override("other-tenant", web.id, OverrideInput::Pause, "x", "alice", None).await.unwrap_err();
        assert!(err.to_string().contains("not found"), "another tenant's object is invisible: {err}");

        engine.set_override("demo", web.id, OverrideInput::Replicas(11), "load test", "alice", None).await.unwrap();
        engine.tick_at(at(&engine, 5), wall(5)).await.unwrap();
        let paused_at = find(&engine, "orders-worker").current_replicas.unwrap();
        engine.set_override("demo", worker.id, OverrideInput::Pause, "investigating", "bob", None).await.unwrap();
        for s in 6..60 {
            engine.tick_at(at(&engine, s), wall(s)).await.unwrap();
            assert_eq!(find(&engine, "web-frontend").current_replicas, Some(11), "{}: override holds at {s} s", t.kind);
            assert_eq!(find(&engine, "orders-worker").current_replicas, Some(paused_at), "{}: pause holds at {s} s", t.kind);
        }
        let view = find(&engine, "web-frontend");
        assert_eq!(view.override_.as_deref(), Some("replicas fixed at 11 by alice: load test"));
        assert_eq!(view.phase, "Overridden");
        assert_eq!(find(&engine, "orders-worker").phase, "Paused");
        let metrics = engine.metrics().encode();
        assert!(metrics.contains(r#"swell_scaled_object_paused{cluster="simulated",namespace="shop",scaled_object="orders-worker",type="scaledobject"} 1"#), "{metrics}");
        assert!(metrics.contains(r#"swell_scaled_object_paused{cluster="simulated",namespace="shop",scaled_object="web-frontend",type="scaledobject"} 0"#), "{metrics}");
        drop(engine);

        // A restart (new engine, new cluster) keeps both. Wall time goes on from where it was.
        let engine = Engine::new(t.db.clone(), opts()).await.unwrap();
        let wall = |s: u64| wall0 + chrono::Duration::seconds(100 + s as i64);
        assert!(find(&engine, "web-frontend").override_.is_some(), "{}: override reloaded", t.kind);
        let fresh_worker = find(&engine, "orders-worker");
        for s in 0..10 {
            engine.tick_at(at(&engine, s), wall(s)).await.unwrap();
            // From the first poll on (polls are spread over the first second).
            if s >= 1 {
                assert_eq!(find(&engine, "web-frontend").current_replicas, Some(11), "{}: after restart at {s} s", t.kind);
            }
        }
        assert_eq!(find(&engine, "orders-worker").phase, "Paused", "{}", t.kind);
        let _ = fresh_worker;

        // Resume: metrics decide again.
        assert!(engine.clear_override("demo", web.id, "done", "alice").await.unwrap());
        assert!(!engine.clear_override("demo", web.id, "again", "alice").await.unwrap(), "nothing left to clear");
        engine.tick_at(at(&engine, 10), wall(10)).await.unwrap();
        let resumed = store::recent_decisions(&t.db, web.id, 1).await.unwrap();
        assert_ne!(resumed[0].rule, "override_replicas", "{}", t.kind);
        assert!(find(&engine, "web-frontend").override_.is_none());

        // An override with an expiry stops on its own.
        let soon = wall(11) + chrono::Duration::seconds(30);
        engine.set_override("demo", web.id, OverrideInput::Replicas(2), "short", "carol", Some(soon)).await.unwrap();
        engine.tick_at(at(&engine, 11), wall(11)).await.unwrap();
        assert_eq!(store::recent_decisions(&t.db, web.id, 1).await.unwrap()[0].rule, "override_replicas");
        engine.tick_at(at(&engine, 42), wall(42)).await.unwrap();
        assert_ne!(store::recent_decisions(&t.db, web.id, 1).await.unwrap()[0].rule, "override_replicas", "{}: expired", t.kind);

        // Every change is in the audit log with who and why.
        let tenant = store::ensure_tenant(&t.db, "demo", "Demo").await.unwrap();
        let audit = store::audit_entries(&t.db, tenant.id, 10).await.unwrap();
        let lines: Vec<String> = audit.iter().rev().map(|a| format!("{} {} {}", a.actor, a.action, a.target)).collect();
        assert_eq!(
            lines,
            [
                "alice override.replicas shop/web-frontend",
                "bob override.pause shop/orders-worker",
                "alice override.clear shop/web-frontend",
                "alice override.clear shop/web-frontend",
                "carol override.replicas shop/web-frontend",
            ],
            "{}",
            t.kind
        );
        assert_eq!(audit.last().unwrap().detail["reason"], "load test");
    }
}

#[tokio::test]
async fn unchanged_decisions_are_logged_only_as_heartbeats_and_samples_are_thinned() {
    for t in common::databases().await {
        demo::seed(&t.db).await.unwrap();
        let opts = EngineOptions { sim: Some(Arc::new(Mutex::new(demo::cluster()))), ..Default::default() };
        let engine = Engine::new(t.db.clone(), opts).await.unwrap();
        let wall0 = Utc::now();
        for s in 0..180u64 {
            engine.tick_at(engine.started() + Duration::from_secs(s), wall0 + chrono::Duration::seconds(s as i64)).await.unwrap();
        }
        for view in engine.overview("demo") {
            let logged = store::recent_decisions(&t.db, view.id, 1000).await.unwrap();
            assert!(!logged.is_empty() && logged.len() < 179, "{}: {} logged {} of ~179 polls", t.kind, view.name, logged.len());
            // Newest first: each row differs from the one before it, or is a heartbeat.
            for pair in logged.windows(2) {
                let (newer, older) = (&pair[0], &pair[1]);
                let differs = newer.new_replicas != older.new_replicas
                    || newer.prev_replicas != newer.new_replicas
                    || newer.rule != older.rule
                    || newer.state != older.state
                    || newer.at - older.at >= chrono::Duration::seconds(60);
                assert!(differs, "{}: {} logged an unchanged decision: {} / {}", t.kind, view.name, newer.explanation, older.explanation);
            }
            // From the first poll on (web-frontend also has the history the demo seeds before it).
            let samples = store::samples_between(&t.db, view.id, &view.metrics[0].0, wall0, wall0 + chrono::Duration::hours(1))
                .await
                .unwrap();
            assert!((12..=13).contains(&samples.len()), "{}: {} kept {} samples in 180 s at one per 15 s", t.kind, view.name, samples.len());
        }
    }
}
