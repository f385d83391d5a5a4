//! Swell's extensions of a ScaledObject's spec for prediction and anomalies (`spec.predictive`,
//! `spec.anomaly`), with their defaults and the checks that name the field and the fix.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `spec.predictive.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PredictiveMode {
    /// No forecast (the default).
    #[default]
    Off,
    /// Forecast and record what the forecast would have done, without acting on it.
    ForecastOnly,
    /// Scale ahead of the forecast: replicas = max(reactive, ceil(forecast / target)).
    On,
}

/// `spec.predictive.model`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Model {
    #[default]
    RandomForest,
    Linear,
    SeasonalNaive,
}

/// `spec.predictive`: forecast the first trigger's metric and scale before the load arrives.
/// Durations are seconds, as KEDA's `pollingInterval` and `cooldownPeriod` are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PredictiveSpec {
    #[serde(default)]
    pub mode: PredictiveMode,
    /// How far ahead to forecast; default `podStartup` + one `pollingInterval`, the time a
    /// new replica needs to be ready when the decision is taken now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<u32>,
    /// Seconds a new pod takes to be ready (default 60); sets the default horizon.
    #[serde(default = "default_pod_startup")]
    pub pod_startup: u32,
    /// History the model trains on (default 14 days).
    #[serde(default = "default_history")]
    pub history: u32,
    /// History needed before the forecast is used at all (default 1 day).
    #[serde(default = "default_min_history")]
    pub min_history: u32,
    #[serde(default)]
    pub model: Model,
    /// Plan capacity for this quantile of the forecast (default 0.9); 0.5 plans for the mean.
    #[serde(default = "default_quantile")]
    pub quantile: f64,
    /// At most this many replicas above max(current, reactive) on a forecast (default: no cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_scale_up_step: Option<i32>,
    /// When the reactive rules ask for fewer replicas but the scale-down stabilization window
    /// holds them (`direct` mode): `forecastConfirmed` (default) scales in at once if the
    /// forecast at the horizon needs no more than the lower count; `stabilized` waits as
    /// the HPA does. A forecast alone never scales in.
    #[serde(default)]
    pub scale_in: ScaleIn,
}

/// `spec.predictive.scaleIn`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ScaleIn {
    #[default]
    ForecastConfirmed,
    Stabilized,
}

fn default_pod_startup() -> u32 {
    60
}
fn default_history() -> u32 {
    14 * 86_400
}
fn default_min_history() -> u32 {
    86_400
}
fn default_quantile() -> f64 {
    0.9
}

impl PredictiveSpec {
    /// The horizon in seconds for an object polled every `polling` seconds.
    pub fn horizon_secs(&self, polling: u32) -> u32 {
        self.horizon.unwrap_or(self.pod_startup + polling)
    }

    pub fn validate(&self) -> Result<()> {
        if !(0.5..1.0).contains(&self.quantile) {
            return Err(Error::invalid("spec.predictive.quantile", format!("{} must be at least 0.5 and below 1 (0.9 plans for the 90th percentile)", self.quantile)));
        }
        if self.horizon == Some(0) {
            return Err(Error::invalid("spec.predictive.horizon", "must be at least 1 second (or leave it out: podStartup + pollingInterval)"));
        }
        if self.min_history > self.history {
            return Err(Error::invalid("spec.predictive.minHistory", format!("{} is more than spec.predictive.history {}; lower minHistory or raise history", self.min_history, self.history)));
        }
        if self.max_scale_up_step.is_some_and(|s| s < 1) {
            return Err(Error::invalid("spec.predictive.maxScaleUpStep", "must be at least 1 (or leave it out for no cap)"));
        }
        Ok(())
    }
}

/// `spec.anomaly.policy`: what a value taken for broken does to the decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AnomalyPolicy {
    /// Keep the current replicas while the metric looks broken (the default).
    #[default]
    Hold,
    /// Move at most `step` replicas per poll while it does.
    ClampStep,
    /// Use `spec.fallback.replicas`, as a failing trigger would.
    Fallback,
    /// Record the finding, decide as if nothing were wrong.
    Ignore,
}

/// `spec.anomaly`: guard the decision against a broken metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnomalySpec {
    #[serde(default)]
    pub policy: AnomalyPolicy,
    /// Isolation Forest score above which a value is broken (default 0.65).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// History needed before the forest is trained (default 1 day); the plain guards (not a
    /// number, negative, stuck, a jump) work from the first hour.
    #[serde(default = "default_min_history")]
    pub min_history: u32,
    /// Replicas per poll under `clampStep` (default 1).
    #[serde(default = "default_step")]
    pub step: i32,
    /// Seconds a metric may look broken before its value is taken as the new normal (default
    /// 600): a real surge is not held off for ever.
    #[serde(default = "default_max_hold")]
    pub max_hold: u32,
}

fn default_threshold() -> f64 {
    0.65
}
fn default_step() -> i32 {
    1
}
fn default_max_hold() -> u32 {
    600
}

impl AnomalySpec {
    pub fn validate(&self, has_fallback: bool) -> Result<()> {
        if !(0.5..1.0).contains(&self.threshold) {
            return Err(Error::invalid("spec.anomaly.threshold", format!("{} must be at least 0.5 and below 1 (scores above 0.5 are unusual)", self.threshold)));
        }
        if self.step < 1 {
            return Err(Error::invalid("spec.anomaly.step", "must be at least 1"));
        }
        if self.policy == AnomalyPolicy::Fallback && !has_fallback {
            return Err(Error::invalid("spec.anomaly.policy", "fallback needs spec.fallback (its replicas); add it or choose hold or clampStep"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bad_values_by_field() {
        let p: PredictiveSpec = serde_json::from_value(serde_json::json!({"mode": "on"})).unwrap();
        assert_eq!((p.mode, p.model, p.quantile, p.history, p.min_history, p.horizon_secs(30)), (PredictiveMode::On, Model::RandomForest, 0.9, 1_209_600, 86_400, 90));
        p.validate().unwrap();
        for (bad, field) in [
            (serde_json::json!({"quantile": 0.2}), "spec.predictive.quantile"),
            (serde_json::json!({"horizon": 0}), "spec.predictive.horizon"),
            (serde_json::json!({"history": 3600, "minHistory": 7200}), "spec.predictive.minHistory"),
            (serde_json::json!({"maxScaleUpStep": 0}), "spec.predictive.maxScaleUpStep"),
        ] {
            let p: PredictiveSpec = serde_json::from_value(bad).unwrap();
            assert!(p.validate().unwrap_err().to_string().contains(field), "{field}");
        }
        assert!(serde_json::from_value::<PredictiveSpec>(serde_json::json!({"horizn": 5})).is_err(), "unknown fields are refused");
        let a: AnomalySpec = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!((a.policy, a.threshold, a.step), (AnomalyPolicy::Hold, 0.65, 1));
        let f: AnomalySpec = serde_json::from_value(serde_json::json!({"policy": "fallback"})).unwrap();
        assert!(f.validate(false).unwrap_err().to_string().contains("spec.fallback"));
        f.validate(true).unwrap();
    }
}
