//! What a cluster's sync writes back: each object's status (KEDA's fields and conditions)
//! when it changes, with an event when it turns active, inactive or starts failing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::EventType;
use tokio::sync::watch;

use super::{Key, Shared};
use crate::ObjectView;
use crate::crd::{Condition, ScaledObjectStatus};

/// The status Swell reports for an object the engine runs: KEDA's fields, and conditions
/// that each say what is true with a reason and a message.
pub fn status_of(view: &ObjectView) -> ScaledObjectStatus {
    let spec = view.spec.as_deref();
    let rule = view.last_rule.as_deref().unwrap_or("");
    let ready = match (&view.error, view.phase.as_str()) {
        (None, _) if view.warnings.is_empty() => Condition::new("Ready", true, "ScaledObjectReady", "ScaledObject is defined correctly and is ready for scaling"),
        (None, _) => Condition::new("Ready", true, "ScaledObjectReady", view.warnings.join("; ")),
        (Some(e), "Active") => Condition { status: "Unknown".into(), ..Condition::new("Ready", false, "PartialTriggerError", format!("Some triggers are not working correctly: {e}")) },
        (Some(e), _) if rule == "scaler_error_hold" || rule == "fallback" => Condition::new("Ready", false, "TriggerError", format!("Triggers are not working correctly: {e}")),
        (Some(e), _) => Condition::new("Ready", false, "ScaledObjectCheckFailed", e.clone()),
    };
    let active = match view.phase.as_str() {
        "Active" => Condition::new("Active", true, "ScalerActive", "Scaling is performed because triggers are active"),
        "CoolingDown" => Condition::new("Active", false, "ScalerCooldown", "Scaler cooling down because triggers are not active"),
        _ => Condition::new("Active", false, "ScalerNotActive", "Scaling is not performed because triggers are not active"),
    };
    let fallback = if rule == "fallback" {
        Condition::new("Fallback", true, "FallbackExists", "At least one trigger is falling back on this scaled object")
    } else if spec.is_some_and(|s| s.fallback.is_some()) {
        Condition::new("Fallback", false, "NoFallbackFound", "No fallbacks are active on this scaled object")
    } else {
        Condition::new("Fallback", false, "FallbackNotConfigured", "spec.fallback is not set: a failing trigger holds the replicas")
    };
    let paused = if view.phase == "Paused" {
        Condition::new("Paused", true, "ScaledObjectPaused", view.override_.clone().or_else(|| view.last_decision.clone()).unwrap_or_else(|| "ScaledObject is paused".into()))
    } else {
        Condition::new("Paused", false, "ScaledObjectUnpaused", "ScaledObject is not paused")
    };
    let health = view
        .health
        .iter()
        .map(|(metric, n)| (metric.clone(), crate::crd::HealthStatus { number_of_failures: *n as i32, status: if *n > 0 { "Failing" } else { "Happy" }.into() }))
        .collect();
    let join = |items: Vec<String>| (!items.is_empty()).then(|| items.join(","));
    ScaledObjectStatus {
        target: Some(view.target.clone()),
        scale_target_kind: view.target.split('/').next().map(str::to_string),
        current_replicas: view.current_replicas,
        desired_replicas: view.desired_replicas,
        last_decision: view.last_decision.clone(),
        last_active_time: view.last_active.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        health,
        original_replica_count: view.original_replicas,
        external_metric_names: view.external.keys().cloned().collect(),
        hpa_name: spec.filter(|s| s.actuation == crate::spec::Actuation::Hpa).map(|s| crate::actuate::hpa_name(&view.name, s)),
        triggers_types: spec.and_then(|s| join(s.triggers.iter().map(|t| t.trigger_type.clone()).collect())),
        authentications_types: spec.and_then(|s| join(s.triggers.iter().filter_map(|t| t.authentication_ref.as_ref().map(|r| r.name.clone())).collect())),
        conditions: vec![ready, active, fallback, paused],
        ..Default::default()
    }
}

/// Writes each object's status when it changes, with an event when it turns active,
/// inactive or starts failing.
pub(super) async fn write_status(shared: Arc<Shared>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut written: HashMap<Key, ScaledObjectStatus> = HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let views = shared.engine.cluster_objects(&shared.cluster.name);
        let live: HashSet<Key> = views.iter().map(|v| (v.namespace.clone(), v.name.clone())).collect();
        written.retain(|k, _| live.contains(k));
        for view in views {
            if view.last_decision_at.is_none() && view.error.is_none() {
                continue; // not polled yet
            }
            let k = (view.namespace.clone(), view.name.clone());
            if shared.rejected.lock().expect("rejected lock").contains_key(&k) {
                continue;
            }
            let mut status = status_of(&view);
            let before = written.get(&k);
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            for c in &mut status.conditions {
                let prev = before.and_then(|b| b.conditions.iter().find(|p| p.type_ == c.type_));
                c.last_transition_time = match prev {
                    Some(p) if p.status == c.status => p.last_transition_time.clone(),
                    _ => Some(now.clone()),
                };
            }
            if before == Some(&status) {
                continue;
            }
            let was_active = before.and_then(|b| b.conditions.iter().find(|c| c.type_ == "Active")).map(|c| c.status == "True");
            let is_active = view.phase == "Active";
            let was_error = before.and_then(|b| b.conditions.iter().find(|c| c.type_ == "Ready")).is_some_and(|c| c.status == "False");
            // KEDA: Deactivated when the target is taken to zero (or idle), not when cooldown starts.
            // Idle is the phase of a target at zero (or its idle count); the status writer may
            // run less often than polls, so the drop is read from the last written status.
            let deactivated = view.phase == "Idle" && before.and_then(|b| b.desired_replicas).zip(view.desired_replicas).is_some_and(|(was, now)| now < was);
            if shared.patch_status(&k, &status, view.spec.as_deref()).await {
                if was_active != Some(true) && is_active {
                    shared.event(&k, EventType::Normal, "ScaleTargetActivated", view.last_decision.as_deref().unwrap_or("")).await;
                }
                if deactivated {
                    shared.event(&k, EventType::Normal, "ScaleTargetDeactivated", view.last_decision.as_deref().unwrap_or("")).await;
                }
                if let (Some(e), false) = (&view.error, was_error) {
                    shared.event(&k, EventType::Warning, "ScaledObjectCheckFailed", e).await;
                }
                written.insert(k, status);
            }
        }
    }
}
