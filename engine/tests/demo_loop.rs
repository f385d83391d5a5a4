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
        let engine = Engine::new(t.db.clone(), EngineOptions { sim: Some(sim.clone()), ..Default::default() }).await.unwrap();
        assert_eq!(engine.tenants(), vec!["demo".to_string()]);

        let mut seen = std::collections::BTreeMap::<String, std::collections::BTreeSet<i32>>::new();
        for second in 0..90u64 {
            engine.tick_at(engine.started() + Duration::from_secs(second), Utc::now()).await.unwrap();
            for v in engine.overview("demo") {
                assert!(v.error.is_none(), "{}: {:?}", t.kind, v.error);
                let replicas = v.current_replicas.unwrap();
                assert!(replicas >= v.min_replicas && replicas <= v.max_replicas, "{}: {} at {replicas}", t.kind, v.name);
                seen.entry(v.name.clone()).or_default().insert(replicas);
            }
        }
        assert_eq!(seen.len(), 3, "{}: three demo objects", t.kind);
        for (name, replicas) in &seen {
            assert!(replicas.len() > 1, "{}: {name} never changed replicas in 90 s: {replicas:?}", t.kind);
        }

        let view = engine.overview("demo").into_iter().find(|v| v.name == "web-frontend").unwrap();
        let decisions = store::recent_decisions(&t.db, view.id, 200).await.unwrap();
        assert_eq!(decisions.len(), 90, "{}: one decision per poll", t.kind);
        assert_eq!(view.last_decision.as_deref(), Some(decisions[0].explanation.as_str()));
        assert!(decisions.iter().any(|d| d.explanation.starts_with("scaled ")), "{}", t.kind);
        assert!(engine.metrics().encode().contains("swell_decisions_total"));
    }
}
