//! Actuation: moving a scale target to the replicas `decide` chose. One handle per cluster:
//! the simulated cluster (demo, benchmarks) or a real one through kube-rs.

mod jobs;
mod kubernetes;
mod targets;

use std::sync::{Arc, RwLock};
use std::time::Instant;

pub use jobs::{JobCounts, LABEL_SCALED_JOB};
pub use kubernetes::{HPA_PREFIX, KubeCluster, LABEL_CLUSTER, LABEL_OBJECT, external_metric_name, hpa_name, quantity};

use crate::sim::SharedSim;

/// A cluster the engine can actuate.
#[derive(Clone)]
pub enum ClusterHandle {
    Simulated(SharedSim),
    Kube(Arc<KubeCluster>),
}

/// Permission to write to clusters. Without leader election it always holds; with it, it
/// holds only until the end of the current lease term minus a safety margin, so an instance
/// that can no longer renew stops writing before another can take the lease.
#[derive(Clone, Debug)]
pub struct Fence {
    state: Arc<RwLock<FenceState>>,
}

#[derive(Clone, Copy, Debug)]
enum FenceState {
    Always,
    Until(Instant),
    Never,
}

impl Fence {
    /// No election: every write is allowed (a single instance).
    pub fn always() -> Fence {
        Fence { state: Arc::new(RwLock::new(FenceState::Always)) }
    }

    /// Elected: no write is allowed until [`Fence::hold_until`] is called.
    pub fn elected() -> Fence {
        Fence { state: Arc::new(RwLock::new(FenceState::Never)) }
    }

    pub fn holds(&self) -> bool {
        match *self.state.read().expect("fence lock") {
            FenceState::Always => true,
            FenceState::Until(t) => Instant::now() < t,
            FenceState::Never => false,
        }
    }

    /// Writes are allowed until `deadline` (the lease was renewed).
    pub fn hold_until(&self, deadline: Instant) {
        let mut s = self.state.write().expect("fence lock");
        if !matches!(*s, FenceState::Always) {
            *s = FenceState::Until(deadline);
        }
    }

    /// The lease is lost or released: stop writing now.
    pub fn revoke(&self) {
        let mut s = self.state.write().expect("fence lock");
        if !matches!(*s, FenceState::Always) {
            *s = FenceState::Never;
        }
    }
}
