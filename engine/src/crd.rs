//! The other `swell.dev/v1alpha1` custom resources (ScaledObject is derived on its spec in
//! [`crate::spec`]): ScaledJob, TriggerAuthentication, ClusterTriggerAuthentication, and the
//! status Swell writes back. Field names and defaults follow KEDA's
//! (`apis/keda/v1alpha1/{scaledjob,triggerauthentication}_types.go`).

use std::collections::BTreeMap;

use kube::{CustomResource, CustomResourceExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::decide::MultipleScalersCalculation;
use crate::spec::{ScaledObject, Trigger};

/// What Swell writes to a ScaledObject's status (KEDA's fields where they exist).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectStatus {
    /// `Kind/name` of the scale target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_target_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<String>,
    /// Consecutive failures per metric (KEDA `status.health`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub health: BTreeMap<String, HealthStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_replica_count: Option<i32>,
    /// The triggers' types, comma-separated (KEDA `status.triggersTypes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers_types: Option<String>,
    /// The triggers' authentication names, comma-separated (KEDA `status.authenticationsTypes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentications_types: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_metric_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa_name: Option<String>,
    /// The explanation of Swell's last decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Active, Fallback, Paused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One metric's health (KEDA `HealthStatus`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    pub number_of_failures: i32,
    /// "Happy" or "Failing".
    pub status: String,
}

/// A status condition (`metav1.Condition` shape).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

impl Condition {
    pub fn new(type_: &str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Condition {
            type_: type_.into(),
            status: if status { "True" } else { "False" }.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: None,
        }
    }
}

/// `swell.dev/v1alpha1` ScaledJob: runs Jobs from a template as events queue up.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "swell.dev",
    version = "v1alpha1",
    kind = "ScaledJob",
    namespaced,
    status = "ScaledJobStatus",
    shortname = "sj",
    category = "swell",
    doc = "Creates batch/v1 Jobs from a template as events arrive (KEDA ScaledJob semantics).",
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.minReplicaCount"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxReplicaCount"),
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Active", type_ = "string", json_path = r#".status.conditions[?(@.type=="Active")].status"#),
    printcolumn(name = "Paused", type_ = "string", json_path = r#".status.conditions[?(@.type=="Paused")].status"#),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ScaledJobSpec {
    /// A `batch/v1` JobSpec: the template of every Job Swell creates.
    #[schemars(schema_with = "preserve_unknown_object")]
    pub job_target_ref: serde_json::Value,
    #[serde(default = "thirty")]
    pub polling_interval: u32,
    #[serde(default = "hundred")]
    pub successful_jobs_history_limit: i32,
    #[serde(default = "hundred")]
    pub failed_jobs_history_limit: i32,
    #[serde(default)]
    pub min_replica_count: i32,
    #[serde(default = "hundred")]
    pub max_replica_count: i32,
    #[serde(default)]
    pub scaling_strategy: ScalingStrategy,
    pub triggers: Vec<Trigger>,
}

/// KEDA `spec.scalingStrategy` of a ScaledJob.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingStrategy {
    /// default | custom | accurate | eager
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_scaling_queue_length_deduction: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_scaling_running_job_percentage: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_pod_conditions: Vec<String>,
    #[serde(default)]
    pub multiple_scalers_calculation: MultipleScalersCalculation,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaledJobStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// KEDA TriggerAuthentication spec: where a trigger's secret parameters come from.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "swell.dev",
    version = "v1alpha1",
    kind = "TriggerAuthentication",
    namespaced,
    shortname = "ta",
    category = "swell",
    doc = "Credentials for triggers in one namespace: Secret keys, container env, pod identity."
)]
#[serde(rename_all = "camelCase")]
pub struct TriggerAuthenticationSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_target_ref: Vec<SecretTargetRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<PodIdentity>,
}

/// The same spec, cluster-scoped (its Secrets live in Swell's own namespace).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "swell.dev",
    version = "v1alpha1",
    kind = "ClusterTriggerAuthentication",
    shortname = "cta",
    category = "swell",
    doc = "Credentials for triggers in any namespace; Secrets are read from Swell's namespace."
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTriggerAuthenticationSpec {
    #[serde(flatten)]
    pub inner: TriggerAuthenticationSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretTargetRef {
    /// The trigger metadata key this value fills (e.g. `host`, `password`).
    pub parameter: String,
    /// The Secret's name.
    pub name: String,
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvRef {
    pub parameter: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodIdentity {
    /// none | aws | azure-workload | gcp
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl ScaledJobSpec {
    /// Checks what the schema cannot; every error names the field.
    pub fn validate(&self) -> crate::Result<()> {
        use crate::Error;
        if self.polling_interval == 0 {
            return Err(Error::invalid("spec.pollingInterval", "must be at least 1 (seconds)"));
        }
        if self.min_replica_count < 0 {
            return Err(Error::invalid("spec.minReplicaCount", "must be 0 or more"));
        }
        if self.max_replica_count < self.min_replica_count {
            return Err(Error::invalid(
                "spec.minReplicaCount",
                format!("{} is greater than spec.maxReplicaCount {}", self.min_replica_count, self.max_replica_count),
            ));
        }
        for (field, v) in [("spec.successfulJobsHistoryLimit", self.successful_jobs_history_limit), ("spec.failedJobsHistoryLimit", self.failed_jobs_history_limit)] {
            if v < 0 {
                return Err(Error::invalid(field, "must be 0 or more"));
            }
        }
        if !self.job_target_ref.is_object() || self.job_target_ref.get("template").is_none() {
            return Err(Error::invalid("spec.jobTargetRef.template", "is required: the pod template of the Jobs to run"));
        }
        if self.triggers.is_empty() {
            return Err(Error::invalid("spec.triggers", "needs at least one trigger"));
        }
        self.strategy()?;
        Ok(())
    }

    /// KEDA `scalingStrategy.strategy` with its parameters.
    pub fn strategy(&self) -> crate::Result<crate::decide::JobStrategy> {
        use crate::Error;
        use crate::decide::JobStrategy;
        let s = &self.scaling_strategy;
        Ok(match s.strategy.as_deref().unwrap_or("default") {
            "default" => JobStrategy::Default,
            "accurate" => JobStrategy::Accurate,
            "eager" => JobStrategy::Eager,
            // KEDA: custom without a running-job percentage is the default strategy.
            "custom" if s.custom_scaling_running_job_percentage.as_deref().is_none_or(|p| p.trim().is_empty()) => JobStrategy::Default,
            "custom" => {
                let deduction = s.custom_scaling_queue_length_deduction.unwrap_or(0);
                let raw = s.custom_scaling_running_job_percentage.as_deref().unwrap_or_default();
                let percentage = raw.trim().parse::<f64>().ok().filter(|p| p.is_finite() && *p >= 0.0).ok_or_else(|| {
                    Error::invalid("spec.scalingStrategy.customScalingRunningJobPercentage", format!("{raw:?} is not a number of 0 or more"))
                })?;
                JobStrategy::Custom { queue_length_deduction: deduction, running_job_percentage: percentage }
            }
            other => {
                return Err(Error::invalid("spec.scalingStrategy.strategy", format!("{other:?} is not one of default, custom, accurate, eager")));
            }
        })
    }
}

fn thirty() -> u32 {
    30
}
fn hundred() -> i32 {
    100
}

fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// Every CRD Swell defines, in a stable order (what `swell crdgen` writes).
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![ScaledObject::crd(), ScaledJob::crd(), TriggerAuthentication::crd(), ClusterTriggerAuthentication::crd()]
}

/// The same CRDs in KEDA's group `keda.sh`, for a cluster without KEDA installed that runs
/// Swell in compatibility mode (`swell crdgen --keda`). The spec schemas are Swell's (KEDA's
/// field names, plus Swell's own optional fields); the status is KEDA's shape, kept as
/// written; the columns are KEDA's.
pub fn keda_all() -> Vec<CustomResourceDefinition> {
    all()
        .into_iter()
        .map(|mut crd| {
            let plural = crd.spec.names.plural.clone();
            crd.metadata.name = Some(format!("{plural}.{}", crate::keda::KEDA_GROUP));
            crd.spec.group = crate::keda::KEDA_GROUP.into();
            crd.spec.names.categories = Some(vec!["keda".into()]);
            for version in &mut crd.spec.versions {
                if let Some(columns) = &mut version.additional_printer_columns {
                    columns.retain(|c| c.priority.is_none());
                }
                let status = version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()).and_then(|s| s.properties.as_mut()).and_then(|p| p.get_mut("status"));
                if let Some(status) = status {
                    *status = k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps {
                        type_: Some("object".into()),
                        x_kubernetes_preserve_unknown_fields: Some(true),
                        nullable: Some(true),
                        description: Some("KEDA's ScaledObjectStatus / ScaledJobStatus, as Swell writes it.".into()),
                        ..Default::default()
                    };
                }
            }
            crd
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_have_the_names_kubectl_users_type() {
        let crds = all();
        let names: Vec<_> = crds.iter().map(|c| (c.spec.names.kind.clone(), c.spec.names.short_names.clone().unwrap_or_default())).collect();
        assert_eq!(
            names,
            vec![
                ("ScaledObject".into(), vec!["so".to_string()]),
                ("ScaledJob".into(), vec!["sj".to_string()]),
                ("TriggerAuthentication".into(), vec!["ta".to_string()]),
                ("ClusterTriggerAuthentication".into(), vec!["cta".to_string()]),
            ]
        );
        let so = serde_json::to_value(&crds[0]).unwrap();
        let version = &so["spec"]["versions"][0];
        assert_eq!(version["subresources"]["status"], serde_json::json!({}));
        let columns: Vec<_> = version["additionalPrinterColumns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
        // KEDA's columns, in KEDA's order, then Swell's Replicas (wide output only).
        assert_eq!(
            columns,
            ["ScaleTargetKind", "ScaleTargetName", "Min", "Max", "Ready", "Active", "Fallback", "Paused", "Triggers", "Authentications", "Replicas", "Age"]
        );
        assert_eq!(version["additionalPrinterColumns"][10]["priority"], 1);
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["properties"]["pollingInterval"]["default"], 30);
        assert_eq!(spec["properties"]["cooldownPeriod"]["default"], 300);
        assert_eq!(spec["properties"]["maxReplicaCount"]["default"], 100);
        let rules = spec["x-kubernetes-validations"].to_string();
        assert!(rules.contains("self.minReplicaCount <= self.maxReplicaCount"), "{rules}");
    }

    #[test]
    fn custom_strategy_without_a_percentage_is_the_default_one_as_in_keda() {
        let spec = |strategy: serde_json::Value| -> ScaledJobSpec {
            serde_json::from_value(serde_json::json!({"jobTargetRef": {}, "triggers": [], "scalingStrategy": strategy})).unwrap()
        };
        use crate::decide::JobStrategy;
        assert_eq!(spec(serde_json::json!({"strategy": "custom", "customScalingQueueLengthDeduction": 2})).strategy().unwrap(), JobStrategy::Default);
        assert_eq!(
            spec(serde_json::json!({"strategy": "custom", "customScalingQueueLengthDeduction": 2, "customScalingRunningJobPercentage": "0.5"})).strategy().unwrap(),
            JobStrategy::Custom { queue_length_deduction: 2, running_job_percentage: 0.5 }
        );
        let err = spec(serde_json::json!({"strategy": "custom", "customScalingRunningJobPercentage": "half"})).strategy().unwrap_err().to_string();
        assert!(err.contains("customScalingRunningJobPercentage"), "{err}");
    }
}
