//! Live changes: every change to an object's view is announced on a broadcast channel, so
//! the dashboard's websocket and `swell watch` push it instead of polling.

use std::sync::atomic::Ordering;

use tokio::sync::broadcast;

use super::{DecisionView, Engine};

/// How many changes a subscriber may fall behind before it is told it lagged (it then
/// reads every view again instead of the changes it missed).
pub const LIVE_BUFFER: usize = 4096;

/// One object's view changed (or the object is gone). Subscribers read the view itself from
/// the engine, so a burst of changes to one object coalesces into one read.
#[derive(Clone, Debug)]
pub struct Change {
    pub tenant: String,
    pub object_id: i32,
    /// The decision this change recorded (the same row the decision log gets).
    pub decision: Option<DecisionView>,
    pub removed: bool,
}

/// What changed, besides objects: the pages showing it read it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topic {
    /// A ScaledJob's poll (running, pending, …) or a ScaledJob gone.
    Jobs,
    /// A webhook push, or a source added or removed.
    Sources,
    /// A cluster's sync error noted or cleared.
    Clusters,
}

impl Topic {
    pub fn as_str(&self) -> &'static str {
        match self {
            Topic::Jobs => "jobs",
            Topic::Sources => "sources",
            Topic::Clusters => "clusters",
        }
    }
}

/// `topic` changed for `tenant` (`None`: for every tenant, as a cluster's state is).
#[derive(Clone, Debug)]
pub struct Touch {
    pub tenant: Option<String>,
    pub topic: Topic,
}

impl Engine {
    /// Every touch from now on (same lag rule as [`Engine::subscribe`]).
    pub fn subscribe_touches(&self) -> broadcast::Receiver<Touch> {
        self.inner.touches.subscribe()
    }

    /// Announces that `topic` changed for `tenant` (or for all).
    pub(crate) fn touched(&self, tenant: Option<&str>, topic: Topic) {
        self.inner.generation.fetch_add(1, Ordering::Release);
        let _ = self.inner.touches.send(Touch { tenant: tenant.map(str::to_string), topic });
    }

    /// How many changes have been announced so far: a page made when this was `n` still
    /// shows every view as it is while it reads `n` (any change, in any tenant, bumps it).
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Every change from now on. A receiver that falls more than [`LIVE_BUFFER`] changes
    /// behind gets `RecvError::Lagged` and should read the views afresh.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.live.subscribe()
    }

    /// Announces a change of `object_id`'s view (nobody listening is fine).
    pub(super) fn changed(&self, object_id: i32, decision: Option<DecisionView>) {
        self.inner.generation.fetch_add(1, Ordering::Release);
        let tenant = self.inner.views.read().expect("views lock").get(&object_id).map(|v| v.tenant.clone());
        if let Some(tenant) = tenant {
            let _ = self.inner.live.send(Change { tenant, object_id, decision, removed: false });
        }
    }

    /// Announces that `object_id` of `tenant` is gone.
    pub(super) fn removed(&self, tenant: &str, object_id: i32) {
        self.inner.generation.fetch_add(1, Ordering::Release);
        let _ = self.inner.live.send(Change { tenant: tenant.into(), object_id, decision: None, removed: true });
    }
}
