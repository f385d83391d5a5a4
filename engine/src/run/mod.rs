//! The engine handle: a thin façade over the loop's rooms (schedule, step, actuate, apply,
//! overrides, views, writer), holding what they share.

mod access;
mod actuate;
mod apply;
mod catalog;
mod history;
mod job_views;
mod live;
mod models;
mod object;
mod overrides;
mod schedule;
mod step;
mod views;
mod what_if;
mod writer;

pub use object::ObjectExtras;
pub use access::AuditView;
pub use overrides::ActiveOverride;
pub use catalog::{ClusterView, TriggerAuthView, WebhookView};
pub use job_views::JobView;
pub use what_if::{WhatIfEdits, WhatIfLoad};
pub use live::{Change, LIVE_BUFFER, Topic, Touch};
pub use views::{DecisionView, ObjectView, TriggerView};
pub use history::{HistoryView, MarkerView, SeriesView};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;

use apply::{build_scalers, resolve_sql_auth};
use object::{ObjectRuntime, Slot, phase};
use crate::actuate::{ClusterHandle, KubeCluster};
use crate::metrics::Metrics;
use crate::scalers::ScalerContext;
use crate::scheduler::Schedule;
use crate::sim::SharedSim;
use crate::spec::Actuation;
use crate::store::{self, StoredObject};
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
    /// Each ScaledJob's last poll (see `job_views`).
    jobs: RwLock<BTreeMap<(String, String, String), JobView>>,
    /// The last error syncing each cluster (see `catalog`).
    sync_errors: RwLock<HashMap<String, (chrono::DateTime<Utc>, String)>>,
    /// Announces every change of a view (see `live`).
    live: tokio::sync::broadcast::Sender<Change>,
    /// Announces changes of jobs, sources and clusters (see `live`).
    touches: tokio::sync::broadcast::Sender<Touch>,
    /// Counts every announced change (see `live`): what a cached page is checked against.
    generation: std::sync::atomic::AtomicU64,
    metrics: Metrics,
    started: Instant,
    /// Real clusters by name (the simulated one comes from the options).
    clusters: RwLock<HashMap<String, ClusterHandle>>,
    /// This instance, in the push relay (random per process).
    instance: String,
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
        let mut states = store::state::load_all(&db).await?;
        for stored in store::load_objects(&db).await? {
            let mut view = ObjectView::of(&stored);
            let override_ = overrides.get(&stored.id).cloned();
            view.override_ = override_.as_ref().map(ActiveOverride::describe);
            let auth = if stored.origin == "cluster" {
                Ok(Vec::new())
            } else {
                resolve_sql_auth(&db, opts.sealer.as_deref(), &stored.tenant, &stored.namespace, &stored.name, &stored.spec).await
            };
            match auth.and_then(|auth| build_scalers(&stored, &ctx, &auth)) {
                Ok(scalers) => {
                    let due = started + phase(stored.id, stored.spec.polling_interval);
                    schedule.push(due, stored.id);
                    let mut runtime = ObjectRuntime::new(stored, scalers, override_, now, &db);
                    // Cooldown, failures and first sight carry over a restart, as KEDA's status does.
                    if let Some(state) = states.remove(&view.id) {
                        view.last_active = state.last_active;
                        view.health = state.health.clone();
                        view.original_replicas = state.original_replicas;
                        runtime.restore(state);
                    }
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
                live: tokio::sync::broadcast::channel(LIVE_BUFFER).0,
                touches: tokio::sync::broadcast::channel(256).0,
                generation: std::sync::atomic::AtomicU64::new(0),
                sync_errors: RwLock::new(HashMap::new()),
                jobs: RwLock::new(BTreeMap::new()),
                metrics: Metrics::default(),
                started,
                clusters: RwLock::new(HashMap::new()),
                instance: format!("{:016x}", rand_id()),
            }),
        };
        let slots: Vec<(i32, Arc<Slot>)> = engine.inner.objects.read().expect("objects lock").iter().map(|(id, s)| (*id, s.clone())).collect();
        for (id, slot) in slots {
            let tasks = engine.watch_pushes(id, &slot.runtime.lock().await.scalers);
            *slot.push_tasks.lock().expect("push tasks lock") = tasks;
        }
        Ok(engine)
    }

    /// Breaks (or mends, with `None`) a simulated workload's metric: `swell demo`'s way to show
    /// the anomaly guard at work. Only on the simulated cluster.
    pub fn inject_fault(&self, workload: &str, fault: Option<crate::sim::Fault>) -> Result<()> {
        let sim = self.inner.opts.sim.as_ref().ok_or_else(|| Error::invalid("fault", "faults are injected only into the simulated cluster (swell demo)"))?;
        sim.lock().expect("sim lock").set_fault(workload, fault)
    }

    /// Whether Swell itself moves this object 1 ↔ N (direct mode, or the simulated cluster).
    pub(super) fn direct(&self, obj: &StoredObject) -> bool {
        obj.spec.actuation == Actuation::Direct || obj.cluster_kind == "simulated"
    }

    /// Applies a pushed value (webhook) and wakes the objects that read it. An instance that
    /// does not lead also relays it through SQL, so the leader's decision sees it.
    pub fn push(&self, tenant: &str, source: &str, update: crate::push::PushUpdate) -> f64 {
        if self.follower() {
            let (engine, tenant, source) = (self.clone(), tenant.to_string(), source.to_string());
            tokio::spawn(async move {
                if let Err(e) = store::relay::append(&engine.inner.db, &tenant, &source, update, &engine.inner.instance).await {
                    tracing::warn!(error = %e, "relaying a webhook push to the leader failed");
                }
            });
        }
        let value = self.inner.ctx.push.push(tenant, source, update);
        self.touched(Some(tenant), Topic::Sources);
        value
    }

    /// Whether this instance serves but does not lead: it has real clusters and holds none of
    /// their fences.
    pub(super) fn follower(&self) -> bool {
        let clusters = self.inner.clusters.read().expect("clusters lock");
        let mut kube = clusters.values().filter_map(|c| match c {
            ClusterHandle::Kube(k) => Some(k),
            _ => None,
        });
        let mut any = false;
        let holds = kube.any(|k| {
            any = true;
            k.fence().holds()
        });
        any && !holds
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

    /// The instant the engine started; the simulated cluster's time counts from it.
    pub fn started(&self) -> Instant {
        self.inner.started
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

    pub(super) fn cluster_of(&self, obj: &StoredObject) -> Result<ClusterHandle> {
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

    fn slot(&self, object_id: i32) -> Result<Arc<Slot>> {
        let objects = self.inner.objects.read().expect("objects lock");
        objects.get(&object_id).cloned().ok_or_else(|| Error::invalid("scaled object", format!("{object_id} cannot run: see its error")))
    }

    pub(super) fn require_object(&self, tenant: &str, object_id: i32) -> Result<ObjectView> {
        self.object(tenant, object_id).ok_or_else(|| Error::NotFound(format!("scaled object {object_id} in tenant {tenant}")))
    }
}

/// The metric labels of an object.
fn object_labels(obj: &StoredObject) -> crate::metrics::ObjectLabels {
    crate::metrics::ObjectLabels { cluster: obj.cluster.clone(), namespace: obj.namespace.clone(), scaled_object: obj.name.clone(), r#type: "scaledobject".into() }
}

/// The metric labels of trigger `index` of an object, whose metric is `metric`.
fn scaler_labels(obj: &StoredObject, index: usize, metric: &str) -> crate::metrics::ScalerLabels {
    crate::metrics::ScalerLabels {
        cluster: obj.cluster.clone(),
        namespace: obj.namespace.clone(),
        scaled_object: obj.name.clone(),
        r#type: "scaledobject".into(),
        scaler: obj.spec.triggers.get(index).map(|t| t.trigger_type.clone()).unwrap_or_default(),
        metric: metric.into(),
        trigger_index: index.to_string(),
    }
}

/// A random 64-bit id (for naming this instance), from the OS.
fn rand_id() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    u64::from_le_bytes(bytes) ^ std::process::id() as u64
}
