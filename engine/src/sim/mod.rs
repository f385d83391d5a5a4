//! A simulated cluster fed by recorded traces: what `swell demo`, `swell replay` and the
//! benchmarks scale when no Kubernetes is at hand.

mod cluster;
mod trace;

pub use cluster::{Fault, SimCluster, SimDeployment, WorkloadKind, WorkloadSpec};
pub use trace::Trace;

/// The traces shipped in `engine/data/traces` (see the README there for sources).
pub fn builtin_trace(name: &str) -> Option<std::sync::Arc<Trace>> {
    let (csv, step) = match name {
        "nasa-http-1995" => (include_str!("../../data/traces/nasa-http-1995-07-03_05.csv"), 60.0),
        "mongo-01-2018" => (include_str!("../../data/traces/mongo-01-2018-04-25_27.csv"), 60.0),
        _ => return None,
    };
    Some(std::sync::Arc::new(Trace::from_csv(name, csv, step).expect("shipped traces parse")))
}

/// The simulated cluster shared by the engine's scalers and actuator.
pub type SharedSim = std::sync::Arc<std::sync::Mutex<SimCluster>>;
