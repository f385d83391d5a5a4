//! The engine handle and its scaling loop: poll scalers, decide, actuate, record.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore, mpsc, watch};

use crate::actuate::{ClusterHandle, KubeCluster, external_metric_name};
use crate::decide::{self, Decision, Inputs, OverrideInput, Phase, TriggerInput};
use crate::metrics::{Metrics, ObjectLabels, RuleLabels, ScalerLabels};
use crate::scalers::{self, Scaler, ScalerContext};
use crate::sim::SharedSim;
use crate::scheduler::{Schedule, next_due};
use crate::store::{self, NewDecision, NewSample, StoredObject};
use crate::spec::{Actuation, ScaledObjectSpec};
use crate::{Error, Result};


/// How many polls may run at once; the rest wait for a permit.
const MAX_CONCURRENT_POLLS: usize = 512;
/// The writer flushes decisions at least this often, and sooner when this many are queued.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const FLUSH_ROWS: usize = 5_000;
/// Records waiting for the writer before new ones are dropped.
const WRITE_QUEUE: usize = 200_000;
/// The loop sleeps at least this long between dispatches.
const COALESCE: Duration = Duration::from_millis(2);

/// A sanity bound on manual replica overrides.
pub const MAX_OVERRIDE_REPLICAS: i32 = 10_000;

#[derive(Clone)]
pub struct EngineOptions {
    /// The longest the loop sleeps; it otherwise wakes exactly when the next poll is due.
    pub tick: Duration,
    /// The simulated cluster, when there is one (`swell demo`).
    pub sim: Option<SharedSim>,
    /// Decisions and samples older than this are deleted.
    pub retention: chrono::Duration,
    /// How long one scaler may take before its poll counts as failed.
    pub scaler_timeout: Duration,
    /// An unchanged decision (same replicas, rule and state) is logged at most this often;
    /// every change is logged. Zero logs every decision.
    pub decision_heartbeat: chrono::Duration,
    /// Metric samples are kept at most this often per object (history for forecasts).
    pub sample_every: chrono::Duration,
    /// Opens trigger authentications stored in SQL (objects made in Swell).
    pub sealer: Option<Arc<crate::crypto::Sealer>>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            tick: Duration::from_secs(1),
            sim: None,
            retention: chrono::Duration::days(7),
            scaler_timeout: Duration::from_secs(5),
            decision_heartbeat: chrono::Duration::seconds(60),
            sealer: None,
            sample_every: chrono::Duration::seconds(15),
        }
    }
}

/// What the dashboard shows of one ScaledObject.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectView {
    pub id: i32,
    pub tenant: String,
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub target: String,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub current_replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub desired_replicas: Option<i32>,
    pub phase: String,
    pub metrics: Vec<(String, f64)>,
    pub last_decision: Option<String>,
    pub last_decision_at: Option<DateTime<Utc>>,
    /// Why the object cannot be scaled, when it cannot (bad spec, unknown cluster…).
    pub error: Option<String>,
    /// The manual override in force, described.
    pub override_: Option<String>,
}

impl ObjectView {
    /// The view of an object that has not been polled yet.
    fn of(stored: &StoredObject) -> Self {
        ObjectView {
            id: stored.id,
            tenant: stored.tenant.clone(),
            cluster: stored.cluster.clone(),
            namespace: stored.namespace.clone(),
            name: stored.name.clone(),
            target: format!("{}/{}", stored.spec.scale_target_ref.kind, stored.spec.scale_target_ref.name),
            min_replicas: stored.spec.min_replica_count,
            max_replicas: stored.spec.max_replica_count,
            current_replicas: None,
            ready_replicas: None,
            desired_replicas: None,
            phase: Phase::Idle.as_str().into(),
            metrics: Vec::new(),
            last_decision: None,
            last_decision_at: None,
            error: None,
            override_: None,
        }
    }
}

/// One recorded decision, as the dashboard shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DecisionView {
    pub at: DateTime<Utc>,
    pub state: String,
    pub rule: String,
    pub prev_replicas: i32,
    pub new_replicas: i32,
    pub explanation: String,
}

struct ObjectRuntime {
    stored: StoredObject,
    scalers: Vec<Box<dyn Scaler>>,
    state: decide::State,
    override_: Option<ActiveOverride>,
    /// What was last written to the decision log, to skip unchanged repeats.
    last_recorded: Option<(DateTime<Utc>, i32, decide::Rule, Phase)>,
    last_sampled: Option<DateTime<Utc>>,
    extras: ObjectExtras,
    /// In `hpa` mode: whether Swell's HPA is in place for the current spec.
    hpa_applied: bool,
}

/// What a ScaledObject synced from a cluster carries beyond its spec.
#[derive(Clone, Default)]
pub struct ObjectExtras {
    /// KEDA's pause annotations.
    pub pause: decide::Pause,
    /// The CRD object, as owner of the HPA Swell creates for it.
    pub owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
    /// Per trigger, the parameters its `authenticationRef` resolved to (secret values: kept
    /// in memory only, merged into the trigger's metadata when its scaler is built).
    pub auth_params: Vec<BTreeMap<String, String>>,
}

/// Never print resolved secrets.
impl std::fmt::Debug for ObjectExtras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectExtras")
            .field("pause", &self.pause)
            .field("owner", &self.owner.as_ref().map(|o| &o.name))
            .field("auth_params", &self.auth_params.iter().map(|p| p.keys().collect::<Vec<_>>()).collect::<Vec<_>>())
            .finish()
    }
}

impl ObjectRuntime {
    fn new(stored: StoredObject, scalers: Vec<Box<dyn Scaler>>, override_: Option<ActiveOverride>, now: DateTime<Utc>) -> Self {
        ObjectRuntime {
            stored,
            scalers,
            state: decide::State::new(now),
            override_,
            last_recorded: None,
            last_sampled: None,
            extras: ObjectExtras::default(),
            hpa_applied: false,
        }
    }
}

/// One object in the engine: its runtime behind its own lock (so its polls never overlap)
/// and its polling interval readable without that lock (for the scheduler).
struct Slot {
    polling_secs: AtomicU32,
    /// The one live schedule entry of this object; heap entries with another time are stale.
    next_due: std::sync::Mutex<Instant>,
    /// Consecutive failed actuations, for the retry backoff.
    retries: AtomicU32,
    runtime: Arc<Mutex<ObjectRuntime>>,
    /// Tasks that poll the object at once when one of its push scalers fires.
    push_tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        for t in self.push_tasks.get_mut().expect("push tasks lock").drain(..) {
            t.abort();
        }
    }
}

impl Slot {
    fn new(runtime: ObjectRuntime, due: Instant) -> Self {
        Slot {
            polling_secs: AtomicU32::new(runtime.stored.spec.polling_interval),
            next_due: std::sync::Mutex::new(due),
            retries: AtomicU32::new(0),
            runtime: Arc::new(Mutex::new(runtime)),
            push_tasks: std::sync::Mutex::new(Vec::new()),
        }
    }
}

/// Where in its first polling interval an object's polls fall: spread by id so that objects
/// loaded together do not all poll in the same millisecond.
fn phase(id: i32, polling_secs: u32) -> Duration {
    let span = polling_secs.max(1) as u64 * 1000;
    Duration::from_millis((id as u64).wrapping_mul(2_654_435_761) % span)
}

/// Delay before retrying a failed actuation: exponential from 100 ms with jitter, never
/// later than the next regular poll.
fn retry_delay(attempt: u32, polling: Duration) -> Duration {
    crate::backoff(attempt, Duration::from_millis(100), polling)
}

/// What one poll produced, for the batched writer.
struct Record {
    decision: Option<NewDecision>,
    samples: Vec<NewSample>,
}

/// A manual override: fixed replicas or a pause, until cleared or expired.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveOverride {
    pub input: OverrideInput,
    pub reason: String,
    pub by: String,
    pub expires_at: Option<DateTime<Utc>>,
}

impl ActiveOverride {
    fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }

    fn describe(&self) -> String {
        let what = match self.input {
            OverrideInput::Replicas(n) => format!("replicas fixed at {n}"),
            OverrideInput::Pause => "paused".to_string(),
        };
        let until = self.expires_at.map(|e| format!(" until {}", e.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default();
        format!("{what} by {}{until}: {}", self.by, self.reason)
    }

    fn from_row(row: &crate::store::entities::overrides::Model) -> Option<Self> {
        let input = match (row.kind.as_str(), row.replicas) {
            ("replicas", Some(n)) => OverrideInput::Replicas(n),
            ("pause", _) => OverrideInput::Pause,
            _ => return None,
        };
        Some(ActiveOverride { input, reason: row.reason.clone(), by: row.created_by.clone(), expires_at: row.expires_at })
    }
}

struct Inner {
    db: DatabaseConnection,
    opts: EngineOptions,
    ctx: ScalerContext,
    objects: RwLock<HashMap<i32, Arc<Slot>>>,
    schedule: std::sync::Mutex<Schedule>,
    permits: Arc<Semaphore>,
    /// Wakes the loop when an object is added with a poll due now.
    wake: tokio::sync::Notify,
    views: RwLock<BTreeMap<i32, ObjectView>>,
    metrics: Metrics,
    started: Instant,
    /// Real clusters by name (the simulated one comes from the options).
    clusters: RwLock<HashMap<String, ClusterHandle>>,
}

/// The engine: a cheap handle every surface (pages, API, CLI, loop) shares.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Loads every ScaledObject from SQL and builds its scalers. An object that cannot be
    /// built is kept, with its error shown, so one bad spec does not stop the rest.
    pub async fn new(db: DatabaseConnection, opts: EngineOptions) -> Result<Engine> {
        crate::init_tls();
        let ctx = ScalerContext::new(opts.sim.clone());
        let now = Utc::now();
        let started = Instant::now();
        let mut objects = HashMap::new();
        let mut schedule = Schedule::default();
        let mut views = BTreeMap::new();
        let overrides: BTreeMap<i32, ActiveOverride> = store::active_overrides(&db, now)
            .await?
            .iter()
            .filter_map(|row| Some((row.scaled_object_id, ActiveOverride::from_row(row)?)))
            .collect();
        for stored in store::load_objects(&db).await? {
            let mut view = ObjectView::of(&stored);
            let override_ = overrides.get(&stored.id).cloned();
            view.override_ = override_.as_ref().map(ActiveOverride::describe);
            let auth = if stored.origin == "cluster" {
                Ok(Vec::new())
            } else {
                resolve_sql_auth(&db, opts.sealer.as_deref(), &stored.tenant, &stored.namespace, &stored.spec).await
            };
            match auth.and_then(|auth| build_scalers(&stored, &ctx, &auth)) {
                Ok(scalers) => {
                    let due = started + phase(stored.id, stored.spec.polling_interval);
                    schedule.push(due, stored.id);
                    let runtime = ObjectRuntime::new(stored, scalers, override_, now);
                    objects.insert(view.id, Arc::new(Slot::new(runtime, due)));
                }
                Err(e) => {
                    tracing::warn!(object = %view.name, error = %e, "scaled object cannot run");
                    view.error = Some(e.to_string());
                }
            }
            views.insert(view.id, view);
        }
        let engine = Engine {
            inner: Arc::new(Inner {
                db,
                opts,
                ctx,
                objects: RwLock::new(objects),
                schedule: std::sync::Mutex::new(schedule),
                permits: Arc::new(Semaphore::new(MAX_CONCURRENT_POLLS)),
                wake: tokio::sync::Notify::new(),
                views: RwLock::new(views),
                metrics: Metrics::default(),
                started,
                clusters: RwLock::new(HashMap::new()),
            }),
        };
        let slots: Vec<(i32, Arc<Slot>)> = engine.inner.objects.read().expect("objects lock").iter().map(|(id, s)| (*id, s.clone())).collect();
        for (id, slot) in slots {
            let tasks = engine.watch_pushes(id, &slot.runtime.lock().await.scalers);
            *slot.push_tasks.lock().expect("push tasks lock") = tasks;
        }
        Ok(engine)
    }

    /// Whether Swell itself moves this object 1 ↔ N (direct mode, or the simulated cluster).
    fn direct(&self, obj: &StoredObject) -> bool {
        obj.spec.actuation == Actuation::Direct || obj.cluster_kind == "simulated"
    }

    /// One task per push scaler of an object: on every push, poll the object now.
    fn watch_pushes(&self, id: i32, scalers: &[Box<dyn Scaler>]) -> Vec<tokio::task::JoinHandle<()>> {
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
    pub fn poll_now(&self, id: i32) {
        let slot = self.inner.objects.read().expect("objects lock").get(&id).cloned();
        if let Some(slot) = slot {
            let now = Instant::now();
            *slot.next_due.lock().expect("due lock") = now;
            self.inner.schedule.lock().expect("schedule lock").push(now, id);
            self.inner.wake.notify_one();
        }
    }

    /// Applies a pushed value (webhook) and wakes the objects that read it.
    pub fn push(&self, tenant: &str, source: &str, update: crate::push::PushUpdate) -> f64 {
        self.inner.ctx.push.push(tenant, source, update)
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// What scalers share (HTTP pool, simulated cluster), for loops outside the engine's own.
    pub fn scaler_context(&self) -> ScalerContext {
        self.inner.ctx.clone()
    }

    pub fn scaler_timeout(&self) -> Duration {
        self.inner.opts.scaler_timeout
    }

    /// Tenants that own at least one object, sorted.
    pub fn tenants(&self) -> Vec<String> {
        let views = self.inner.views.read().expect("views lock");
        let mut t: Vec<String> = views.values().map(|v| v.tenant.clone()).collect();
        t.sort();
        t.dedup();
        t
    }

    /// The tenant's ScaledObjects as of the last pass of the loop.
    pub fn overview(&self, tenant: &str) -> Vec<ObjectView> {
        let views = self.inner.views.read().expect("views lock");
        views.values().filter(|v| v.tenant == tenant).cloned().collect()
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
                }
            }
            while in_flight.join_next().await.is_some() {}
            drop(tx);
            let _ = writer.await;
            tracing::info!("scaling loop stopped");
        })
    }

    /// Writes records in batches: every FLUSH_EVERY, or as soon as FLUSH_ROWS are queued,
    /// and whatever is left when the channel closes.
    async fn write_records(self, mut rx: mpsc::Receiver<Record>) {
        let mut buf = Vec::new();
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (open, due) = tokio::select! {
                n = rx.recv_many(&mut buf, FLUSH_ROWS) => (n > 0, buf.len() >= FLUSH_ROWS),
                _ = flush.tick() => (true, true),
            };
            if (due || !open) && !buf.is_empty() {
                let records = std::mem::take(&mut buf);
                if let Err(e) = self.write(records).await {
                    tracing::error!(error = %e, "writing decisions failed");
                }
            }
            if !open {
                break;
            }
        }
    }

    async fn write(&self, records: Vec<Record>) -> Result<()> {
        let mut decisions = Vec::with_capacity(records.len());
        let mut samples = Vec::new();
        for r in records {
            decisions.extend(r.decision);
            samples.extend(r.samples);
        }
        store::write_batch(&self.inner.db, &decisions, &samples).await?;
        self.inner.metrics.rows_written.inc_by((decisions.len() + samples.len()) as u64);
        Ok(())
    }

    /// The instant the engine started; the simulated cluster's time counts from it.
    pub fn started(&self) -> Instant {
        self.inner.started
    }

    /// Starts a poll task for every object due at `at` (monotonic); `now` is the wall
    /// clock the decisions carry. An object still busy with its previous poll is skipped
    /// (and counted), so polls of one object never overlap.
    fn dispatch(&self, at: Instant, now: DateTime<Utc>) -> Vec<tokio::task::JoinHandle<Option<Record>>> {
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
    async fn poll(self, slot: Arc<Slot>, mut obj: OwnedMutexGuard<ObjectRuntime>, due: Instant, now: DateTime<Utc>) -> Option<Record> {
        let _permit = self.inner.permits.clone().acquire_owned().await.ok()?;
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
        match result {
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
                });
                if !changed {
                    obj.state = decision.state;
                    return (!samples.is_empty()).then_some(Record { decision: None, samples });
                }
                obj.last_recorded = Some((now, decision.replicas, decision.rule, decision.state.phase));
                let record = NewDecision {
                    scaled_object_id: id,
                    at: now,
                    state: decision.state.phase.as_str().into(),
                    rule: decision.rule.as_str().into(),
                    prev_replicas: prev,
                    new_replicas: decision.replicas,
                    explanation: decision.explanation.clone(),
                    inputs: serde_json::json!(inputs
                        .iter()
                        .map(|t| match &t.reading {
                            Ok((values, active)) => serde_json::json!({
                                "metric": t.spec.name, "target": t.spec.target,
                                "values": values.iter().map(|v| v.value).collect::<Vec<_>>(), "active": active,
                            }),
                            Err(e) => serde_json::json!({"metric": t.spec.name, "error": e}),
                        })
                        .collect::<Vec<_>>()),
                };
                obj.state = decision.state;
                Some(Record { decision: Some(record), samples })
            }
            Err(Error::Standby) => {
                if let Some(v) = self.inner.views.write().expect("views lock").get_mut(&obj.stored.id) {
                    v.phase = "Standby".into();
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
        }
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

    /// Poll → decide → actuate for one object. Returns the decision, the replicas before it
    /// and the trigger inputs it saw.
    async fn step(&self, obj: &mut ObjectRuntime, now: DateTime<Utc>) -> Result<(Decision, i32, Vec<TriggerInput>)> {
        let labels = |metric: &str| ScalerLabels {
            namespace: obj.stored.namespace.clone(),
            scaled_object: obj.stored.name.clone(),
            scaler: "".into(),
            metric: metric.into(),
        };
        let cluster = self.cluster_of(&obj.stored)?;
        if let ClusterHandle::Kube(k) = &cluster {
            if !k.fence().holds() {
                // Not the leader: no scaler queries, no writes; the leader does both.
                return Err(Error::Standby);
            }
        }
        let mut inputs = Vec::with_capacity(obj.scalers.len());
        for (i, scaler) in obj.scalers.iter().enumerate() {
            let timeout = self.inner.opts.scaler_timeout;
            let query_started = Instant::now();
            let result = tokio::time::timeout(timeout, scaler.metrics_and_activity()).await;
            let query_secs = query_started.elapsed().as_secs_f64();
            let reading = match result {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
            };
            // After the query: some scalers learn their target from the source (external).
            let spec = scaler.metric_spec();
            let mut l = labels(&spec.name);
            l.scaler = obj.stored.spec.triggers[i].trigger_type.clone();
            self.inner.metrics.scaler_latency.get_or_create(&l).set(query_secs);
            match &reading {
                Ok((values, active)) => {
                    for v in values {
                        self.inner.metrics.scaler_metrics_value.get_or_create(&l).set(v.value);
                    }
                    self.inner.metrics.scaler_active.get_or_create(&l).set(*active as i64);
                }
                Err(_) => {
                    self.inner.metrics.scaler_errors.get_or_create(&l).inc();
                }
            }
            inputs.push(TriggerInput { spec, reading });
        }

        let object_labels = ObjectLabels { namespace: obj.stored.namespace.clone(), scaled_object: obj.stored.name.clone() };
        let count_failure = |e: Error| {
            self.inner.metrics.actuation_errors.get_or_create(&object_labels).inc();
            e
        };
        let (current, _) = self.replicas(&cluster, &obj.stored).await.map_err(count_failure)?;
        if obj.override_.as_ref().is_some_and(|o| !o.in_force(now)) {
            tracing::info!(object = %obj.stored.name, "override expired");
            obj.override_ = None;
        }
        let override_input = obj.override_.as_ref().map(|o| o.input);
        let decision = decide::decide(
            &obj.state,
            &Inputs {
                spec: &obj.stored.spec,
                triggers: &inputs,
                current_replicas: current,
                override_: override_input,
                // KEDA's pause annotations arrive with CRD sync; SQL-made objects pause by override.
                pause: obj.extras.pause,
            },
            now,
        );
        self.actuate(&cluster, obj, &decision, current).await.map_err(count_failure)?;
        self.inner.metrics.desired_replicas.get_or_create(&object_labels).set(decision.replicas as i64);
        self.inner.metrics.paused.get_or_create(&object_labels).set((decision.state.phase == Phase::Paused) as i64);
        self.inner.metrics.decisions.get_or_create(&RuleLabels { rule: decision.rule.as_str().into() }).inc();

        let (after, ready) = self.replicas(&cluster, &obj.stored).await.map_err(count_failure)?;
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
            v.last_decision = Some(decision.explanation.clone());
            v.last_decision_at = Some(now);
            v.error = inputs.iter().find_map(|t| t.reading.as_ref().err().cloned());
            v.override_ = obj.override_.as_ref().map(ActiveOverride::describe);
        }
        Ok((decision, current, inputs))
    }

    /// Fixes an object's replicas, or pauses it, until cleared or `expires_at`. Stored in SQL
    /// (so it survives a restart) with an audit entry naming `actor` and `reason`.
    pub async fn set_override(
        &self,
        tenant: &str,
        object_id: i32,
        input: OverrideInput,
        reason: &str,
        actor: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.require_object(tenant, object_id)?;
        if reason.trim().is_empty() {
            return Err(Error::invalid("reason", "is required: say why the override is needed"));
        }
        if let OverrideInput::Replicas(n) = input {
            if !(0..=MAX_OVERRIDE_REPLICAS).contains(&n) {
                return Err(Error::invalid("replicas", format!("{n} is outside 0..={MAX_OVERRIDE_REPLICAS}")));
            }
        }
        if expires_at.is_some_and(|e| e <= Utc::now()) {
            return Err(Error::invalid("expires_at", "is in the past; give a future time or none"));
        }
        let slot = self.slot(object_id)?;
        let mut obj = slot.runtime.lock().await;
        let kind = match input {
            OverrideInput::Replicas(_) => "replicas",
            OverrideInput::Pause => "pause",
        };
        let replicas = match input {
            OverrideInput::Replicas(n) => Some(n),
            OverrideInput::Pause => None,
        };
        store::set_override(&self.inner.db, object_id, kind, replicas, reason.trim(), actor, expires_at).await?;
        let active = ActiveOverride { input, reason: reason.trim().into(), by: actor.into(), expires_at };
        obj.override_ = Some(active.clone());
        if let Some(v) = self.inner.views.write().expect("views lock").get_mut(&object_id) {
            v.override_ = Some(active.describe());
        }
        Ok(())
    }

    /// Clears an object's override (resume); the next poll decides from its metrics again.
    pub async fn clear_override(&self, tenant: &str, object_id: i32, reason: &str, actor: &str) -> Result<bool> {
        self.require_object(tenant, object_id)?;
        let slot = self.slot(object_id)?;
        let mut obj = slot.runtime.lock().await;
        let cleared = store::clear_override(&self.inner.db, object_id, reason.trim(), actor).await?;
        obj.override_ = None;
        if let Some(v) = self.inner.views.write().expect("views lock").get_mut(&object_id) {
            v.override_ = None;
        }
        Ok(cleared)
    }

    fn slot(&self, object_id: i32) -> Result<Arc<Slot>> {
        let objects = self.inner.objects.read().expect("objects lock");
        objects.get(&object_id).cloned().ok_or_else(|| Error::invalid("scaled object", format!("{object_id} cannot run: see its error")))
    }

    /// Creates or replaces a ScaledObject: validated, stored in SQL, and live at once (a new
    /// pollingInterval applies from the next poll, without a restart).
    #[allow(clippy::too_many_arguments)]
    pub async fn apply(
        &self,
        tenant: &str,
        cluster: &str,
        namespace: &str,
        name: &str,
        origin: &str,
        spec: ScaledObjectSpec,
        actor: &str,
    ) -> Result<i32> {
        self.apply_with(tenant, cluster, namespace, name, origin, spec, actor, ObjectExtras::default()).await
    }

    /// [`Engine::apply`] for an object synced from a cluster, with its pause annotations
    /// and owner.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_with(
        &self,
        tenant: &str,
        cluster: &str,
        namespace: &str,
        name: &str,
        origin: &str,
        spec: ScaledObjectSpec,
        actor: &str,
        mut extras: ObjectExtras,
    ) -> Result<i32> {
        spec.validate()?;
        if origin != "cluster" && extras.auth_params.is_empty() {
            extras.auth_params = resolve_sql_auth(&self.inner.db, self.inner.opts.sealer.as_deref(), tenant, namespace, &spec).await?;
        }
        // Secret parameters fill the triggers' metadata for their scalers only; the spec
        // stored in SQL never holds them.
        let owner = StoredObject {
            id: 0,
            tenant: tenant.into(),
            cluster: cluster.into(),
            cluster_kind: String::new(),
            namespace: namespace.into(),
            name: name.into(),
            origin: origin.into(),
            spec: spec.clone(),
        };
        let scalers = build_scalers(&owner, &self.inner.ctx, &extras.auth_params)?;
        let tenant_row = store::find_tenant(&self.inner.db, tenant).await?.ok_or_else(|| Error::NotFound(format!("tenant {tenant}")))?;
        let cluster_row = store::find_cluster(&self.inner.db, cluster).await?.ok_or_else(|| Error::NotFound(format!("cluster {cluster}")))?;
        let id = store::upsert_scaled_object(&self.inner.db, tenant_row.id, cluster_row.id, namespace, name, origin, &spec).await?;
        store::audit(&self.inner.db, Some(tenant_row.id), actor, "scaled_object.apply", &format!("{namespace}/{name}"), serde_json::to_value(&spec).unwrap_or_default()).await?;
        let stored = StoredObject {
            id,
            tenant: tenant.into(),
            cluster: cluster.into(),
            cluster_kind: cluster_row.kind.clone(),
            namespace: namespace.into(),
            name: name.into(),
            origin: origin.into(),
            spec: spec.clone(),
        };
        // The view first: a poll that starts right after scheduling must find it to update.
        self.inner
            .views
            .write()
            .expect("views lock")
            .entry(id)
            .and_modify(|v| {
                v.target = format!("{}/{}", spec.scale_target_ref.kind, spec.scale_target_ref.name);
                v.min_replicas = spec.min_replica_count;
                v.max_replicas = spec.max_replica_count;
                v.error = None;
            })
            .or_insert_with(|| ObjectView::of(&stored));
        let existing = self.inner.objects.read().expect("objects lock").get(&id).cloned();
        match existing {
            Some(slot) => {
                let mut obj = slot.runtime.lock().await;
                slot.polling_secs.store(spec.polling_interval, Ordering::Relaxed);
                if obj.stored.spec != stored.spec {
                    obj.hpa_applied = false;
                }
                let tasks = self.watch_pushes(id, &scalers);
                for old in std::mem::replace(&mut *slot.push_tasks.lock().expect("push tasks lock"), tasks) {
                    old.abort();
                }
                obj.stored = stored;
                obj.scalers = scalers;
                obj.extras = extras;
            }
            None => {
                let due = Instant::now();
                let tasks = self.watch_pushes(id, &scalers);
                let mut runtime = ObjectRuntime::new(stored, scalers, None, Utc::now());
                runtime.extras = extras;
                let slot = Slot::new(runtime, due);
                *slot.push_tasks.lock().expect("push tasks lock") = tasks;
                self.inner.objects.write().expect("objects lock").insert(id, Arc::new(slot));
                self.inner.schedule.lock().expect("schedule lock").push(due, id);
                self.inner.wake.notify_one();
            }
        }
        Ok(id)
    }

    fn require_object(&self, tenant: &str, object_id: i32) -> Result<ObjectView> {
        self.object(tenant, object_id).ok_or_else(|| Error::NotFound(format!("scaled object {object_id} in tenant {tenant}")))
    }

    /// The object's newest decisions, newest first (what the loop has written so far).
    pub async fn decisions(&self, tenant: &str, object_id: i32, limit: u64) -> Result<Vec<DecisionView>> {
        self.require_object(tenant, object_id)?;
        Ok(store::recent_decisions(&self.inner.db, object_id, limit)
            .await?
            .into_iter()
            .map(|d| DecisionView {
                at: d.at,
                state: d.state,
                rule: d.rule,
                prev_replicas: d.prev_replicas,
                new_replicas: d.new_replicas,
                explanation: d.explanation,
            })
            .collect())
    }

    /// One object's view, if it exists in `tenant`.
    pub fn object(&self, tenant: &str, object_id: i32) -> Option<ObjectView> {
        let views = self.inner.views.read().expect("views lock");
        views.get(&object_id).filter(|v| v.tenant == tenant).cloned()
    }

    /// Registers a real cluster; objects whose cluster has this name are actuated through it.
    pub fn add_cluster(&self, cluster: Arc<KubeCluster>) {
        self.inner.clusters.write().expect("clusters lock").insert(cluster.name.clone(), ClusterHandle::Kube(cluster));
    }

    pub fn kube_cluster(&self, name: &str) -> Option<Arc<KubeCluster>> {
        match self.inner.clusters.read().expect("clusters lock").get(name) {
            Some(ClusterHandle::Kube(c)) => Some(c.clone()),
            _ => None,
        }
    }

    fn cluster_of(&self, obj: &StoredObject) -> Result<ClusterHandle> {
        if obj.cluster_kind == "simulated" {
            if let Some(sim) = &self.inner.opts.sim {
                return Ok(ClusterHandle::Simulated(sim.clone()));
            }
        }
        self.inner.clusters.read().expect("clusters lock").get(&obj.cluster).cloned().ok_or_else(|| Error::Actuation {
            target: format!("{}/{}", obj.cluster, obj.spec.scale_target_ref.name),
            message: format!("cluster {:?} ({}) is not connected to this instance", obj.cluster, obj.cluster_kind),
        })
    }

    /// (spec replicas, ready replicas) of the object's target.
    async fn replicas(&self, cluster: &ClusterHandle, obj: &StoredObject) -> Result<(i32, i32)> {
        match cluster {
            ClusterHandle::Simulated(sim) => {
                let sim = sim.lock().expect("sim lock");
                let d = sim
                    .deployment(&obj.spec.scale_target_ref.name)
                    .map_err(|e| Error::Actuation { target: obj.spec.scale_target_ref.name.clone(), message: e.to_string() })?;
                Ok((d.replicas(), d.ready_replicas(sim.now())))
            }
            ClusterHandle::Kube(k) => k.replicas(&obj.namespace, &obj.spec.scale_target_ref).await,
        }
    }

    async fn scale(&self, cluster: &ClusterHandle, obj: &StoredObject, replicas: i32) -> Result<()> {
        match cluster {
            ClusterHandle::Simulated(sim) => {
                let mut sim = sim.lock().expect("sim lock");
                sim.scale(&obj.spec.scale_target_ref.name, replicas)
                    .map_err(|e| Error::Actuation { target: obj.spec.scale_target_ref.name.clone(), message: e.to_string() })
            }
            ClusterHandle::Kube(k) => {
                k.scale(&obj.namespace, &obj.spec.scale_target_ref, replicas).await?;
                self.inner.metrics.scale_writes.inc();
                Ok(())
            }
        }
    }

    /// Moves the target to the decision. `direct` (and the simulated cluster): Swell sets
    /// the replicas. `hpa`: Swell owns 0 <-> max(min, 1) and keeps an HPA for the range above,
    /// except while paused or overridden, when it removes the HPA and sets replicas itself.
    async fn actuate(&self, cluster: &ClusterHandle, obj: &mut ObjectRuntime, decision: &Decision, current: i32) -> Result<()> {
        let kube = match cluster {
            ClusterHandle::Kube(k) if obj.stored.spec.actuation == Actuation::Hpa => k.clone(),
            _ => {
                if decision.replicas != current {
                    self.scale(cluster, &obj.stored, decision.replicas).await?;
                }
                return Ok(());
            }
        };
        let spec = &obj.stored.spec;
        if matches!(decision.state.phase, Phase::Paused | Phase::Overridden) {
            if obj.hpa_applied {
                kube.delete_hpa(&obj.stored.namespace, &obj.stored.name, spec).await?;
                obj.hpa_applied = false;
            }
            if decision.replicas != current {
                self.scale(cluster, &obj.stored, decision.replicas).await?;
            }
            return Ok(());
        }
        if !obj.hpa_applied {
            let metrics: Vec<_> = obj.scalers.iter().map(|s| s.metric_spec()).collect();
            kube.apply_hpa(&obj.stored.namespace, &obj.stored.name, spec, &metrics, obj.extras.owner.clone()).await?;
            obj.hpa_applied = true;
        }
        let floor = spec.min_replica_count.max(1);
        if current == 0 && decision.replicas > 0 {
            // Activation: KEDA scales to max(minReplicaCount, 1) and lets the HPA go on.
            self.scale(cluster, &obj.stored, floor).await?;
        } else if decision.replicas < floor && current != decision.replicas {
            // Deactivation after cooldown (to zero or the idle count): below the HPA's range.
            self.scale(cluster, &obj.stored, decision.replicas).await?;
        }
        Ok(())
    }

    /// The current value of an external metric for the HPA of `object` (what
    /// `external.metrics.k8s.io` serves): `metric` is `s<index>-<trigger metric>`.
    pub fn external_metric(&self, cluster: Option<&str>, namespace: &str, object: &str, metric: &str) -> Option<f64> {
        let views = self.inner.views.read().expect("views lock");
        views
            .values()
            .filter(|v| v.namespace == namespace && v.name == object && cluster.is_none_or(|c| c == v.cluster))
            .find_map(|v| v.metrics.iter().enumerate().find(|(i, (name, _))| external_metric_name(*i, name) == metric).map(|(_, (_, value))| *value))
    }

    /// Removes an object: stops polling it, deletes it and its history from SQL, and removes
    /// the HPA Swell made for it. Returns whether it existed.
    pub async fn remove(&self, tenant: &str, object_id: i32, actor: &str) -> Result<bool> {
        let Some(view) = self.object(tenant, object_id) else { return Ok(false) };
        let slot = self.inner.objects.write().expect("objects lock").remove(&object_id);
        if let Some(slot) = slot {
            // Wait for a poll in flight so nothing actuates after removal.
            let obj = slot.runtime.lock().await;
            if let Ok(ClusterHandle::Kube(k)) = self.cluster_of(&obj.stored) {
                if obj.stored.spec.actuation == Actuation::Hpa {
                    k.delete_hpa(&obj.stored.namespace, &obj.stored.name, &obj.stored.spec).await?;
                }
            }
        }
        self.inner.views.write().expect("views lock").remove(&object_id);
        store::delete_scaled_object(&self.inner.db, object_id, actor, &format!("{}/{}", view.namespace, view.name)).await?;
        Ok(true)
    }

    /// The id of an object by its place in a cluster.
    pub fn find(&self, cluster: &str, namespace: &str, name: &str) -> Option<ObjectView> {
        let views = self.inner.views.read().expect("views lock");
        views.values().find(|v| v.cluster == cluster && v.namespace == namespace && v.name == name).cloned()
    }

    /// Every object of one cluster, as of the last pass.
    pub fn cluster_objects(&self, cluster: &str) -> Vec<ObjectView> {
        let views = self.inner.views.read().expect("views lock");
        views.values().filter(|v| v.cluster == cluster).cloned().collect()
    }
}

fn build_scalers(stored: &StoredObject, ctx: &ScalerContext, auth: &[BTreeMap<String, String>]) -> Result<Vec<Box<dyn Scaler>>> {
    stored.spec.validate()?;
    let owner = scalers::Owner { tenant: &stored.tenant, namespace: &stored.namespace, name: &stored.name };
    stored
        .spec
        .triggers
        .iter()
        .enumerate()
        .map(|(i, t)| match auth.get(i).filter(|p| !p.is_empty()) {
            Some(params) => {
                let mut t = t.clone();
                t.metadata.extend(params.clone());
                scalers::build_for(&t, i, ctx, owner)
            }
            None => scalers::build_for(t, i, ctx, owner),
        })
        .collect()
}

/// For objects made in Swell: each trigger's `authenticationRef` names a trigger
/// authentication stored sealed in SQL (`swell auth add`), in the object's namespace.
async fn resolve_sql_auth(
    db: &DatabaseConnection,
    sealer: Option<&crate::crypto::Sealer>,
    tenant: &str,
    namespace: &str,
    spec: &ScaledObjectSpec,
) -> Result<Vec<BTreeMap<String, String>>> {
    let mut out = Vec::with_capacity(spec.triggers.len());
    for (i, t) in spec.triggers.iter().enumerate() {
        let Some(r) = &t.authentication_ref else {
            out.push(BTreeMap::new());
            continue;
        };
        let field = format!("spec.triggers[{i}].authenticationRef.name");
        let sealed = store::trigger_auth_sealed(db, tenant, namespace, &r.name)
            .await?
            .ok_or_else(|| Error::invalid(&field, format!("no trigger authentication {namespace}/{} in tenant {tenant} (add it with `swell auth add`)", r.name)))?;
        let sealer = sealer.ok_or_else(|| Error::invalid(&field, "needs secret_key to open stored trigger authentications"))?;
        let plain = sealer.open(&store::trigger_auth_purpose(tenant, namespace, &r.name), &sealed)?;
        let params: BTreeMap<String, String> =
            serde_json::from_slice(&plain).map_err(|_| Error::invalid(&field, format!("stored trigger authentication {namespace}/{} is damaged", r.name)))?;
        out.push(params);
    }
    Ok(out)
}
