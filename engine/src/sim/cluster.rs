use std::collections::BTreeMap;
use std::sync::Arc;

use super::Trace;
use crate::{Error, Result};

/// What a workload's trace means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    /// Requests per second offered to the deployment; the metric is the offered rate.
    Rate,
    /// Messages per second arriving on a queue the deployment drains; the metric is the backlog.
    Queue,
}

#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    pub name: String,
    pub kind: WorkloadKind,
    /// Shared: many workloads may replay one trace.
    pub trace: Arc<Trace>,
    /// Multiplies the trace's values.
    pub scale: f64,
    /// Where in the trace (seconds of trace time) the replay starts.
    pub offset_secs: f64,
    /// The deployment that serves this workload.
    pub deployment: String,
}

#[derive(Clone, Debug)]
pub struct SimDeployment {
    pub name: String,
    pub startup_delay_secs: f64,
    /// Requests (or messages) one ready pod handles per second.
    pub pod_throughput: f64,
    /// Sim time at which each pod becomes ready, oldest first.
    pods: Vec<f64>,
}

impl SimDeployment {
    pub fn replicas(&self) -> i32 {
        self.pods.len() as i32
    }

    pub fn ready_replicas(&self, now: f64) -> i32 {
        self.pods.iter().filter(|ready_at| **ready_at <= now).count() as i32
    }
}

#[derive(Clone, Debug)]
struct Workload {
    spec: WorkloadSpec,
    offered: f64,
    backlog: f64,
}

/// Deployments with pods that take time to start and serve a fixed throughput, fed by traces.
/// Time is in seconds since the cluster was made; `speed` is trace seconds per cluster second.
#[derive(Clone, Debug)]
pub struct SimCluster {
    clock: f64,
    speed: f64,
    deployments: BTreeMap<String, SimDeployment>,
    workloads: BTreeMap<String, Workload>,
    /// Broken metrics injected by hand (`swell demo`'s fault route), by workload.
    faults: BTreeMap<String, Fault>,
}

/// A broken metric source, as a demo injects it: the load is unchanged, what the scaler reads is not.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "fault")]
pub enum Fault {
    /// The reading is `factor` × the real value.
    Spike { factor: f64 },
    /// The reading stays at zero.
    StuckAtZero,
    /// The reading is not a number.
    NotANumber,
}

impl SimCluster {
    pub fn new(speed: f64) -> Self {
        SimCluster { clock: 0.0, speed, deployments: BTreeMap::new(), workloads: BTreeMap::new(), faults: BTreeMap::new() }
    }

    /// Breaks (or, with `None`, mends) the metric of workload `name`.
    pub fn set_fault(&mut self, name: &str, fault: Option<Fault>) -> Result<()> {
        if !self.workloads.contains_key(name) {
            return Err(Error::NotFound(format!("workload {name} (the demo's are web-requests, catalog-queries, orders-queue)")));
        }
        match fault {
            Some(f) => self.faults.insert(name.to_string(), f),
            None => self.faults.remove(name),
        };
        Ok(())
    }

    pub fn now(&self) -> f64 {
        self.clock
    }

    pub fn add_deployment(&mut self, name: &str, replicas: i32, startup_delay_secs: f64, pod_throughput: f64) {
        let pods = vec![self.clock; replicas.max(0) as usize];
        self.deployments.insert(
            name.to_string(),
            SimDeployment { name: name.to_string(), startup_delay_secs, pod_throughput, pods },
        );
    }

    pub fn add_workload(&mut self, spec: WorkloadSpec) {
        let offered = spec.trace.value_at(spec.offset_secs) * spec.scale;
        self.workloads.insert(spec.name.clone(), Workload { spec, offered, backlog: 0.0 });
    }

    pub fn deployment(&self, name: &str) -> Result<&SimDeployment> {
        self.deployments.get(name).ok_or_else(|| Error::NotFound(format!("deployment {name}")))
    }

    /// Moves time forward to `t`, in steps of at most one second so queues drain smoothly.
    pub fn advance_to(&mut self, t: f64) {
        while self.clock < t {
            let dt = (t - self.clock).min(1.0);
            self.clock += dt;
            for w in self.workloads.values_mut() {
                let trace_t = w.spec.offset_secs + self.clock * self.speed;
                w.offered = w.spec.trace.value_at(trace_t) * w.spec.scale;
                if w.spec.kind == WorkloadKind::Queue {
                    let capacity = self
                        .deployments
                        .get(&w.spec.deployment)
                        .map(|d| d.ready_replicas(self.clock) as f64 * d.pod_throughput)
                        .unwrap_or(0.0);
                    w.backlog = (w.backlog + (w.offered - capacity) * dt).max(0.0);
                }
            }
        }
    }

    /// The metric a scaler reads: the offered rate for `Rate`, the backlog for `Queue`.
    pub fn workload_metric(&self, name: &str) -> Result<f64> {
        let w = self.workloads.get(name).ok_or_else(|| Error::NotFound(format!("workload {name}")))?;
        let real = match w.spec.kind {
            WorkloadKind::Rate => w.offered,
            WorkloadKind::Queue => w.backlog,
        };
        Ok(match self.faults.get(name) {
            None => real,
            Some(Fault::Spike { factor }) => real * factor,
            Some(Fault::StuckAtZero) => 0.0,
            Some(Fault::NotANumber) => f64::NAN,
        })
    }

    /// Sets a deployment's replicas: new pods become ready after the start-up delay; on scale
    /// in the youngest pods (not yet ready first) go.
    pub fn scale(&mut self, name: &str, replicas: i32) -> Result<()> {
        if replicas < 0 {
            return Err(Error::invalid("replicas", format!("{replicas} is negative")));
        }
        let now = self.clock;
        let d = self.deployments.get_mut(name).ok_or_else(|| Error::NotFound(format!("deployment {name}")))?;
        let want = replicas as usize;
        if want > d.pods.len() {
            let ready_at = now + d.startup_delay_secs;
            d.pods.resize(want, ready_at);
        } else {
            d.pods.truncate(want);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(v: f64) -> Trace {
        Trace { name: "flat".into(), step_secs: 60.0, values: vec![v, v] }
    }

    #[test]
    fn pods_become_ready_after_startup_delay() {
        let mut c = SimCluster::new(1.0);
        c.add_deployment("web", 1, 5.0, 10.0);
        c.scale("web", 3).unwrap();
        c.advance_to(4.0);
        assert_eq!(c.deployment("web").unwrap().ready_replicas(c.now()), 1);
        c.advance_to(5.0);
        assert_eq!(c.deployment("web").unwrap().ready_replicas(c.now()), 3);
        c.scale("web", 0).unwrap();
        assert_eq!(c.deployment("web").unwrap().replicas(), 0);
    }

    #[test]
    fn queue_grows_without_workers_and_drains_with_them() {
        let mut c = SimCluster::new(1.0);
        c.add_deployment("worker", 0, 0.0, 5.0);
        c.add_workload(WorkloadSpec {
            name: "orders".into(),
            kind: WorkloadKind::Queue,
            trace: Arc::new(flat(2.0)),
            scale: 1.0,
            offset_secs: 0.0,
            deployment: "worker".into(),
        });
        c.advance_to(10.0);
        assert!((c.workload_metric("orders").unwrap() - 20.0).abs() < 1e-9);
        c.scale("worker", 1).unwrap();
        c.advance_to(17.0);
        assert_eq!(c.workload_metric("orders").unwrap(), 0.0, "5/s drains 20 + 2/s within 7 s");
    }

    #[test]
    fn unknown_names_are_errors() {
        let mut c = SimCluster::new(1.0);
        assert!(c.scale("nope", 1).is_err());
        assert!(c.workload_metric("nope").is_err());
        c.add_deployment("web", 1, 0.0, 1.0);
        assert!(c.scale("web", -1).is_err());
    }
}
