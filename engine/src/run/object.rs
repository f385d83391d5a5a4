//! One object inside the engine: its runtime state, what a cluster adds to its spec, and its scheduling slot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use super::ActiveOverride;
use crate::decide::{self, Phase};
use crate::scalers::Scaler;
use crate::store::StoredObject;
use crate::store::state::ObjectState;

pub(super) struct ObjectRuntime {
    pub(super) stored: StoredObject,
    pub(super) scalers: Vec<Arc<dyn Scaler>>,
    pub(super) state: decide::State,
    pub(super) override_: Option<ActiveOverride>,
    /// What was last written to the decision log, to skip unchanged repeats.
    pub(super) last_recorded: Option<(DateTime<Utc>, i32, decide::Rule, Phase)>,
    pub(super) last_sampled: Option<DateTime<Utc>>,
    pub(super) extras: ObjectExtras,
    /// In `hpa` mode: whether Swell's HPA is in place for the current spec.
    pub(super) hpa_applied: bool,
    /// The loop state as last stored in SQL (what a restart or a new leader starts from).
    pub(super) persisted: ObjectState,
    /// The last poll found this instance on standby: reload the state when it leads again.
    pub(super) standby: bool,
    /// `spec.predictive` (not off): the first trigger's history and its model.
    pub(super) predictor: Option<crate::predict::live::Predictor>,
    /// What the forecast was and did at the last poll.
    pub(super) last_forecast: Option<crate::predict::live::ForecastNote>,
    /// `spec.anomaly`: the guard of each trigger's metric.
    pub(super) anomaly: Option<crate::predict::guard::AnomalyGuard>,
    /// What the guard found at the last poll.
    pub(super) last_anomaly: Option<crate::predict::guard::AnomalyNote>,
    /// Whether the last recorded decision was made on a broken reading (a finding starts and
    /// ends a record even when the replicas stay).
    pub(super) recorded_anomaly: bool,
}

/// How stale a stored lastActiveTime may get while a source stays active: a restart then
/// waits at most this much less than cooldownPeriod (the switch to inactive is stored exactly).
const ACTIVE_REFRESH_SECS: i64 = 15;

impl ObjectRuntime {
    /// The state a restart must keep, when it differs enough from what SQL has to be written.
    pub(super) fn state_to_persist(&self, next: &decide::State, current: i32) -> Option<ObjectState> {
        let want = ObjectState {
            last_active: next.last_active,
            health: next.failures.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (k.clone(), *n)).collect(),
            original_replicas: self.persisted.original_replicas.or(Some(current)),
            first_seen: Some(self.persisted.first_seen.unwrap_or(next.since)),
        };
        let active_moved = match (self.persisted.last_active, want.last_active) {
            (None, Some(_)) => true,
            // Leaving Active: store the exact last active time; while active, now and then.
            (Some(a), Some(b)) => b != a && (next.phase != Phase::Active || (b - a).num_seconds() >= ACTIVE_REFRESH_SECS),
            _ => false,
        };
        let changed = active_moved
            || want.health != self.persisted.health
            || want.original_replicas != self.persisted.original_replicas
            || want.first_seen != self.persisted.first_seen;
        changed.then_some(want)
    }

    /// Takes up a stored state (start-up, a new leader, an object seen again).
    pub(super) fn restore(&mut self, stored: ObjectState) {
        self.state.last_active = stored.last_active.or(self.state.last_active);
        self.state.failures = stored.health.clone();
        if let Some(t) = stored.first_seen {
            self.state.since = t;
        }
        self.persisted = stored;
    }
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
    /// `status.lastActiveTime` of the CRD, for an object Swell has no stored state for.
    pub last_active: Option<DateTime<Utc>>,
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
    pub(super) fn new(stored: StoredObject, scalers: Vec<Arc<dyn Scaler>>, override_: Option<ActiveOverride>, now: DateTime<Utc>, db: &sea_orm::DatabaseConnection) -> Self {
        ObjectRuntime {
            scalers,
            state: decide::State::new(now),
            override_,
            last_recorded: None,
            last_sampled: None,
            extras: ObjectExtras::default(),
            hpa_applied: false,
            persisted: ObjectState::default(),
            standby: false,
            predictor: predictor_for(&stored, db),
            last_forecast: None,
            anomaly: stored.spec.anomaly.clone().map(crate::predict::guard::AnomalyGuard::new),
            last_anomaly: None,
            recorded_anomaly: false,
            stored,
        }
    }
}

/// A predictor when the spec asks for one, starting from what SQL has for the object.
pub(super) fn predictor_for(stored: &StoredObject, db: &sea_orm::DatabaseConnection) -> Option<crate::predict::live::Predictor> {
    let p = stored.spec.predictive.clone().filter(|p| p.mode != crate::predict::config::PredictiveMode::Off)?;
    let sink = crate::predict::live::ModelSink { db: db.clone(), object_id: stored.id };
    Some(crate::predict::live::Predictor::new(p, stored.spec.polling_interval, Some(sink)))
}

/// One object in the engine: its runtime behind its own lock (so its polls never overlap)
/// and its polling interval readable without that lock (for the scheduler).
pub(super) struct Slot {
    pub(super) polling_secs: AtomicU32,
    /// The one live schedule entry of this object; heap entries with another time are stale.
    pub(super) next_due: std::sync::Mutex<Instant>,
    /// Consecutive failed actuations, for the retry backoff.
    pub(super) retries: AtomicU32,
    pub(super) runtime: Arc<Mutex<ObjectRuntime>>,
    /// Tasks that poll the object at once when one of its push scalers fires.
    pub(super) push_tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Set when the object is being deleted: no poll starts (or actuates) from then on.
    pub(super) stopped: std::sync::atomic::AtomicBool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        for t in self.push_tasks.get_mut().expect("push tasks lock").drain(..) {
            t.abort();
        }
    }
}

impl Slot {
    pub(super) fn new(runtime: ObjectRuntime, due: Instant) -> Self {
        Slot {
            polling_secs: AtomicU32::new(runtime.stored.spec.polling_interval),
            next_due: std::sync::Mutex::new(due),
            retries: AtomicU32::new(0),
            runtime: Arc::new(Mutex::new(runtime)),
            push_tasks: std::sync::Mutex::new(Vec::new()),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// Where in its first polling interval an object's polls fall: spread by id so that objects
/// loaded together do not all poll in the same millisecond.
pub(super) fn phase(id: i32, polling_secs: u32) -> Duration {
    let span = polling_secs.max(1) as u64 * 1000;
    Duration::from_millis((id as u64).wrapping_mul(2_654_435_761) % span)
}
