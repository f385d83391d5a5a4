//! The decision: `(state, inputs, now) -> Decision`, pure, no I/O. The loop applies it.
//! Semantics follow KEDA's executor (keda `pkg/scaling/executor/scale_scaledobjects.go`)
//! and the HPA's replica formula `ceil(value / target)` for `AverageValue` metrics.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::scalers::{MetricSpec, MetricValue};
use crate::spec::ScaledObjectSpec;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// At zero (or the idle count): no source is active.
    #[default]
    Idle,
    Active,
    /// Not active any more, waiting out `cooldownPeriod` before going to zero.
    CoolingDown,
    Paused,
    /// Every source failed: replicas held.
    Fallback,
    Overridden,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "Idle",
            Phase::Active => "Active",
            Phase::CoolingDown => "CoolingDown",
            Phase::Paused => "Paused",
            Phase::Fallback => "Fallback",
            Phase::Overridden => "Overridden",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    OverrideReplicas,
    Paused,
    ScaleToMetric,
    ClampMin,
    ClampMax,
    Activate,
    CooldownHold,
    ScaleToZero,
    HoldIdle,
    AllScalersFailed,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::OverrideReplicas => "override_replicas",
            Rule::Paused => "paused",
            Rule::ScaleToMetric => "scale_to_metric",
            Rule::ClampMin => "clamp_min",
            Rule::ClampMax => "clamp_max",
            Rule::Activate => "activate",
            Rule::CooldownHold => "cooldown_hold",
            Rule::ScaleToZero => "scale_to_zero",
            Rule::HoldIdle => "hold_idle",
            Rule::AllScalersFailed => "all_scalers_failed",
        }
    }
}

/// What the loop remembers about an object between decisions.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    pub phase: Phase,
    /// Last time any source was active.
    pub last_active: Option<DateTime<Utc>>,
    /// When the object was first seen (for `initialCooldownPeriod`).
    pub since: DateTime<Utc>,
}

impl State {
    pub fn new(now: DateTime<Utc>) -> Self {
        State { phase: Phase::Idle, last_active: None, since: now }
    }
}

/// One trigger's reading, or its error.
#[derive(Clone, Debug)]
pub struct TriggerInput {
    pub spec: MetricSpec,
    pub reading: Result<(Vec<MetricValue>, bool), String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideInput {
    Replicas(i32),
    Pause,
}

#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub spec: &'a ScaledObjectSpec,
    pub triggers: &'a [TriggerInput],
    pub current_replicas: i32,
    pub override_: Option<OverrideInput>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub state: State,
    pub replicas: i32,
    pub rule: Rule,
    pub explanation: String,
}

fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{}", v.round() as i64) } else { format!("{v:.1}") }
}

pub fn decide(state: &State, inputs: &Inputs<'_>, now: DateTime<Utc>) -> Decision {
    let spec = inputs.spec;
    let current = inputs.current_replicas;
    let mut next = state.clone();
    let verb = |to: i32| if to == current { format!("held {current}") } else { format!("scaled {current} → {to}") };

    match inputs.override_ {
        Some(OverrideInput::Pause) => {
            next.phase = Phase::Paused;
            return Decision { state: next, replicas: current, rule: Rule::Paused, explanation: format!("held {current}: paused by override") };
        }
        Some(OverrideInput::Replicas(n)) => {
            next.phase = Phase::Overridden;
            return Decision { state: next, replicas: n, rule: Rule::OverrideReplicas, explanation: format!("{}: manual override", verb(n)) };
        }
        None => {}
    }

    // Per trigger: replicas wanted (HPA AverageValue formula) and activity.
    let mut wanted: Option<(i32, String)> = None;
    let mut active = false;
    let mut failures = 0;
    for t in inputs.triggers {
        match &t.reading {
            Err(_) => failures += 1,
            Ok((values, is_active)) => {
                active |= *is_active;
                for v in values {
                    let n = (v.value / t.spec.target).ceil().max(0.0) as i32;
                    let why = format!("{}={} / {} per replica = {n}", v.name, fmt_num(v.value), fmt_num(t.spec.target));
                    if wanted.as_ref().is_none_or(|(best, _)| n > *best) {
                        wanted = Some((n, why));
                    }
                }
            }
        }
    }

    if !inputs.triggers.is_empty() && failures == inputs.triggers.len() {
        next.phase = Phase::Fallback;
        let first = inputs.triggers.iter().find_map(|t| t.reading.as_ref().err()).cloned().unwrap_or_default();
        return Decision {
            state: next,
            replicas: current,
            rule: Rule::AllScalersFailed,
            explanation: format!("held {current}: every scaler failed ({first})"),
        };
    }

    let (metric_replicas, why) = wanted.unwrap_or((0, "no metric".into()));
    let (min, max) = (spec.min_replica_count, spec.max_replica_count);
    let clamp = |n: i32, floor: i32| -> (i32, Option<Rule>) {
        if n > max {
            (max, Some(Rule::ClampMax))
        } else if n < floor {
            (floor, Some(Rule::ClampMin))
        } else {
            (n, None)
        }
    };

    if active {
        next.last_active = Some(now);
        next.phase = Phase::Active;
        let (n, clamped) = clamp(metric_replicas, min.max(1));
        let rule = if current == 0 || spec.idle_replica_count == Some(current) && n > current {
            Rule::Activate
        } else {
            clamped.unwrap_or(Rule::ScaleToMetric)
        };
        let bound = match clamped {
            Some(Rule::ClampMax) => format!("; capped at maxReplicaCount {max}"),
            Some(Rule::ClampMin) => format!("; raised to minReplicaCount {}", min.max(1)),
            _ => String::new(),
        };
        return Decision { state: next, replicas: n, rule, explanation: format!("{}: {why}{bound}", verb(n)) };
    }

    // Not active. With minReplicaCount > 0 the metric still sizes the workload.
    if min > 0 {
        next.phase = Phase::Active;
        let (n, clamped) = clamp(metric_replicas, min);
        let rule = clamped.unwrap_or(Rule::ScaleToMetric);
        return Decision { state: next, replicas: n, rule, explanation: format!("{}: {why} (inactive; minReplicaCount {min})", verb(n)) };
    }

    let rest = spec.idle_replica_count.unwrap_or(0);
    if current <= rest {
        next.phase = Phase::Idle;
        return Decision { state: next, replicas: current, rule: Rule::HoldIdle, explanation: format!("held {current}: no source active") };
    }

    // KEDA: cooldownPeriod counts from the last active poll; initialCooldownPeriod from creation.
    let cooled = next.last_active.is_none_or(|t| now - t >= Duration::seconds(spec.cooldown_period as i64));
    let initial_over = now - state.since >= Duration::seconds(spec.initial_cooldown_period as i64);
    if cooled && initial_over {
        next.phase = Phase::Idle;
        return Decision {
            state: next,
            replicas: rest,
            rule: Rule::ScaleToZero,
            explanation: format!("{}: no source active for cooldownPeriod {} s", verb(rest), spec.cooldown_period),
        };
    }
    next.phase = Phase::CoolingDown;
    let (n, _) = clamp(metric_replicas, 1);
    let left = next
        .last_active
        .map(|t| (Duration::seconds(spec.cooldown_period as i64) - (now - t)).num_seconds().max(0))
        .unwrap_or(0);
    Decision {
        state: next,
        replicas: n,
        rule: Rule::CooldownHold,
        explanation: format!("{}: inactive, {left} s of cooldownPeriod left before zero", verb(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ScaleTargetRef, Trigger};

    fn spec(min: i32, max: i32, cooldown: u32) -> ScaledObjectSpec {
        ScaledObjectSpec {
            scale_target_ref: ScaleTargetRef { name: "w".into(), kind: "Deployment".into(), api_version: "apps/v1".into() },
            polling_interval: 1,
            cooldown_period: cooldown,
            initial_cooldown_period: 0,
            idle_replica_count: None,
            min_replica_count: min,
            max_replica_count: max,
            triggers: vec![Trigger { trigger_type: "simulated".into(), name: None, metadata: Default::default() }],
        }
    }

    fn reading(value: f64, target: f64, activation: f64) -> TriggerInput {
        TriggerInput {
            spec: MetricSpec { name: "q".into(), target, activation_target: activation },
            reading: Ok((vec![MetricValue { name: "q".into(), value }], value > activation)),
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn run(state: &State, spec: &ScaledObjectSpec, t: &[TriggerInput], current: i32, at: i64) -> Decision {
        decide(state, &Inputs { spec, triggers: t, current_replicas: current, override_: None }, t0() + Duration::seconds(at))
    }

    #[test]
    fn replicas_are_ceil_of_value_over_target() {
        // HPA AverageValue: desired = ceil(metric / target).
        let s = spec(0, 100, 300);
        let d = run(&State::new(t0()), &s, &[reading(412.0, 60.0, 0.0)], 3, 0);
        assert_eq!(d.replicas, 7);
        assert_eq!(d.rule, Rule::ScaleToMetric);
        assert_eq!(d.explanation, "scaled 3 → 7: q=412 / 60 per replica = 7");
    }

    #[test]
    fn max_caps_and_activation_lifts_from_zero() {
        let s = spec(0, 5, 300);
        let d = run(&State::new(t0()), &s, &[reading(1000.0, 10.0, 0.0)], 2, 0);
        assert_eq!((d.replicas, d.rule), (5, Rule::ClampMax));
        // KEDA: an active source takes 0 → at least 1.
        let d = run(&State::new(t0()), &s, &[reading(0.5, 10.0, 0.0)], 0, 0);
        assert_eq!((d.replicas, d.rule), (1, Rule::Activate));
    }

    #[test]
    fn zero_only_after_cooldown() {
        // KEDA: cooldownPeriod applies to 1 → 0 only, counted from the last active poll.
        let s = spec(0, 10, 300);
        let active = run(&State::new(t0()), &s, &[reading(50.0, 10.0, 0.0)], 0, 0);
        let held = run(&active.state, &s, &[reading(0.0, 10.0, 0.0)], 5, 299);
        assert_eq!((held.replicas, held.rule, held.state.phase), (1, Rule::CooldownHold, Phase::CoolingDown));
        let zero = run(&held.state, &s, &[reading(0.0, 10.0, 0.0)], 1, 300);
        assert_eq!((zero.replicas, zero.rule, zero.state.phase), (0, Rule::ScaleToZero, Phase::Idle));
        let idle = run(&zero.state, &s, &[reading(0.0, 10.0, 0.0)], 0, 301);
        assert_eq!((idle.replicas, idle.rule), (0, Rule::HoldIdle));
    }

    #[test]
    fn min_above_zero_never_goes_to_zero() {
        let s = spec(2, 10, 0);
        let d = run(&State::new(t0()), &s, &[reading(0.0, 10.0, 0.0)], 4, 1000);
        assert_eq!((d.replicas, d.rule), (2, Rule::ClampMin));
    }

    #[test]
    fn all_scalers_failing_holds_replicas() {
        let s = spec(0, 10, 0);
        let failed = TriggerInput { spec: MetricSpec { name: "q".into(), target: 1.0, activation_target: 0.0 }, reading: Err("connection refused".into()) };
        let d = run(&State::new(t0()), &s, &[failed], 3, 0);
        assert_eq!((d.replicas, d.rule, d.state.phase), (3, Rule::AllScalersFailed, Phase::Fallback));
        assert!(d.explanation.contains("connection refused"));
    }

    #[test]
    fn overrides_win() {
        let s = spec(0, 10, 0);
        let t = [reading(100.0, 1.0, 0.0)];
        let base = Inputs { spec: &s, triggers: &t, current_replicas: 3, override_: Some(OverrideInput::Replicas(2)) };
        let d = decide(&State::new(t0()), &base, t0());
        assert_eq!((d.replicas, d.rule), (2, Rule::OverrideReplicas));
        let paused = Inputs { override_: Some(OverrideInput::Pause), ..base };
        let d = decide(&State::new(t0()), &paused, t0());
        assert_eq!((d.replicas, d.rule, d.state.phase), (3, Rule::Paused, Phase::Paused));
    }

    proptest::proptest! {
        #[test]
        fn replicas_stay_within_bounds(value in 0.0f64..1e6, target in 0.1f64..1e3, min in 0i32..5, extra in 0i32..20, current in 0i32..30, at in 0i64..1000) {
            let s = spec(min, min + extra.max(1), 300);
            let d = run(&State::new(t0()), &s, &[reading(value, target, 0.0)], current, at);
            let holds_current = matches!(d.rule, Rule::HoldIdle);
            proptest::prop_assert!(holds_current || (d.replicas >= min && d.replicas <= s.max_replica_count), "{d:?}");
        }
    }
}
