//! One poll of one object: read its scalers, decide, actuate, update its view.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::object::ObjectRuntime;
use super::{ActiveOverride, Engine};
use crate::actuate::ClusterHandle;
use crate::decide::{self, Decision, Inputs, Phase, TriggerInput};
use crate::metrics::RuleLabels;
use crate::predict::live::Route;
use crate::{Error, Result};

impl Engine {
    /// Poll → decide → actuate for one object. Returns the decision, the replicas before it
    /// and the trigger inputs it saw.
    pub(super) async fn step(&self, obj: &mut ObjectRuntime, now: DateTime<Utc>) -> Result<(Decision, i32, Vec<TriggerInput>)> {
        let cluster = self.cluster_of(&obj.stored)?;
        if let ClusterHandle::Kube(k) = &cluster {
            if !k.fence().holds() {
                // Not the leader: no scaler queries, no writes; the leader does both.
                return Err(Error::Standby);
            }
        }
        if std::mem::take(&mut obj.standby) {
            // Leader now: what the previous leader stored is the truth, not this instance's
            // memory from before it went on standby.
            if let Some(stored) = crate::store::state::load(&self.inner.db, obj.stored.id).await? {
                obj.restore(stored);
            }
        }
        // Every trigger at once, each under the scaler timeout (KEDA polls them concurrently).
        let timeout = self.inner.opts.scaler_timeout;
        let readings = futures::future::join_all(obj.scalers.iter().map(|scaler| async move {
            let query_started = Instant::now();
            let result = tokio::time::timeout(timeout, scaler.metrics_and_activity()).await;
            let reading = match result {
                Ok(Ok(r)) => Ok(r),
                // Client errors quote the URL they used: never pass its credentials on.
                Ok(Err(e)) => Err(crate::redact::redact(&e.to_string())),
                Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
            };
            (reading, query_started.elapsed().as_secs_f64())
        }))
        .await;
        let mut inputs = Vec::with_capacity(obj.scalers.len());
        let mut latencies = Vec::with_capacity(obj.scalers.len());
        for (i, (scaler, (reading, query_secs))) in obj.scalers.iter().zip(readings).enumerate() {
            latencies.push((query_secs * 1000.0) as u64);
            // After the query: some scalers learn their target from the source (external).
            let spec = scaler.metric_spec();
            let l = super::scaler_labels(&obj.stored, i, &spec.name);
            self.inner.metrics.scaler_latency.get_or_create(&l).set(query_secs);
            match &reading {
                Ok((values, active)) => {
                    for v in values {
                        self.inner.metrics.scaler_metrics_value.get_or_create(&l).set(v.value);
                    }
                    self.inner.metrics.scaler_active.get_or_create(&l).set(*active as i64);
                }
                Err(_) => {}
            }
            // Created at 0 on the first poll, so `rate()` sees the first error.
            let errors = self.inner.metrics.scaler_errors.get_or_create(&l);
            if reading.is_err() {
                errors.inc();
            }
            inputs.push(TriggerInput { spec, reading });
        }

        let object_labels = super::object_labels(&obj.stored);
        let _ = self.inner.metrics.actuation_errors.get_or_create(&object_labels);
        let count_failure = |e: Error| {
            self.inner.metrics.actuation_errors.get_or_create(&object_labels).inc();
            e
        };
        let (current, ready_before) = self.replicas(&cluster, &obj.stored).await.map_err(count_failure)?;
        if obj.override_.as_ref().is_some_and(|o| !o.in_force(now)) {
            tracing::info!(object = %obj.stored.name, "override expired");
            obj.override_ = None;
        }
        let override_input = obj.override_.as_ref().map(|o| o.input);
        let mut decision = decide::decide(
            &obj.state,
            &Inputs {
                spec: &obj.stored.spec,
                triggers: &inputs,
                current_replicas: current,
                override_: override_input,
                // KEDA's pause annotations arrive with CRD sync; SQL-made objects pause by override.
                pause: obj.extras.pause.clone(),
            },
            now,
        );
        // spec.anomaly: a broken reading (NaN, a jump, a blank, stuck, isolated) is kept out of
        // the history and the policy decides what it may do to the replicas.
        let mut anomaly = None;
        let mut held = BTreeMap::new();
        if let Some(g) = obj.anomaly.as_mut() {
            let _ = self.inner.metrics.anomalies.get_or_create(&crate::metrics::PolicyLabels { policy: g.policy_name() });
            let at = now.timestamp();
            let findings: Vec<(usize, String, f64, crate::predict::anomaly::Finding)> = inputs
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    let m = t.reading.as_ref().ok()?.0.first()?;
                    Some((i, m.name.clone(), m.value, g.check(at, &m.name, m.value)?))
                })
                .collect();
            if let Some((_, metric, _, finding)) = findings.first() {
                let fallback = obj.stored.spec.fallback.as_ref().map(|f| f.replicas);
                let note = g.mitigate(metric, finding, &mut decision, current, &obj.state, fallback);
                self.inner.metrics.anomalies.get_or_create(&crate::metrics::PolicyLabels { policy: note.policy.clone() }).inc();
                if note.mitigated {
                    // The HPA is served the last good value, not the broken one.
                    for (i, name, ..) in &findings {
                        if let Some(last) = g.last_good(name) {
                            held.insert(crate::external::external_metric_name(*i, &inputs[*i].spec.name), last);
                        }
                    }
                }
                anomaly = Some((note, findings.iter().any(|(i, ..)| *i == 0)));
            }
        }
        obj.last_anomaly = anomaly.as_ref().map(|(n, _)| n.clone());
        let mitigated = anomaly.as_ref().is_some_and(|(n, _)| n.mitigated);
        let first_broken = anomaly.as_ref().is_some_and(|(_, first)| *first);
        // The forecast of the first trigger's metric raises the answer ahead of load (direct
        // mode, where decide's answer is the target's replicas); in hpa mode it says only
        // what it would do until the served metric carries it.
        let direct = self.direct(&obj.stored);
        if let Some(p) = obj.predictor.as_mut() {
            let first = inputs.first().and_then(|t| Some((t.spec.target, t.reading.as_ref().ok()?.0.first()?)));
            if let Some((_, m)) = first.filter(|_| !first_broken) {
                p.observe(now.timestamp(), m.value);
            }
            p.poll_training(now.timestamp(), first.map(|(_, m)| m.name.as_str()));
            if let Some(mape) = p.mape {
                self.inner.metrics.forecast_mape.get_or_create(&object_labels).set(mape);
            }
            if let Some((target, m)) = first.filter(|_| !mitigated) {
                let spec = &obj.stored.spec;
                let route = if direct { Route::Direct } else { Route::Hpa { reading: m.value } };
                obj.last_forecast = p.adjust(&mut decision, now, current, target, spec.min_replica_count, spec.max_replica_count, route);
            } else {
                obj.last_forecast = None;
            }
        }
        let wrote = self.actuate(&cluster, obj, &decision, current).await.map_err(count_failure)?;
        self.inner.metrics.desired_replicas.get_or_create(&object_labels).set(decision.replicas as i64);
        self.inner.metrics.paused.get_or_create(&object_labels).set((decision.state.phase == Phase::Paused) as i64);
        self.inner.metrics.decisions.get_or_create(&RuleLabels { rule: decision.rule.as_str().into() }).inc();

        // Read the target again only when this poll wrote to it.
        let (after, ready) = if wrote { self.replicas_fresh(&cluster, &obj.stored).await.map_err(count_failure)? } else { (current, ready_before) };
        let mut external = crate::external::served_values(&obj.stored.spec, &inputs, &decision.state.failures, current);
        // hpa mode with a forecast above the load: the first trigger's metric is served as
        // max(current, forecast) (not with scalingModifiers: the HPA sees only the composite).
        let floor = obj.last_forecast.as_ref().and_then(|n| n.hpa_floor).filter(|_| obj.stored.spec.scaling_modifiers().is_none()).and_then(|floor| {
            let name = crate::external::external_metric_name(0, &inputs.first()?.spec.name);
            let served = external.get_mut(&name)?;
            *served = served.max(floor);
            Some((name, floor))
        });
        for (name, last) in &held {
            if let Some(served) = external.get_mut(name) {
                *served = *last;
            }
        }
        let mut views = self.inner.views.write().expect("views lock");
        if let Some(v) = views.get_mut(&obj.stored.id) {
            v.current_replicas = Some(after);
            v.ready_replicas = Some(ready);
            v.desired_replicas = Some(decision.replicas);
            v.phase = decision.state.phase.as_str().into();
            v.metrics = inputs
                .iter()
                .filter_map(|t| t.reading.as_ref().ok())
                .flat_map(|(values, _)| values.iter().map(|m| (m.name.clone(), m.value)))
                .collect();
            if let Some((_, value)) = v.metrics.first() {
                v.spark.push_back((now.timestamp_millis(), *value));
                if v.spark.len() > super::views::SPARK_POINTS {
                    v.spark.pop_front();
                }
            }
            v.last_decision = Some(decision.explanation.clone());
            v.last_decision_at = Some(now);
            v.error = inputs.iter().find_map(|t| t.reading.as_ref().err().cloned());
            v.override_ = obj.override_.as_ref().map(ActiveOverride::describe);
            v.external = external;
            v.forecast = obj.last_forecast.clone();
            v.model_status = obj.predictor.as_ref().map(|p| p.status());
            v.forecast_floor = floor;
            v.anomaly = obj.last_anomaly.clone();
            v.held = held;
            v.live = super::views::LiveMetrics(if obj.stored.spec.scaling_modifiers().is_some() {
                Vec::new()
            } else {
                obj.scalers
                    .iter()
                    .zip(&obj.stored.spec.triggers)
                    .enumerate()
                    .filter(|(_, (_, t))| !t.use_cached_metrics)
                    .map(|(i, (s, _))| (crate::external::external_metric_name(i, &s.metric_spec().name), s.clone()))
                    .collect()
            });
            v.health = decision.state.failures.clone();
            v.original_replicas = obj.persisted.original_replicas;
            v.last_rule = Some(decision.rule.as_str().into());
            v.warnings = obj.extras.pause.warnings.clone();
            v.triggers = inputs
                .iter()
                .zip(&latencies)
                .enumerate()
                .map(|(i, (t, latency))| super::views::TriggerView {
                    kind: obj.stored.spec.triggers.get(i).map(|t| t.trigger_type.clone()).unwrap_or_default(),
                    metric: t.spec.name.clone(),
                    target: t.spec.target,
                    activation_target: t.spec.activation_target,
                    last: t.reading.as_ref().map(|(values, _)| values.iter().map(|m| m.value).sum()).map_err(Clone::clone),
                    latency_ms: *latency,
                })
                .collect();
        }
        Ok((decision, current, inputs))
    }
}

