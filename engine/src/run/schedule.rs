//! The loop: due polls dispatched as tasks, one at a time per object, retries and pushes rescheduled.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedMutexGuard, mpsc, watch};

use super::object::{ObjectRuntime, Slot};
use super::writer::Record;
use super::{COALESCE, Engine, WRITE_QUEUE};
use crate::decide;
use crate::scalers::Scaler;
use crate::scheduler::next_due;
use crate::store::{self, NewDecision, NewSample};
use crate::{Error, Result};

/// Delay before retrying a failed actuation: exponential from 100 ms with jitter, never
/// later than the next regular poll.
pub(super) fn retry_delay(attempt: u32, polling: Duration) -> Duration {
    crate::backoff(attempt, Duration::from_millis(100), polling)
}

impl Engine {
    /// One task per push scaler of an object: on every push, poll the object now.
    pub(super) fn watch_pushes(&self, id: i32, scalers: &[Arc<dyn Scaler>]) -> Vec<tokio::task::JoinHandle<()>> {
        scalers
            .iter()
            .filter_map(|s| s.as_push())
            .map(|push| {
                let mut changes = push.changes();
                changes.mark_unchanged();
                let inner = Arc::downgrade(&self.inner);
                tokio::spawn(async move {
                    while changes.changed().await.is_ok() {
                        let Some(inner) = inner.upgrade() else { break };
                        Engine { inner }.poll_now(id);
                    }
                })
            })
            .collect()
    }

    /// Schedules an object's next poll for right now (a push arrived).
    /// Stops polling an object at once (its deletion has begun); [`Engine::remove`] then
    /// takes it away, [`Engine::apply`] brings it back. Returns whether it was running.
    pub fn stop_polling(&self, id: i32) -> bool {
        let Some(slot) = self.inner.objects.read().expect("objects lock").get(&id).cloned() else { return false };
        slot.stopped.store(true, Ordering::Relaxed);
        for t in slot.push_tasks.lock().expect("push tasks lock").drain(..) {
            t.abort();
        }
        true
    }

    pub fn poll_now(&self, id: i32) {
        let slot = self.inner.objects.read().expect("objects lock").get(&id).cloned();
        if let Some(slot) = slot {
            let now = Instant::now();
            *slot.next_due.lock().expect("due lock") = now;
            self.inner.schedule.lock().expect("schedule lock").push(now, id);
            self.inner.wake.notify_one();
        }
    }

    /// Runs the loop until `shutdown` turns true: every tick dispatches the objects that are
    /// due as tasks; a writer task stores their decisions in batches. On shutdown the polls
    /// in flight finish and everything queued is written.
    pub fn spawn(&self, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let (tx, rx) = mpsc::channel(WRITE_QUEUE);
            let writer = tokio::spawn(engine.clone().write_records(rx));
            let mut last_prune = Instant::now();
            // Webhook pushes that reached followers: read by every instance (so a new leader
            // starts from now), applied by the leader.
            let relay = tokio::spawn({
                let engine = engine.clone();
                async move {
                    let mut after = store::relay::last_id(&engine.inner.db).await.unwrap_or(0);
                    let mut every = tokio::time::interval(Duration::from_millis(200));
                    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        every.tick().await;
                        match store::relay::since(&engine.inner.db, after, &engine.inner.instance).await {
                            Ok((next, pushes)) => {
                                after = next;
                                if !engine.follower() {
                                    for p in pushes {
                                        engine.inner.ctx.push.push(&p.tenant, &p.source, p.update);
                                    }
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "reading relayed pushes failed"),
                        }
                    }
                }
            });
            // Overrides set through other instances, read beside the loop (never delaying it).
            let overrides = tokio::spawn({
                let engine = engine.clone();
                async move {
                    let mut every = tokio::time::interval(Duration::from_secs(1));
                    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        every.tick().await;
                        if let Err(e) = engine.refresh_overrides().await {
                            tracing::warn!(error = %e, "reading overrides failed");
                        }
                    }
                }
            });
            let mut in_flight = tokio::task::JoinSet::new();
            loop {
                let now = Instant::now();
                let latest = now + engine.inner.opts.tick;
                // Polls due within a couple of milliseconds go out together: fewer wake-ups
                // for a little lateness.
                let wake_at = engine.inner.schedule.lock().expect("schedule lock").next_due().map_or(latest, |d| d.min(latest)).max(now + COALESCE);
                tokio::select! {
                    _ = tokio::time::sleep_until(wake_at.into()) => {}
                    _ = engine.inner.wake.notified() => {}
                    _ = shutdown.changed() => break,
                }
                for task in engine.dispatch(Instant::now(), Utc::now()) {
                    let tx = tx.clone();
                    let engine = engine.clone();
                    in_flight.spawn(async move {
                        if let Ok(Some(record)) = task.await {
                            // A database that cannot keep up must not grow memory without
                            // bound: past WRITE_QUEUE records, new ones are dropped and counted.
                            if tx.try_send(record).is_err() {
                                engine.inner.metrics.rows_dropped.inc();
                            }
                        }
                    });
                }
                while in_flight.try_join_next().is_some() {}
                if last_prune.elapsed() > Duration::from_secs(3600) {
                    last_prune = Instant::now();
                    let before = Utc::now() - engine.inner.opts.retention;
                    if let Err(e) = store::prune_history(&engine.inner.db, before).await {
                        tracing::warn!(error = %e, "pruning history failed");
                    }
                    let _ = store::relay::prune(&engine.inner.db, Utc::now() - chrono::Duration::hours(1)).await;
                }
            }
            overrides.abort();
            relay.abort();
            while in_flight.join_next().await.is_some() {}
            drop(tx);
            let _ = writer.await;
            tracing::info!("scaling loop stopped");
        })
    }

    /// Starts a poll task for every object due at `at` (monotonic); `now` is the wall
    /// clock the decisions carry. An object still busy with its previous poll is skipped
    /// (and counted), so polls of one object never overlap.
    pub(super) fn dispatch(&self, at: Instant, now: DateTime<Utc>) -> Vec<tokio::task::JoinHandle<Option<Record>>> {
        if let Some(sim) = &self.inner.opts.sim {
            sim.lock().expect("sim lock").advance_to(at.saturating_duration_since(self.inner.started).as_secs_f64());
        }
        let due = self.inner.schedule.lock().expect("schedule lock").pop_due(at);
        let mut tasks = Vec::with_capacity(due.len());
        let mut reschedule = Vec::with_capacity(due.len());
        {
            let objects = self.inner.objects.read().expect("objects lock");
            for (due_at, id) in due {
                let Some(slot) = objects.get(&id) else { continue }; // deleted since
                if slot.stopped.load(Ordering::Relaxed) {
                    continue; // being deleted: off the schedule
                }
                let mut slot_due = slot.next_due.lock().expect("due lock");
                if *slot_due != due_at {
                    continue; // superseded by a retry or a reschedule
                }
                let interval = Duration::from_secs(slot.polling_secs.load(Ordering::Relaxed).max(1) as u64);
                *slot_due = next_due(due_at, at, interval);
                reschedule.push((*slot_due, id));
                drop(slot_due);
                match slot.runtime.clone().try_lock_owned() {
                    Ok(guard) => {
                        let engine = self.clone();
                        let slot = slot.clone();
                        tasks.push(tokio::spawn(async move { engine.poll(slot, guard, due_at, now).await }));
                    }
                    Err(_) => {
                        self.inner.metrics.skipped_polls.inc();
                    }
                }
            }
        }
        let mut schedule = self.inner.schedule.lock().expect("schedule lock");
        for (due, id) in reschedule {
            schedule.push(due, id);
        }
        tasks
    }

    /// One object's poll as a task: wait for a permit, then poll → decide → actuate.
    pub(super) async fn poll(self, slot: Arc<Slot>, mut obj: OwnedMutexGuard<ObjectRuntime>, due: Instant, now: DateTime<Utc>) -> Option<Record> {
        let _permit = self.inner.permits.clone().acquire_owned().await.ok()?;
        if slot.stopped.load(Ordering::Relaxed) {
            return None;
        }
        let started = Instant::now();
        self.inner.metrics.tick_lateness.observe(started.saturating_duration_since(due).as_secs_f64());
        let result = self.step(&mut obj, now).await;
        self.inner.metrics.loop_latency.observe(started.elapsed().as_secs_f64());
        match &result {
            Err(Error::Actuation { .. }) => {
                let attempt = slot.retries.fetch_add(1, Ordering::Relaxed) + 1;
                let polling = Duration::from_secs(obj.stored.spec.polling_interval.max(1) as u64);
                let retry_at = Instant::now() + retry_delay(attempt, polling);
                let mut slot_due = slot.next_due.lock().expect("due lock");
                if retry_at < *slot_due {
                    *slot_due = retry_at;
                    self.inner.schedule.lock().expect("schedule lock").push(retry_at, obj.stored.id);
                }
            }
            _ => slot.retries.store(0, Ordering::Relaxed),
        }
        let record = 'record: { match result {
            Ok((decision, prev, inputs)) => {
                let id = obj.stored.id;
                // In direct mode Swell is also the HPA: after activation (0 → max(min, 1)),
                // take the next step from the metric at once instead of a polling interval later.
                if decision.rule == decide::Rule::Activate && self.direct(&obj.stored) {
                    let again = Instant::now();
                    *slot.next_due.lock().expect("due lock") = again;
                    self.inner.schedule.lock().expect("schedule lock").push(again, id);
                    self.inner.wake.notify_one();
                }
                let opts = &self.inner.opts;
                let sample_due = obj.last_sampled.is_none_or(|t| now - t >= opts.sample_every);
                let samples: Vec<NewSample> = if sample_due {
                    obj.last_sampled = Some(now);
                    inputs
                        .iter()
                        .filter_map(|t| t.reading.as_ref().ok())
                        .flat_map(|(values, _)| values.iter())
                        .map(|v| NewSample { scaled_object_id: id, metric: v.name.clone(), at: now, value: v.value })
                        .collect()
                } else {
                    Vec::new()
                };
                // Every change is logged; an unchanged decision only as a heartbeat.
                let changed = obj.last_recorded.is_none_or(|(at, replicas, rule, phase)| {
                    replicas != decision.replicas
                        || prev != decision.replicas
                        || rule != decision.rule
                        || phase != decision.state.phase
                        || now - at >= opts.decision_heartbeat
                }) || obj.last_anomaly.is_some() != obj.recorded_anomaly;
                let state = obj.state_to_persist(&decision.state, prev).map(|want| {
                    obj.persisted = want.clone();
                    if let Some(v) = self.inner.views.write().expect("views lock").get_mut(&id) {
                        v.last_active = want.last_active;
                        v.original_replicas = want.original_replicas;
                    }
                    (id, want)
                });
                if !changed {
                    obj.state = decision.state;
                    break 'record (!samples.is_empty() || state.is_some()).then_some(Record { decision: None, samples, state });
                }
                obj.last_recorded = Some((now, decision.replicas, decision.rule, decision.state.phase));
                obj.recorded_anomaly = obj.last_anomaly.is_some();
                let record = NewDecision {
                    scaled_object_id: id,
                    at: now,
                    state: decision.state.phase.as_str().into(),
                    rule: decision.rule.as_str().into(),
                    prev_replicas: prev,
                    new_replicas: decision.replicas,
                    explanation: decision.explanation.clone(),
                    inputs: serde_json::json!({
                        "triggers": inputs
                            .iter()
                            .map(|t| match &t.reading {
                                Ok((values, active)) => serde_json::json!({
                                    "metric": t.spec.name, "target": t.spec.target,
                                    "values": values.iter().map(|v| v.value).collect::<Vec<_>>(), "active": active,
                                }),
                                Err(e) => serde_json::json!({"metric": t.spec.name, "error": e}),
                            })
                            .collect::<Vec<_>>(),
                        // forecast, quantile, model version and whether it changed the answer
                        "forecast": obj.last_forecast,
                        "anomaly": obj.last_anomaly,
                    }),
                };
                obj.state = decision.state;
                Some(Record { decision: Some(record), samples, state })
            }
            Err(Error::Standby) => {
                obj.standby = true;
                if let Some(v) = self.inner.views.write().expect("views lock").get_mut(&obj.stored.id) {
                    v.phase = "Standby".into();
                    // A standby instance queries no source, not even for the metrics API.
                    v.live = Default::default();
                    v.error = None;
                }
                None
            }
            Err(e) => {
                if let Some(v) = self.inner.views.write().expect("views lock").get_mut(&obj.stored.id) {
                    v.error = Some(e.to_string());
                }
                None
            }
        } };
        let decision = record.as_ref().and_then(|r| r.decision.as_ref()).map(|d| super::DecisionView {
            at: d.at,
            state: d.state.clone(),
            rule: d.rule.clone(),
            prev_replicas: d.prev_replicas,
            new_replicas: d.new_replicas,
            explanation: d.explanation.clone(),
        });
        self.changed(obj.stored.id, decision);
        record
    }

    /// One pass as of `at` (monotonic) and `now` (wall clock), waiting for every poll it
    /// starts and writing their decisions before returning. Tests and benchmarks drive the
    /// engine with it; `spawn` runs the same dispatch without waiting.
    pub async fn tick_at(&self, at: Instant, now: DateTime<Utc>) -> Result<()> {
        let mut records = Vec::new();
        for task in self.dispatch(at, now) {
            if let Ok(Some(record)) = task.await {
                records.push(record);
            }
        }
        self.write(records).await
    }
}

