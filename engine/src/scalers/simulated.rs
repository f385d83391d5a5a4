//! `simulated`: reads a workload of the simulated cluster (offered rate or queue backlog).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{MetricSpec, MetricValue, Scaler, ScalerContext, number, required};
use crate::sim::SharedSim;
use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct SimulatedMetadata {
    /// Name of the workload in the simulated cluster.
    pub workload: String,
    /// Value one replica should handle.
    pub target: f64,
    /// Active above this value (default 0).
    pub activation_target: f64,
    /// Simulated query latency in milliseconds (default 0): a slow broker, for tests,
    /// benchmarks and demos of timeouts.
    pub latency_ms: u64,
}

impl SimulatedMetadata {
    pub fn parse(field: &str, metadata: &BTreeMap<String, String>) -> Result<Self> {
        let workload = required(field, metadata, "workload")?.to_string();
        let target = number(field, metadata, "target", f64::NAN)?;
        if !(target > 0.0) {
            return Err(Error::invalid(format!("{field}.metadata.target"), "is required and must be greater than 0"));
        }
        let activation_target = number(field, metadata, "activationTarget", 0.0)?;
        if activation_target < 0.0 {
            return Err(Error::invalid(format!("{field}.metadata.activationTarget"), "must be 0 or more"));
        }
        let latency_ms = number(field, metadata, "latencyMs", 0.0)?;
        if !(0.0..=600_000.0).contains(&latency_ms) {
            return Err(Error::invalid(format!("{field}.metadata.latencyMs"), "must be between 0 and 600000"));
        }
        Ok(SimulatedMetadata { workload, target, activation_target, latency_ms: latency_ms as u64 })
    }
}

pub struct SimulatedScaler {
    metadata: SimulatedMetadata,
    metric_name: String,
    sim: SharedSim,
}

impl SimulatedScaler {
    pub fn new(field: &str, metric_name: String, metadata: &BTreeMap<String, String>, ctx: &ScalerContext) -> Result<Self> {
        let metadata = SimulatedMetadata::parse(field, metadata)?;
        let sim = ctx.sim.clone().ok_or_else(|| {
            Error::invalid(format!("{field}.type"), "`simulated` triggers need the simulated cluster (swell demo)")
        })?;
        Ok(SimulatedScaler { metadata, metric_name, sim })
    }
}

#[async_trait]
impl Scaler for SimulatedScaler {
    async fn metrics_and_activity(&self) -> Result<(Vec<MetricValue>, bool)> {
        if self.metadata.latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(self.metadata.latency_ms)).await;
        }
        let value = self
            .sim
            .lock()
            .expect("sim lock")
            .workload_metric(&self.metadata.workload)
            .map_err(|e| Error::Scaler { scaler: self.metric_name.clone(), message: e.to_string() })?;
        let active = value > self.metadata.activation_target;
        Ok((vec![MetricValue { name: self.metric_name.clone(), value }], active))
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec {
            name: self.metric_name.clone(),
            target: self.metadata.target,
            activation_target: self.metadata.activation_target,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn metadata_table() {
        let good = [
            (map(&[("workload", "w"), ("target", "10")]), SimulatedMetadata { workload: "w".into(), target: 10.0, activation_target: 0.0, latency_ms: 0 }),
            (
                map(&[("workload", "w"), ("target", "2.5"), ("activationTarget", "3"), ("latencyMs", "250")]),
                SimulatedMetadata { workload: "w".into(), target: 2.5, activation_target: 3.0, latency_ms: 250 },
            ),
        ];
        for (m, want) in good {
            assert_eq!(SimulatedMetadata::parse("t", &m).unwrap(), want);
        }
        let bad = [
            (map(&[("target", "10")]), "t.metadata.workload"),
            (map(&[("workload", ""), ("target", "10")]), "t.metadata.workload"),
            (map(&[("workload", "w")]), "t.metadata.target"),
            (map(&[("workload", "w"), ("target", "ten")]), "t.metadata.target"),
            (map(&[("workload", "w"), ("target", "0")]), "t.metadata.target"),
            (map(&[("workload", "w"), ("target", "1"), ("activationTarget", "x")]), "t.metadata.activationTarget"),
            (map(&[("workload", "w"), ("target", "1"), ("activationTarget", "-1")]), "t.metadata.activationTarget"),
            (map(&[("workload", "w"), ("target", "1"), ("latencyMs", "soon")]), "t.metadata.latencyMs"),
            (map(&[("workload", "w"), ("target", "1"), ("latencyMs", "-5")]), "t.metadata.latencyMs"),
        ];
        for (m, field) in bad {
            let err = SimulatedMetadata::parse("t", &m).unwrap_err().to_string();
            assert!(err.starts_with(field), "{m:?}: {err}");
        }
    }
}
