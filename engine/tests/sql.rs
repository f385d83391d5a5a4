//! Every SQL query the engine makes, through the real migrations, on SQLite and PostgreSQL.

mod common;

use chrono::Timelike;
use chrono::{Duration, Utc};
use engine::spec::ScaledObjectSpec;
use engine::store::{self, NewDecision, NewSample};
use migrations::{Migrator, MigratorTrait};

fn spec(min: i32, max: i32) -> ScaledObjectSpec {
    serde_json::from_value(serde_json::json!({
        "scaleTargetRef": {"name": "web"},
        "minReplicaCount": min,
        "maxReplicaCount": max,
        "triggers": [
            {"type": "simulated", "name": "rate", "metadata": {"workload": "w", "target": "10"}},
            {"type": "simulated", "metadata": {"workload": "q", "target": "5"}}
        ]
    }))
    .unwrap()
}

#[tokio::test]
async fn migrations_apply_revert_and_reapply() {
    for t in common::databases().await {
        assert!(store::migrations_applied(&t.db).await.unwrap(), "{}", t.kind);
        Migrator::down(&t.db, None).await.unwrap_or_else(|e| panic!("{}: down: {e}", t.kind));
        assert!(!store::migrations_applied(&t.db).await.unwrap(), "{}", t.kind);
        store::migrate(&t.db).await.unwrap_or_else(|e| panic!("{}: up again: {e}", t.kind));
        store::migrate(&t.db).await.unwrap_or_else(|e| panic!("{}: up is idempotent: {e}", t.kind));
        assert!(store::migrations_applied(&t.db).await.unwrap(), "{}", t.kind);
    }
}

#[tokio::test]
async fn scaled_objects_round_trip_with_their_triggers() {
    for t in common::databases().await {
        let tenant = store::ensure_tenant(&t.db, "acme", "Acme").await.unwrap();
        assert_eq!(store::ensure_tenant(&t.db, "acme", "Acme").await.unwrap().id, tenant.id, "{}: idempotent", t.kind);
        let cluster = store::ensure_cluster(&t.db, "sim", "simulated").await.unwrap();
        let id = store::upsert_scaled_object(&t.db, tenant.id, cluster.id, "shop", "web", "swell", &spec(1, 5)).await.unwrap();
        // Replacing keeps the id and rewrites the spec.
        let again = store::upsert_scaled_object(&t.db, tenant.id, cluster.id, "shop", "web", "swell", &spec(2, 9)).await.unwrap();
        assert_eq!(id, again, "{}", t.kind);
        let objects = store::load_objects(&t.db).await.unwrap();
        assert_eq!(objects.len(), 1, "{}", t.kind);
        let o = &objects[0];
        assert_eq!((o.tenant.as_str(), o.cluster_kind.as_str(), o.namespace.as_str()), ("acme", "simulated", "shop"));
        assert_eq!((o.spec.min_replica_count, o.spec.max_replica_count), (2, 9), "{}", t.kind);
        assert_eq!(o.spec, spec(2, 9), "{}", t.kind);

        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        use engine::store::entities::triggers;
        let rows = triggers::Entity::find()
            .filter(triggers::Column::ScaledObjectId.eq(id))
            .order_by_asc(triggers::Column::Position)
            .all(&t.db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{}: replaced, not appended", t.kind);
        assert_eq!(rows[0].name.as_deref(), Some("rate"));
        assert_eq!(rows[1].metadata["target"], "5");

        // A bad spec is refused whole: nothing changes.
        let err = store::upsert_scaled_object(&t.db, tenant.id, cluster.id, "shop", "web", "swell", &spec(9, 2)).await.unwrap_err();
        assert!(err.to_string().contains("spec.minReplicaCount"), "{err}");
        assert_eq!(store::load_objects(&t.db).await.unwrap()[0].spec, spec(2, 9), "{}", t.kind);
    }
}

#[tokio::test]
async fn decisions_and_samples_are_written_in_batches_and_read_back_by_time() {
    for t in common::databases().await {
        let tenant = store::ensure_tenant(&t.db, "acme", "Acme").await.unwrap();
        let cluster = store::ensure_cluster(&t.db, "sim", "simulated").await.unwrap();
        let id = store::upsert_scaled_object(&t.db, tenant.id, cluster.id, "shop", "web", "swell", &spec(0, 5)).await.unwrap();
        let t0 = Utc::now() - Duration::hours(2);
        let decisions: Vec<_> = (0..1200)
            .map(|i| NewDecision {
                scaled_object_id: id,
                at: t0 + Duration::seconds(i),
                state: "Active".into(),
                rule: "scale_to_metric".into(),
                prev_replicas: (i % 5) as i32,
                new_replicas: ((i + 1) % 5) as i32,
                explanation: format!("decision {i}"),
                inputs: serde_json::json!([{"metric": "rate", "values": [i]}]),
            })
            .collect();
        let samples: Vec<_> = (0..2500)
            .map(|i| NewSample { scaled_object_id: id, metric: "rate".into(), at: t0 + Duration::seconds(i), value: i as f64 })
            .collect();
        store::write_batch(&t.db, &decisions, &samples, &[]).await.unwrap_or_else(|e| panic!("{}: {e}", t.kind));
        store::write_batch(&t.db, &[], &[], &[]).await.unwrap();

        let recent = store::recent_decisions(&t.db, id, 3).await.unwrap();
        let texts: Vec<_> = recent.iter().map(|d| d.explanation.as_str()).collect();
        assert_eq!(texts, ["decision 1199", "decision 1198", "decision 1197"], "{}", t.kind);
        assert_eq!(recent[0].inputs[0]["values"][0], 1199);

        let range = store::decisions_between(&t.db, id, t0 + Duration::seconds(10), t0 + Duration::seconds(13)).await.unwrap();
        let texts: Vec<_> = range.iter().map(|d| d.explanation.as_str()).collect();
        assert_eq!(texts, ["decision 10", "decision 11", "decision 12"], "{}", t.kind);

        let window = store::samples_between(&t.db, id, "rate", t0 + Duration::seconds(100), t0 + Duration::seconds(110)).await.unwrap();
        let values: Vec<f64> = window.iter().map(|s| s.value).collect();
        assert_eq!(values, (100..110).map(|v| v as f64).collect::<Vec<_>>(), "{}", t.kind);

        // Retention: everything before t0 + 1000 s goes, the rest stays.
        let gone = store::prune_history(&t.db, t0 + Duration::seconds(1000)).await.unwrap();
        assert_eq!(gone, 1000 + 1000, "{}", t.kind);
        let left = store::samples_between(&t.db, id, "rate", t0, t0 + Duration::days(1)).await.unwrap();
        assert_eq!(left.len(), 1500, "{}", t.kind);
    }
}

#[tokio::test]
async fn audit_entries_are_stored() {
    for t in common::databases().await {
        let tenant = store::ensure_tenant(&t.db, "acme", "Acme").await.unwrap();
        store::audit(&t.db, Some(tenant.id), "alice", "override.set", "shop/web", serde_json::json!({"replicas": 3})).await.unwrap();
        use sea_orm::EntityTrait;
        let rows = engine::store::entities::audit_log::Entity::find().all(&t.db).await.unwrap();
        assert_eq!(rows.len(), 1, "{}", t.kind);
        assert_eq!((rows[0].actor.as_str(), rows[0].detail["replicas"].as_i64()), ("alice", Some(3)));
        // The audit log has the decisions' retention.
        assert_eq!(store::prune_history(&t.db, Utc::now() - Duration::hours(1)).await.unwrap(), 0, "{}", t.kind);
        assert_eq!(store::prune_history(&t.db, Utc::now() + Duration::seconds(1)).await.unwrap(), 1, "{}", t.kind);
    }
}

#[tokio::test]
async fn loop_state_is_stored_replaced_and_skipped_for_deleted_objects() {
    use engine::store::state::{self, ObjectState};
    for t in common::databases().await {
        let tenant = store::ensure_tenant(&t.db, "acme", "Acme").await.unwrap();
        let cluster = store::ensure_cluster(&t.db, "sim", "simulated").await.unwrap();
        let id = store::upsert_scaled_object(&t.db, tenant.id, cluster.id, "shop", "web", "swell", &spec(0, 5)).await.unwrap();
        let at = |s: i64| Utc::now().with_nanosecond(0).unwrap() - Duration::seconds(s);
        let first = ObjectState { last_active: Some(at(30)), health: [("rate".to_string(), 2)].into(), original_replicas: Some(3), first_seen: Some(at(600)) };
        store::write_batch(&t.db, &[], &[], &[(id, first.clone())]).await.unwrap();
        assert_eq!(state::load(&t.db, id).await.unwrap(), Some(first.clone()), "{}", t.kind);
        // Written again: replaced, not duplicated.
        let second = ObjectState { last_active: Some(at(5)), health: Default::default(), ..first };
        store::write_batch(&t.db, &[], &[], &[(id, second.clone())]).await.unwrap();
        assert_eq!(state::load_all(&t.db).await.unwrap().into_iter().collect::<Vec<_>>(), vec![(id, second)], "{}", t.kind);
        // An object deleted since its poll: its state is dropped, the batch still lands.
        store::delete_scaled_object(&t.db, id, "test", "shop/web").await.unwrap();
        store::write_batch(&t.db, &[], &[], &[(id, ObjectState::default())]).await.unwrap_or_else(|e| panic!("{}: {e}", t.kind));
        assert!(state::load_all(&t.db).await.unwrap().is_empty(), "{}", t.kind);
    }
}

#[tokio::test]
async fn model_versions_keep_one_champion_prune_old_ones_and_roll_back() {
    use engine::store::models::{self, KEEP, NewModelVersion};
    for t in common::databases().await {
        let tenant = store::ensure_tenant(&t.db, "acme", "Acme").await.unwrap();
        let cluster = store::ensure_cluster(&t.db, "sim", "simulated").await.unwrap();
        let id = store::upsert_scaled_object(&t.db, tenant.id, cluster.id, "shop", "web", "swell", &spec(0, 5)).await.unwrap();
        let at = Utc::now().with_nanosecond(0).unwrap();
        let version = |promoted: bool, mae: f64| NewModelVersion {
            scaled_object_id: id,
            kind: "random-forest".into(),
            metric: "s0-simulated".into(),
            horizon_secs: 180,
            trained_from: at - Duration::days(1),
            trained_to: at - Duration::hours(4),
            validated_to: at,
            mae: Some(mae),
            mape: Some(f64::NAN),
            scored_points: 288,
            champion_mae: None,
            promoted,
            reason: "test".into(),
            model: vec![0, 159, 255, 7],
        };
        assert_eq!(models::record(&t.db, version(true, 10.0)).await.unwrap(), 1, "{}", t.kind);
        assert_eq!(models::record(&t.db, version(false, 12.0)).await.unwrap(), 2, "{}", t.kind);
        let champion = models::champion(&t.db, id).await.unwrap().unwrap();
        assert_eq!((champion.version, champion.model.clone(), champion.mape), (1, vec![0, 159, 255, 7], None), "{}: bytes exact, NaN stored as NULL", t.kind);
        for _ in 0..KEEP + 3 {
            models::record(&t.db, version(false, 11.0)).await.unwrap();
        }
        let listed = models::list(&t.db, id).await.unwrap();
        assert_eq!(listed.len() as i32, KEEP + 1, "{}: the newest {KEEP} and the champion", t.kind);
        assert!(listed.iter().any(|v| v.version == 1 && v.is_champion) && listed[0].version == KEEP + 5, "{}: {:?}", t.kind, listed.iter().map(|v| v.version).collect::<Vec<_>>());
        // A rollback makes another version the only champion, audited.
        assert!(models::make_champion(&t.db, id, tenant.id, KEEP + 4, "alice", "shop/web").await.unwrap(), "{}", t.kind);
        let champions: Vec<i32> = models::list(&t.db, id).await.unwrap().iter().filter(|v| v.is_champion).map(|v| v.version).collect();
        assert_eq!(champions, vec![KEEP + 4], "{}", t.kind);
        let audit = store::audit_entries(&t.db, tenant.id, 5).await.unwrap();
        assert!(audit.iter().any(|a| a.action == "model.rollback" && a.actor == "alice"), "{}", t.kind);
        assert!(!models::make_champion(&t.db, id, tenant.id, 999, "alice", "shop/web").await.unwrap(), "{}", t.kind);
        // Deleting the object deletes its models.
        store::delete_scaled_object(&t.db, id, "test", "shop/web").await.unwrap();
        assert!(models::list(&t.db, id).await.unwrap().is_empty(), "{}", t.kind);
    }
}
