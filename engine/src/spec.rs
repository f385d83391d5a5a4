//! The ScaledObject spec, with KEDA's field names and defaults
//! (keda `apis/keda/v1alpha1/scaledobject_types.go`), and Swell's validation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const DEFAULT_POLLING_INTERVAL: u32 = 30;
pub const DEFAULT_COOLDOWN_PERIOD: u32 = 300;
pub const DEFAULT_MIN_REPLICAS: i32 = 0;
pub const DEFAULT_MAX_REPLICAS: i32 = 100;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaledObjectSpec {
    pub scale_target_ref: ScaleTargetRef,
    #[serde(default = "default_polling_interval")]
    pub polling_interval: u32,
    #[serde(default = "default_cooldown_period")]
    pub cooldown_period: u32,
    #[serde(default)]
    pub initial_cooldown_period: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_replica_count: Option<i32>,
    #[serde(default = "default_min_replicas")]
    pub min_replica_count: i32,
    #[serde(default = "default_max_replicas")]
    pub max_replica_count: i32,
    pub triggers: Vec<Trigger>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleTargetRef {
    pub name: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default = "default_api_version")]
    pub api_version: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Trigger {
    #[serde(rename = "type")]
    pub trigger_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

fn default_polling_interval() -> u32 {
    DEFAULT_POLLING_INTERVAL
}
fn default_cooldown_period() -> u32 {
    DEFAULT_COOLDOWN_PERIOD
}
fn default_min_replicas() -> i32 {
    DEFAULT_MIN_REPLICAS
}
fn default_max_replicas() -> i32 {
    DEFAULT_MAX_REPLICAS
}
fn default_kind() -> String {
    "Deployment".into()
}
fn default_api_version() -> String {
    "apps/v1".into()
}

impl Trigger {
    /// The name a trigger's metric goes by: its own name, else `<type>-<index>`.
    pub fn metric_name(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("{}-{index}", self.trigger_type))
    }
}

impl ScaledObjectSpec {
    /// Checks what the schema cannot: every error names the field to fix.
    pub fn validate(&self) -> Result<()> {
        if self.scale_target_ref.name.trim().is_empty() {
            return Err(Error::invalid("spec.scaleTargetRef.name", "must name the workload to scale"));
        }
        if self.polling_interval == 0 {
            return Err(Error::invalid("spec.pollingInterval", "must be at least 1 (seconds)"));
        }
        if self.min_replica_count < 0 {
            return Err(Error::invalid("spec.minReplicaCount", "must be 0 or more"));
        }
        if self.max_replica_count < 1 {
            return Err(Error::invalid("spec.maxReplicaCount", "must be at least 1"));
        }
        if self.min_replica_count > self.max_replica_count {
            return Err(Error::invalid(
                "spec.minReplicaCount",
                format!(
                    "{} is greater than spec.maxReplicaCount {}; lower min or raise max",
                    self.min_replica_count, self.max_replica_count
                ),
            ));
        }
        if let Some(idle) = self.idle_replica_count {
            // KEDA: idleReplicaCount must be lower than minReplicaCount.
            if idle < 0 || idle >= self.min_replica_count {
                return Err(Error::invalid(
                    "spec.idleReplicaCount",
                    format!("{idle} must be 0 or more and less than spec.minReplicaCount {}", self.min_replica_count),
                ));
            }
        }
        if self.triggers.is_empty() {
            return Err(Error::invalid("spec.triggers", "needs at least one trigger"));
        }
        for (i, t) in self.triggers.iter().enumerate() {
            if t.trigger_type.trim().is_empty() {
                return Err(Error::invalid(format!("spec.triggers[{i}].type"), "must not be empty"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Result<ScaledObjectSpec> {
        let spec: ScaledObjectSpec = serde_json::from_value(json).map_err(|e| Error::invalid("spec", e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    #[test]
    fn keda_defaults_apply() {
        let s = spec(serde_json::json!({
            "scaleTargetRef": {"name": "web"},
            "triggers": [{"type": "cron", "metadata": {}}]
        }))
        .unwrap();
        assert_eq!(s.polling_interval, 30);
        assert_eq!(s.cooldown_period, 300);
        assert_eq!(s.min_replica_count, 0);
        assert_eq!(s.max_replica_count, 100);
        assert_eq!(s.scale_target_ref.kind, "Deployment");
        assert_eq!(s.scale_target_ref.api_version, "apps/v1");
    }

    #[test]
    fn bad_specs_name_the_field() {
        let cases = [
            (serde_json::json!({"scaleTargetRef": {"name": "w"}, "minReplicaCount": 5, "maxReplicaCount": 2, "triggers": [{"type": "x"}]}), "spec.minReplicaCount"),
            (serde_json::json!({"scaleTargetRef": {"name": ""}, "triggers": [{"type": "x"}]}), "spec.scaleTargetRef.name"),
            (serde_json::json!({"scaleTargetRef": {"name": "w"}, "triggers": []}), "spec.triggers"),
            (serde_json::json!({"scaleTargetRef": {"name": "w"}, "pollingInterval": 0, "triggers": [{"type": "x"}]}), "spec.pollingInterval"),
            (serde_json::json!({"scaleTargetRef": {"name": "w"}, "minReplicaCount": 2, "idleReplicaCount": 2, "triggers": [{"type": "x"}]}), "spec.idleReplicaCount"),
            (serde_json::json!({"scaleTargetRef": {"name": "w"}, "triggers": [{"type": ""}]}), "spec.triggers[0].type"),
            (serde_json::json!({"scaleTargetRef": {"name": "w"}, "minReplicas": 1, "triggers": [{"type": "x"}]}), "minReplicas"),
        ];
        for (json, field) in cases {
            let err = spec(json.clone()).unwrap_err().to_string();
            assert!(err.contains(field), "{json}: error {err:?} does not name {field}");
        }
    }
}
