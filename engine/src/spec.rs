//! The ScaledObject spec, with KEDA's field names and defaults
//! (keda `apis/keda/v1alpha1/scaledobject_types.go`), and Swell's validation.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const DEFAULT_POLLING_INTERVAL: u32 = 30;
pub const DEFAULT_COOLDOWN_PERIOD: u32 = 300;
pub const DEFAULT_MIN_REPLICAS: i32 = 0;
pub const DEFAULT_MAX_REPLICAS: i32 = 100;

/// `swell.dev/v1alpha1` ScaledObject: KEDA's `keda.sh/v1alpha1` spec, field for field, plus
/// Swell's `actuation` mode. The same struct is stored in SQL for objects made in Swell.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "swell.dev",
    version = "v1alpha1",
    kind = "ScaledObject",
    namespaced,
    status = "crate::crd::ScaledObjectStatus",
    shortname = "so",
    category = "swell",
    doc = "Scales a Deployment, StatefulSet or any resource with a scale subresource from event sources (KEDA semantics).",
    printcolumn(name = "ScaleTargetKind", type_ = "string", json_path = ".status.scaleTargetKind"),
    printcolumn(name = "ScaleTargetName", type_ = "string", json_path = ".spec.scaleTargetRef.name"),
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.minReplicaCount"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxReplicaCount"),
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Active", type_ = "string", json_path = r#".status.conditions[?(@.type=="Active")].status"#),
    printcolumn(name = "Fallback", type_ = "string", json_path = r#".status.conditions[?(@.type=="Fallback")].status"#),
    printcolumn(name = "Paused", type_ = "string", json_path = r#".status.conditions[?(@.type=="Paused")].status"#),
    printcolumn(name = "Triggers", type_ = "string", json_path = ".status.triggersTypes"),
    printcolumn(name = "Authentications", type_ = "string", json_path = ".status.authenticationsTypes"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.desiredReplicas", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = kube::core::Rule::new("self.minReplicaCount <= self.maxReplicaCount").message("spec.minReplicaCount must not be greater than spec.maxReplicaCount"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaledObjectSpec {
    pub scale_target_ref: ScaleTargetRef,
    /// How Swell moves the target: `hpa` (default; Swell owns 0 <-> 1 and an HPA reads
    /// Swell's external metrics for 1 <-> N) or `direct` (Swell patches the scale subresource).
    #[serde(default)]
    pub actuation: Actuation,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced: Option<Advanced>,
    pub triggers: Vec<Trigger>,
    /// Swell: forecast the first trigger's metric and scale ahead of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictive: Option<crate::predict::config::PredictiveSpec>,
    /// Swell: guard decisions against a broken metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<crate::predict::config::AnomalySpec>,
}

/// Swell's actuation modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Actuation {
    #[default]
    Hpa,
    Direct,
}

impl Actuation {
    pub fn as_str(self) -> &'static str {
        match self {
            Actuation::Hpa => "hpa",
            Actuation::Direct => "direct",
        }
    }
}

/// KEDA `spec.fallback`: replicas to use once a scaler has failed more than
/// `failureThreshold` times in a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fallback {
    pub failure_threshold: i32,
    pub replicas: i32,
    #[serde(default)]
    pub behavior: FallbackBehavior,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FallbackBehavior {
    /// Always `fallback.replicas`.
    #[default]
    Static,
    /// Keep the current replicas.
    CurrentReplicas,
    /// The higher of current and `fallback.replicas`.
    CurrentReplicasIfHigher,
    /// The lower of current and `fallback.replicas`.
    CurrentReplicasIfLower,
}

/// KEDA `spec.advanced`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Advanced {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_pod_autoscaler_config: Option<HpaConfig>,
    #[serde(default)]
    pub restore_to_original_replica_count: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_modifiers: Option<ScalingModifiers>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HpaBehavior>,
}

/// `autoscaling/v2` HorizontalPodAutoscalerBehavior; unset parts take the HPA's defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaBehavior {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<ScalingPolicy>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingPolicy {
    #[serde(rename = "type")]
    pub policy_type: PolicyType,
    pub value: i32,
    pub period_seconds: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PolicyType {
    Pods,
    Percent,
}

/// KEDA `spec.advanced.scalingModifiers`: one composite metric from a formula over the
/// triggers' metrics, by trigger name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingModifiers {
    #[serde(default)]
    pub formula: String,
    #[serde(default)]
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<MetricType>,
}

/// How a metric turns into replicas (`autoscaling/v2` MetricTargetType).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MetricType {
    /// replicas = ceil(value / target)
    #[default]
    AverageValue,
    /// replicas = ceil(current × value / target)
    Value,
    /// KEDA accepts it only for its cpu and memory scalers, which read pod resources; every
    /// Swell source is an External metric, so validation refuses it with the alternatives.
    Utilization,
}

impl ScalingRules {
    /// The HPA's default scale-up rules: no stabilization; the larger of +100 % and +4 pods
    /// per 15 s.
    pub fn default_scale_up() -> Self {
        ScalingRules {
            stabilization_window_seconds: Some(0),
            select_policy: Some(SelectPolicy::Max),
            policies: Some(vec![
                ScalingPolicy { policy_type: PolicyType::Percent, value: 100, period_seconds: 15 },
                ScalingPolicy { policy_type: PolicyType::Pods, value: 4, period_seconds: 15 },
            ]),
        }
    }

    /// The HPA's default scale-down rules: 300 s stabilization; up to −100 % per 15 s.
    pub fn default_scale_down() -> Self {
        ScalingRules {
            stabilization_window_seconds: Some(300),
            select_policy: Some(SelectPolicy::Max),
            policies: Some(vec![ScalingPolicy { policy_type: PolicyType::Percent, value: 100, period_seconds: 15 }]),
        }
    }

    /// These rules with the unset parts taken from `defaults` (as the HPA fills them in).
    pub fn or_defaults(&self, defaults: ScalingRules) -> ScalingRules {
        ScalingRules {
            stabilization_window_seconds: self.stabilization_window_seconds.or(defaults.stabilization_window_seconds),
            select_policy: self.select_policy.or(defaults.select_policy),
            policies: self.policies.clone().or(defaults.policies),
        }
    }
}

impl ScaledObjectSpec {
    /// The effective HPA behaviour (scale up, scale down), defaults filled in.
    pub fn hpa_behavior(&self) -> (ScalingRules, ScalingRules) {
        let behavior = self
            .advanced
            .as_ref()
            .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|h| h.behavior.as_ref());
        let up = behavior.and_then(|b| b.scale_up.as_ref()).map_or_else(ScalingRules::default_scale_up, |r| r.or_defaults(ScalingRules::default_scale_up()));
        let down = behavior
            .and_then(|b| b.scale_down.as_ref())
            .map_or_else(ScalingRules::default_scale_down, |r| r.or_defaults(ScalingRules::default_scale_down()));
        (up, down)
    }

    /// The behaviour Swell applies itself in `direct` mode: the HPA's, except that scale-up
    /// is unlimited unless `advanced.horizontalPodAutoscalerConfig.behavior.scaleUp` says
    /// otherwise (direct mode exists to take the metric's step at once); scale-down keeps the
    /// HPA's stabilization and policies.
    pub fn direct_behavior(&self) -> (ScalingRules, ScalingRules) {
        let (up, down) = self.hpa_behavior();
        let scale_up_given = self
            .advanced
            .as_ref()
            .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
            .and_then(|h| h.behavior.as_ref())
            .is_some_and(|b| b.scale_up.is_some());
        if scale_up_given {
            (up, down)
        } else {
            (ScalingRules { stabilization_window_seconds: Some(0), select_policy: Some(SelectPolicy::Max), policies: None }, down)
        }
    }

    pub fn scaling_modifiers(&self) -> Option<&ScalingModifiers> {
        self.advanced.as_ref().and_then(|a| a.scaling_modifiers.as_ref()).filter(|m| !m.formula.trim().is_empty())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleTargetRef {
    pub name: String,
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// The container whose environment `env` credentials are read from when they name none
    /// (KEDA's default: the first container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_source_container_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Trigger {
    #[serde(rename = "type")]
    pub trigger_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<MetricType>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_cached_metrics: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<AuthenticationRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
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
        if let Some(p) = &self.predictive {
            p.validate()?;
        }
        if let Some(a) = &self.anomaly {
            a.validate(self.fallback.is_some())?;
        }
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
            if t.metric_type == Some(MetricType::Utilization) {
                return Err(Error::invalid(
                    format!("spec.triggers[{i}].metricType"),
                    format!("Utilization is only for KEDA's cpu and memory scalers; a {} trigger takes AverageValue (the default) or Value", t.trigger_type),
                ));
            }
        }
        self.validate_fallback()?;
        self.validate_behavior()?;
        self.validate_modifiers()?;
        Ok(())
    }

    fn validate_fallback(&self) -> Result<()> {
        let Some(f) = &self.fallback else { return Ok(()) };
        if f.failure_threshold < 0 {
            return Err(Error::invalid("spec.fallback.failureThreshold", "must be 0 or more"));
        }
        if f.replicas < 0 {
            return Err(Error::invalid("spec.fallback.replicas", "must be 0 or more"));
        }
        // KEDA: fallback only works with AverageValue metrics.
        let value_typed = |t: Option<MetricType>| t == Some(MetricType::Value);
        if self.scaling_modifiers().is_some_and(|m| value_typed(m.metric_type)) {
            return Err(Error::invalid("spec.advanced.scalingModifiers.metricType", "must be AverageValue when spec.fallback is set"));
        }
        if let Some(i) = self.scaling_modifiers().is_none().then(|| self.triggers.iter().position(|t| value_typed(t.metric_type))).flatten() {
            return Err(Error::invalid(format!("spec.triggers[{i}].metricType"), "must be AverageValue when spec.fallback is set"));
        }
        Ok(())
    }

    fn validate_behavior(&self) -> Result<()> {
        let (up, down) = self.hpa_behavior();
        for (name, rules) in [("scaleUp", &up), ("scaleDown", &down)] {
            let field = format!("spec.advanced.horizontalPodAutoscalerConfig.behavior.{name}");
            if let Some(w) = rules.stabilization_window_seconds {
                if !(0..=3600).contains(&w) {
                    return Err(Error::invalid(format!("{field}.stabilizationWindowSeconds"), format!("{w} is outside 0..=3600")));
                }
            }
            let policies = rules.policies.as_deref().unwrap_or_default();
            if policies.is_empty() && rules.select_policy != Some(SelectPolicy::Disabled) {
                return Err(Error::invalid(format!("{field}.policies"), "needs at least one policy (or selectPolicy: Disabled)"));
            }
            for (i, p) in policies.iter().enumerate() {
                if p.value <= 0 {
                    return Err(Error::invalid(format!("{field}.policies[{i}].value"), "must be greater than 0"));
                }
                if !(1..=1800).contains(&p.period_seconds) {
                    return Err(Error::invalid(format!("{field}.policies[{i}].periodSeconds"), format!("{} is outside 1..=1800", p.period_seconds)));
                }
            }
        }
        Ok(())
    }

    fn validate_modifiers(&self) -> Result<()> {
        let Some(m) = self.scaling_modifiers() else { return Ok(()) };
        let field = "spec.advanced.scalingModifiers";
        if parse_quantity(&m.target).is_none_or(|t| t <= 0.0) {
            return Err(Error::invalid(format!("{field}.target"), "is required with a formula and must be a number above 0"));
        }
        if let Some(a) = &m.activation_target {
            if parse_quantity(a).is_none_or(|v| v < 0.0) {
                return Err(Error::invalid(format!("{field}.activationTarget"), format!("{a:?} is not a number of 0 or more")));
            }
        }
        let tree = evalexpr::build_operator_tree::<evalexpr::DefaultNumericTypes>(&m.formula)
            .map_err(|e| Error::invalid(format!("{field}.formula"), format!("does not parse: {e}")))?;
        let names: Vec<&str> = self.triggers.iter().filter_map(|t| t.name.as_deref()).collect();
        for var in tree.iter_read_variable_identifiers() {
            if !names.contains(&var) {
                return Err(Error::invalid(
                    format!("{field}.formula"),
                    format!("uses {var:?}, which is not the name of a trigger (named triggers: {})", names.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

/// Parses a Kubernetes quantity as KEDA's metadata uses it ("5", "0.5", "500m", "2k").
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'm') => (&s[..i], 1e-3),
        (i, 'k') => (&s[..i], 1e3),
        (i, 'M') => (&s[..i], 1e6),
        (i, 'G') => (&s[..i], 1e9),
        _ => (s, 1.0),
    };
    num.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v * mult)
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
