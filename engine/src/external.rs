//! What `hpa` mode hands the HPA: one External metric per trigger (or KEDA's single
//! composite metric under `scalingModifiers`), typed as the trigger asks, and the value the
//! metrics API serves for each — KEDA's fallback value (`fallback.replicas × target`) once a
//! trigger has failed past `failureThreshold` (keda `pkg/fallback`, `pkg/provider`).

use std::collections::BTreeMap;

use crate::decide::{COMPOSITE_METRIC, TriggerInput, composite_value};
use crate::spec::{MetricType, ScaledObjectSpec, parse_quantity};

/// One metric of Swell's HPA.
#[derive(Clone, Debug, PartialEq)]
pub struct HpaMetric {
    /// The name in `external.metrics.k8s.io` (`s<index>-<metric>`, or `composite-metric`).
    pub name: String,
    pub metric_type: MetricType,
    pub target: f64,
}

/// The external metric name of trigger `index` (KEDA: `s<index>-<metric>`), lower case with
/// dashes, as metric names in the API path must be.
pub fn external_metric_name(index: usize, metric: &str) -> String {
    let clean: String = metric.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    format!("s{index}-{}", clean.trim_matches('-'))
}

/// The HPA's metrics for an object whose scalers report `metric_specs` (one per trigger).
pub fn hpa_metrics(spec: &ScaledObjectSpec, metric_specs: &[crate::scalers::MetricSpec]) -> Vec<HpaMetric> {
    if let Some(m) = spec.scaling_modifiers() {
        return vec![HpaMetric {
            name: COMPOSITE_METRIC.into(),
            metric_type: m.metric_type.unwrap_or_default(),
            target: parse_quantity(&m.target).unwrap_or(1.0),
        }];
    }
    metric_specs
        .iter()
        .enumerate()
        .map(|(i, m)| HpaMetric {
            name: external_metric_name(i, &m.name),
            metric_type: spec.triggers.get(i).and_then(|t| t.metric_type).unwrap_or_default(),
            target: m.target,
        })
        .collect()
}

/// The value of each HPA metric after a poll, by name. A trigger that failed has no value
/// (the HPA then keeps its replicas, as with KEDA's error) unless its fallback is in force:
/// then `replicas × target`, so the HPA lands on the fallback replicas (fallback requires
/// AverageValue, as KEDA's validation does). `failures` are the consecutive failures per
/// metric after this poll (decide's state); `current` is the target's replicas.
pub fn served_values(spec: &ScaledObjectSpec, triggers: &[TriggerInput], failures: &BTreeMap<String, u32>, current: i32) -> BTreeMap<String, f64> {
    let fallback = |metric: &str, target: f64| -> Option<f64> {
        let f = spec.fallback.as_ref()?;
        let n = *failures.get(metric)?;
        if n as i64 <= f.failure_threshold as i64 {
            return None;
        }
        Some(crate::decide::fallback_replicas(f, current) as f64 * target)
    };
    let mut out = BTreeMap::new();
    if let Some(m) = spec.scaling_modifiers() {
        let target = parse_quantity(&m.target).unwrap_or(1.0);
        match composite_value(spec, triggers, &m.formula) {
            Ok(v) => {
                out.insert(COMPOSITE_METRIC.to_string(), v);
            }
            Err(_) => {
                if let Some(v) = fallback(COMPOSITE_METRIC, target) {
                    out.insert(COMPOSITE_METRIC.to_string(), v);
                }
            }
        }
        return out;
    }
    for (i, t) in triggers.iter().enumerate() {
        let name = external_metric_name(i, &t.spec.name);
        match &t.reading {
            Ok((values, _)) => {
                out.insert(name, values.iter().map(|v| v.value).sum());
            }
            Err(_) => {
                if let Some(v) = fallback(&t.spec.name, t.spec.target) {
                    out.insert(name, v);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalers::{MetricSpec, MetricValue};

    fn spec(extra: serde_json::Value) -> ScaledObjectSpec {
        let mut base = serde_json::json!({"scaleTargetRef": {"name": "web"}, "triggers": [
            {"type": "metrics-api", "name": "a", "metadata": {}}, {"type": "metrics-api", "name": "b", "metadata": {}}]});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }
    fn ok(name: &str, value: f64, target: f64) -> TriggerInput {
        TriggerInput {
            spec: MetricSpec { name: name.into(), target, activation_target: 0.0 },
            reading: Ok((vec![MetricValue { name: name.into(), value }], value > 0.0)),
        }
    }
    fn failed(name: &str, target: f64) -> TriggerInput {
        TriggerInput { spec: MetricSpec { name: name.into(), target, activation_target: 0.0 }, reading: Err("connection refused".into()) }
    }

    #[test]
    fn a_failing_trigger_does_not_shift_the_others_names() {
        let s = spec(serde_json::json!({}));
        let v = served_values(&s, &[failed("first", 10.0), ok("second", 35.0, 10.0)], &BTreeMap::new(), 2);
        assert_eq!(v.get("s1-second"), Some(&35.0));
        assert!(!v.contains_key("s0-first"), "a failed trigger without fallback serves nothing");
    }

    #[test]
    fn fallback_serves_replicas_times_target_past_the_threshold() {
        let s = spec(serde_json::json!({"fallback": {"failureThreshold": 3, "replicas": 6}}));
        let t = [failed("a", 10.0), ok("b", 5.0, 10.0)];
        let at = |n: u32| served_values(&s, &t, &[("a".to_string(), n)].into(), 2);
        assert_eq!(at(3).get("s0-a"), None, "not yet: failures must exceed the threshold");
        assert_eq!(at(4).get("s0-a"), Some(&60.0));
        assert_eq!(at(4).get("s1-b"), Some(&5.0));
        let s = spec(serde_json::json!({"fallback": {"failureThreshold": 0, "replicas": 3, "behavior": "currentReplicasIfHigher"}}));
        assert_eq!(served_values(&s, &t, &[("a".to_string(), 1)].into(), 5).get("s0-a"), Some(&50.0));
    }

    #[test]
    fn scaling_modifiers_serve_one_composite_metric() {
        let s = spec(serde_json::json!({"advanced": {"scalingModifiers": {"formula": "a + b", "target": "5", "metricType": "AverageValue"}}}));
        let metrics = hpa_metrics(&s, &[MetricSpec { name: "a".into(), target: 1.0, activation_target: 0.0 }, MetricSpec { name: "b".into(), target: 1.0, activation_target: 0.0 }]);
        assert_eq!(metrics, vec![HpaMetric { name: COMPOSITE_METRIC.into(), metric_type: MetricType::AverageValue, target: 5.0 }]);
        let v = served_values(&s, &[ok("a", 3.0, 1.0), ok("b", 4.0, 1.0)], &BTreeMap::new(), 1);
        assert_eq!(v, [(COMPOSITE_METRIC.to_string(), 7.0)].into());
    }

    #[test]
    fn hpa_metrics_carry_the_triggers_metric_type() {
        let mut s = spec(serde_json::json!({}));
        s.triggers[1].metric_type = Some(MetricType::Value);
        let m = hpa_metrics(&s, &[MetricSpec { name: "a".into(), target: 1.0, activation_target: 0.0 }, MetricSpec { name: "b".into(), target: 2.0, activation_target: 0.0 }]);
        assert_eq!((m[0].metric_type, m[1].metric_type, m[1].name.as_str()), (MetricType::AverageValue, MetricType::Value, "s1-b"));
    }
}
