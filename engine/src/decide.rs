//! The decision: `decide(&State, &Inputs, now) -> Decision`, pure, no I/O. The loop applies it.
//!
//! Semantics follow KEDA where KEDA has them:
//! - 0 ↔ 1 (activation, cooldown, idle and minimum replicas, fallback from zero, pause
//!   annotations): keda `pkg/scaling/executor/scale_scaledobjects.go` (`RequestScale`,
//!   `scaleFromZeroOrIdle`, `scaleToZeroOrIdle`) and `pkg/fallback/fallback.go`.
//! - 1 ↔ N in `direct` mode, where Swell does the HPA's work itself: kubernetes
//!   `pkg/controller/podautoscaler` (replica calculator for External metrics with the 10 %
//!   tolerance; `stabilizeRecommendationWithBehaviors`; `convertDesiredReplicasWithBehaviorRate`
//!   with `calculateScaleUpLimitWithScalingRules` / `calculateScaleDownLimitWithBehaviors`).
//! - ScaledJob: keda `pkg/scaling/scaledjob/metrics.go` (`multipleScalersCalculation`) and
//!   `pkg/scaling/executor/scale_jobs.go` (the four scaling strategies).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::scalers::{MetricSpec, MetricValue};
use crate::spec::{FallbackBehavior, MetricType, ScaledObjectSpec, parse_quantity};
use crate::{Error, Result};

/// The HPA's default tolerance: no change while usage is within 10 % of the target.
pub const TOLERANCE: f64 = 0.1;
/// The metric name KEDA gives the composite metric of `scalingModifiers`.
pub const COMPOSITE_METRIC: &str = "composite-metric";

pub const ANNOTATION_PAUSED: &str = "autoscaling.keda.sh/paused";
pub const ANNOTATION_PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";
pub const ANNOTATION_PAUSED_SCALE_IN: &str = "autoscaling.keda.sh/paused-scale-in";
pub const ANNOTATION_PAUSED_SCALE_OUT: &str = "autoscaling.keda.sh/paused-scale-out";
pub const ANNOTATION_FORCE_ACTIVATION: &str = "autoscaling.keda.sh/force-activation";
pub const ANNOTATION_SWELL_FORCE_ACTIVATION: &str = "swell.dev/force-activation";
/// Lets a ScaledObject adopt an HPA it did not create (named in horizontalPodAutoscalerConfig).
pub const ANNOTATION_TRANSFER_HPA_OWNERSHIP: &str = "swell.dev/transfer-hpa-ownership";
pub const ANNOTATION_KEDA_TRANSFER_HPA_OWNERSHIP: &str = "scaledobject.keda.sh/transfer-hpa-ownership";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// At zero (or the idle count): no source is active.
    #[default]
    Idle,
    Active,
    /// Not active any more, waiting out `cooldownPeriod` before going to zero.
    CoolingDown,
    Paused,
    /// A scaler has failed past `fallback.failureThreshold`, or every scaler is failing.
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

/// The rule that fired; stored with every decision and counted in `swell_decisions_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    OverrideReplicas,
    OverridePause,
    PausedReplicas,
    Paused,
    PausedScaleIn,
    PausedScaleOut,
    Activate,
    ScaleToMetric,
    Stabilized,
    RateLimited,
    ClampMin,
    ClampMax,
    CooldownHold,
    ScaleToZero,
    ScaleToIdle,
    ScaleToMin,
    HoldIdle,
    Fallback,
    ScalerErrorHold,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::OverrideReplicas => "override_replicas",
            Rule::OverridePause => "override_pause",
            Rule::PausedReplicas => "paused_replicas",
            Rule::Paused => "paused",
            Rule::PausedScaleIn => "paused_scale_in",
            Rule::PausedScaleOut => "paused_scale_out",
            Rule::Activate => "activate",
            Rule::ScaleToMetric => "scale_to_metric",
            Rule::Stabilized => "stabilized",
            Rule::RateLimited => "rate_limited",
            Rule::ClampMin => "clamp_min",
            Rule::ClampMax => "clamp_max",
            Rule::CooldownHold => "cooldown_hold",
            Rule::ScaleToZero => "scale_to_zero",
            Rule::ScaleToIdle => "scale_to_idle",
            Rule::ScaleToMin => "scale_to_min",
            Rule::HoldIdle => "hold_idle",
            Rule::Fallback => "fallback",
            Rule::ScalerErrorHold => "scaler_error_hold",
        }
    }
}

/// What the loop remembers about an object between decisions.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    pub phase: Phase,
    /// Last time any source was active (KEDA `status.lastActiveTime`).
    pub last_active: Option<DateTime<Utc>>,
    /// When the object was first seen (for `initialCooldownPeriod`).
    pub since: DateTime<Utc>,
    /// Consecutive failures per metric (KEDA `status.health[metric].numberOfFailures`).
    pub failures: BTreeMap<String, u32>,
    /// Unstabilized recommendations, for the HPA's stabilization windows.
    pub recommendations: Recommendations,
    /// Replica changes made, for the HPA's rate policies.
    pub scale_up_events: ScaleEvents,
    pub scale_down_events: ScaleEvents,
}

impl State {
    pub fn new(now: DateTime<Utc>) -> Self {
        State {
            phase: Phase::Idle,
            last_active: None,
            since: now,
            failures: BTreeMap::new(),
            recommendations: Recommendations::default(),
            scale_up_events: ScaleEvents::default(),
            scale_down_events: ScaleEvents::default(),
        }
    }
}

/// One trigger's reading, or its error.
#[derive(Clone, Debug)]
pub struct TriggerInput {
    pub spec: MetricSpec,
    pub reading: std::result::Result<(Vec<MetricValue>, bool), String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideInput {
    Replicas(i32),
    Pause,
}

/// KEDA's pause and force-activation annotations on the ScaledObject.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pause {
    pub paused: bool,
    pub replicas: Option<i32>,
    pub scale_in: bool,
    pub scale_out: bool,
    /// `autoscaling.keda.sh/force-activation` (or `swell.dev/force-activation`): act as if a
    /// source were active.
    pub force_activation: bool,
    /// `swell.dev/transfer-hpa-ownership` (or KEDA's): adopt the HPA named in the spec.
    pub transfer_hpa_ownership: bool,
    /// Boolean annotations whose value is not a boolean, said in words (KEDA takes them as true).
    pub warnings: Vec<String>,
}

/// Go's `strconv.ParseBool`, which KEDA uses for its boolean annotations.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Pause {
    /// Reads the annotations as KEDA does: a boolean annotation is true unless its value parses
    /// (Go's ParseBool) as false — a value that is no boolean counts as true and is reported in
    /// `warnings`; a bad `paused-replicas` is an error naming the annotation.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Result<Self> {
        let mut warnings = Vec::new();
        let mut flag = |keys: &[&str]| -> bool {
            keys.iter().any(|key| match annotations.get(*key) {
                None => false,
                Some(v) => parse_go_bool(v).unwrap_or_else(|| {
                    warnings.push(format!("metadata.annotations[{key}] = {v:?} is not a boolean (true/false/1/0); taken as true, as KEDA does"));
                    true
                }),
            })
        };
        let paused = flag(&[ANNOTATION_PAUSED]);
        let scale_in = flag(&[ANNOTATION_PAUSED_SCALE_IN]);
        let scale_out = flag(&[ANNOTATION_PAUSED_SCALE_OUT]);
        let force_activation = flag(&[ANNOTATION_FORCE_ACTIVATION, ANNOTATION_SWELL_FORCE_ACTIVATION]);
        let transfer_hpa_ownership = flag(&[ANNOTATION_TRANSFER_HPA_OWNERSHIP, ANNOTATION_KEDA_TRANSFER_HPA_OWNERSHIP]);
        let replicas = match annotations.get(ANNOTATION_PAUSED_REPLICAS) {
            None => None,
            Some(v) => Some(v.trim().parse::<i32>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                Error::invalid(format!("metadata.annotations[{ANNOTATION_PAUSED_REPLICAS}]"), format!("{v:?} must be a whole number of 0 or more"))
            })?),
        };
        Ok(Pause { paused, replicas, scale_in, scale_out, force_activation, transfer_hpa_ownership, warnings })
    }
}

#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub spec: &'a ScaledObjectSpec,
    /// One per `spec.triggers`, in order.
    pub triggers: &'a [TriggerInput],
    pub current_replicas: i32,
    pub override_: Option<OverrideInput>,
    pub pause: Pause,
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

/// One metric's replica proposal with its reason.
#[derive(Clone, Debug)]
struct Proposal {
    replicas: i32,
    why: String,
    fallback: bool,
}

/// What the metrics say, before the executor and HPA rules.
struct Evaluation {
    proposals: Vec<Proposal>,
    active: bool,
    /// Metrics that failed this poll.
    errors: Vec<String>,
    /// Failed metrics not (yet) replaced by a fallback.
    unresolved_errors: usize,
    /// How many metrics there are.
    metrics: usize,
}

/// The HPA replica calculator for one External metric.
fn hpa_proposal(name: &str, value: f64, target: f64, metric_type: MetricType, current: i32) -> Proposal {
    let base = current.max(1) as f64;
    let (ratio, raw) = match metric_type {
        MetricType::AverageValue | MetricType::Utilization => (value / (target * base), (value / target).ceil()),
        MetricType::Value => (value / target, (value / target * base).ceil()),
    };
    if current > 0 && (1.0 - ratio).abs() <= TOLERANCE {
        return Proposal {
            replicas: current,
            why: format!("{name}={} is within 10 % of {} × {current}", fmt_num(value), fmt_num(target)),
            fallback: false,
        };
    }
    let n = raw.clamp(0.0, i32::MAX as f64) as i32;
    let why = match metric_type {
        MetricType::AverageValue | MetricType::Utilization => format!("{name}={} / {} per replica = {n}", fmt_num(value), fmt_num(target)),
        MetricType::Value => format!("{name}={} / target {} × {} = {n}", fmt_num(value), fmt_num(target), current.max(1)),
    };
    Proposal { replicas: n, why, fallback: false }
}

/// KEDA `doFallback`: the replicas a fallback asks for, given the target's current ones.
pub fn fallback_replicas(f: &crate::spec::Fallback, current: i32) -> i32 {
    match f.behavior {
        FallbackBehavior::Static => f.replicas,
        FallbackBehavior::CurrentReplicas => current,
        FallbackBehavior::CurrentReplicasIfHigher => current.max(f.replicas),
        FallbackBehavior::CurrentReplicasIfLower => current.min(f.replicas),
    }
}

fn fallback_proposal(spec: &ScaledObjectSpec, metric: &str, failures: u32, current: i32) -> Option<Proposal> {
    let f = spec.fallback.as_ref()?;
    // KEDA: fallback once numberOfFailures > failureThreshold.
    if failures as i64 <= f.failure_threshold as i64 {
        return None;
    }
    let replicas = fallback_replicas(f, current);
    let behavior = serde_json::to_value(f.behavior).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    Some(Proposal {
        replicas,
        why: format!("{metric} failed {failures} times in a row (> failureThreshold {}); fallback {behavior} = {replicas}", f.failure_threshold),
        fallback: true,
    })
}

fn evaluate(state: &mut State, inputs: &Inputs<'_>) -> Evaluation {
    let spec = inputs.spec;
    let current = inputs.current_replicas;
    let mut ev = Evaluation { proposals: Vec::new(), active: false, errors: Vec::new(), unresolved_errors: 0, metrics: 0 };
    let record = |state: &mut State, ev: &mut Evaluation, metric: &str, result: std::result::Result<Proposal, String>| {
        ev.metrics += 1;
        match result {
            Ok(p) => {
                state.failures.insert(metric.to_string(), 0);
                ev.proposals.push(p);
            }
            Err(e) => {
                let n = state.failures.entry(metric.to_string()).or_insert(0);
                *n += 1;
                ev.errors.push(format!("{metric}: {e}"));
                match fallback_proposal(spec, metric, *n, current) {
                    Some(p) => ev.proposals.push(p),
                    None => ev.unresolved_errors += 1,
                }
            }
        }
    };

    if let Some(m) = spec.scaling_modifiers() {
        // One composite metric: the formula over the triggers' values, by trigger name.
        let target = parse_quantity(&m.target).unwrap_or(1.0);
        let activation = m.activation_target.as_deref().and_then(parse_quantity).unwrap_or(0.0);
        let composite = composite_value(spec, inputs.triggers, &m.formula);
        let result = composite.map(|value| {
            ev.active |= value > activation;
            hpa_proposal(COMPOSITE_METRIC, value, target, m.metric_type.unwrap_or_default(), current)
        });
        record(state, &mut ev, COMPOSITE_METRIC, result);
        return ev;
    }

    for (i, t) in inputs.triggers.iter().enumerate() {
        let metric_type = spec.triggers.get(i).and_then(|t| t.metric_type).unwrap_or_default();
        let result = t.reading.as_ref().map_err(Clone::clone).map(|(values, active)| {
            ev.active |= *active;
            let value: f64 = values.iter().map(|v| v.value).sum();
            hpa_proposal(&t.spec.name, value, t.spec.target, metric_type, current)
        });
        record(state, &mut ev, &t.spec.name, result);
    }
    ev
}

pub(crate) fn composite_value(spec: &ScaledObjectSpec, triggers: &[TriggerInput], formula: &str) -> std::result::Result<f64, String> {
    let mut values = Vec::with_capacity(triggers.len());
    for (i, t) in triggers.iter().enumerate() {
        let name = spec.triggers.get(i).and_then(|t| t.name.clone()).unwrap_or_else(|| t.spec.name.clone());
        let (readings, _) = t.reading.as_ref().map_err(|e| format!("trigger {name}: {e}"))?;
        values.push((name, readings.iter().map(|v| v.value).sum()));
    }
    formula_value(formula, &values)
}

/// `spec.advanced.scalingModifiers.formula` over the triggers' values by name. A result that
/// is not a finite number (a division by zero, say) is an error, as a failing trigger is: it
/// must never read as "scale to the maximum".
pub fn formula_value(formula: &str, values: &[(String, f64)]) -> std::result::Result<f64, String> {
    use evalexpr::{ContextWithMutableVariables, DefaultNumericTypes, HashMapContext, Value};
    let mut ctx = HashMapContext::<DefaultNumericTypes>::new();
    for (name, value) in values {
        ctx.set_value(name.clone(), Value::Float(*value)).map_err(|e| e.to_string())?;
    }
    let value = evalexpr::eval_number_with_context(formula, &ctx).map_err(|e| format!("formula {formula:?}: {e}"))?;
    if value.is_finite() { Ok(value) } else { Err(format!("formula {formula:?} gave {value}, not a finite number")) }
}

pub fn decide(state: &State, inputs: &Inputs<'_>, now: DateTime<Utc>) -> Decision {
    let spec = inputs.spec;
    let current = inputs.current_replicas;
    let mut next = state.clone();
    let verb = |to: i32| if to == current { format!("held {current}") } else { format!("scaled {current} → {to}") };
    let done = |mut state: State, phase: Phase, replicas: i32, rule: Rule, explanation: String| {
        state.phase = phase;
        Decision { state, replicas, rule, explanation }
    };

    // A person's override beats everything; then KEDA's pause annotations.
    match inputs.override_ {
        Some(OverrideInput::Pause) => {
            return done(next, Phase::Paused, current, Rule::OverridePause, format!("held {current}: paused by override"));
        }
        Some(OverrideInput::Replicas(n)) => {
            return done(next, Phase::Overridden, n, Rule::OverrideReplicas, format!("{}: manual override", verb(n)));
        }
        None => {}
    }
    if let Some(n) = inputs.pause.replicas {
        return done(next, Phase::Paused, n, Rule::PausedReplicas, format!("{}: annotation {ANNOTATION_PAUSED_REPLICAS}={n}", verb(n)));
    }
    if inputs.pause.paused || inputs.pause.scale_in && inputs.pause.scale_out {
        return done(next, Phase::Paused, current, Rule::Paused, format!("held {current}: paused by annotation"));
    }

    let ev = evaluate(&mut next, inputs);
    let min = spec.min_replica_count;
    let first_error = ev.errors.first().cloned().unwrap_or_default();
    let fallback_in_use = ev.proposals.iter().any(|p| p.fallback);

    let active = ev.active || inputs.pause.force_activation;
    let decision = if active {
        next.last_active = Some(now);
        if current == 0 || spec.idle_replica_count.is_some() && current < min {
            // KEDA scaleFromZeroOrIdle: to minReplicaCount, at least 1.
            let n = min.max(1);
            let why = if ev.active {
                let why = ev.proposals.iter().max_by_key(|p| p.replicas).map(|p| p.why.clone()).unwrap_or_default();
                format!("a source became active ({why})")
            } else {
                format!("activation forced by annotation {ANNOTATION_FORCE_ACTIVATION}")
            };
            done(next, Phase::Active, n, Rule::Activate, format!("{}: {why}", verb(n)))
        } else {
            hpa_step(next, inputs, &ev, now)
        }
    } else if fallback_in_use {
        // KEDA doFallbackScaling: not active, a scaler failing past the threshold. Other
        // metrics still count, as the HPA takes the largest proposal.
        let p = ev.proposals.iter().max_by_key(|p| (p.replicas, p.fallback)).cloned().expect("a fallback proposal");
        let n = p.replicas.min(spec.max_replica_count);
        done(next, Phase::Fallback, n, Rule::Fallback, format!("{}: {}", verb(n), p.why))
    } else if !ev.errors.is_empty() {
        // KEDA RequestScale: no trigger active and one responded with an error → leave the
        // replicas alone (with a fallback, until it takes over past failureThreshold); never
        // scale to zero on a metric that could not be read.
        let what = if ev.unresolved_errors == ev.metrics { "every scaler failed" } else { "a scaler failed while none is active" };
        done(next, Phase::Fallback, current, Rule::ScalerErrorHold, format!("held {current}: {what} ({first_error})"))
    } else if spec.idle_replica_count.is_some_and(|idle| current > idle) || current > 0 && min == 0 {
        scale_to_zero_or_idle(next, inputs, &ev, now)
    } else if current < min && spec.idle_replica_count.is_none() {
        done(next, Phase::Active, min, Rule::ScaleToMin, format!("{}: below minReplicaCount {min}", verb(min)))
    } else if current == 0 || spec.idle_replica_count == Some(current) {
        done(next, Phase::Idle, current, Rule::HoldIdle, format!("held {current}: no source active"))
    } else {
        // Inactive but minReplicaCount > 0: the HPA keeps sizing the workload.
        hpa_step(next, inputs, &ev, now)
    };
    apply_scale_pauses(decision, inputs)
}

/// KEDA scaleToZeroOrIdle: after `cooldownPeriod` since the last active poll (or
/// `initialCooldownPeriod` since creation when never active), go to the idle count or 0;
/// until then the HPA keeps working between 1 and N.
fn scale_to_zero_or_idle(mut next: State, inputs: &Inputs<'_>, ev: &Evaluation, now: DateTime<Utc>) -> Decision {
    let spec = inputs.spec;
    let current = inputs.current_replicas;
    let cooled = match next.last_active {
        // KEDA: `lastActiveTime.Add(cooldownPeriod).Before(now)`, strictly after.
        None => now - next.since > Duration::seconds(spec.initial_cooldown_period as i64),
        Some(t) => now - t > Duration::seconds(spec.cooldown_period as i64),
    };
    if cooled {
        let (n, rule, to) = match spec.idle_replica_count {
            Some(idle) => (idle, Rule::ScaleToIdle, format!("idleReplicaCount {idle}")),
            None => (spec.min_replica_count, Rule::ScaleToZero, "zero".to_string()),
        };
        let why = match next.last_active {
            Some(_) => format!("no source active for cooldownPeriod {} s", spec.cooldown_period),
            None => format!("never active, initialCooldownPeriod {} s over", spec.initial_cooldown_period),
        };
        next.phase = Phase::Idle;
        next.recommendations.clear();
        let verb = if n == current { format!("held {current}") } else { format!("scaled {current} → {n}") };
        return Decision { state: next, replicas: n, rule, explanation: format!("{verb} ({to}): {why}") };
    }
    let left = next.last_active.map(|t| (Duration::seconds(spec.cooldown_period as i64) - (now - t)).num_seconds().max(0));
    let mut d = hpa_step(next, inputs, ev, now);
    d.state.phase = Phase::CoolingDown;
    if d.replicas == current {
        d.rule = Rule::CooldownHold;
    }
    let left = left.map(|s| format!("{s} s of cooldownPeriod")).unwrap_or_else(|| "initialCooldownPeriod".into());
    d.explanation = format!("{}; inactive, {left} left before zero", d.explanation);
    d
}

/// KEDA's paused-scale-in / paused-scale-out annotations block one direction.
fn apply_scale_pauses(mut d: Decision, inputs: &Inputs<'_>) -> Decision {
    let current = inputs.current_replicas;
    if inputs.pause.scale_in && d.replicas < current {
        d.explanation = format!("held {current}: would scale in to {} but {ANNOTATION_PAUSED_SCALE_IN} is set", d.replicas);
        d.replicas = current;
        d.rule = Rule::PausedScaleIn;
    } else if inputs.pause.scale_out && d.replicas > current {
        d.explanation = format!("held {current}: would scale out to {} but {ANNOTATION_PAUSED_SCALE_OUT} is set", d.replicas);
        d.replicas = current;
        d.rule = Rule::PausedScaleOut;
    }
    d
}

/// The HPA between 1 and N: bounds, metric proposal, stabilization window, rate policies.
fn hpa_step(mut next: State, inputs: &Inputs<'_>, ev: &Evaluation, now: DateTime<Utc>) -> Decision {
    let spec = inputs.spec;
    let current = inputs.current_replicas;
    let (min, max) = (spec.min_replica_count.max(1), spec.max_replica_count);
    let verb = |to: i32| if to == current { format!("held {current}") } else { format!("scaled {current} → {to}") };
    let phase = if ev.proposals.iter().any(|p| p.fallback) { Phase::Fallback } else { Phase::Active };

    // The HPA first brings a target outside its bounds back inside, without behaviours.
    if current > max {
        next.phase = phase;
        return Decision { replicas: max, rule: Rule::ClampMax, explanation: format!("{}: above maxReplicaCount {max}", verb(max)), state: next };
    }
    if current < min {
        next.phase = phase;
        return Decision { replicas: min, rule: Rule::ClampMin, explanation: format!("{}: below minReplicaCount {min}", verb(min)), state: next };
    }

    let best = ev.proposals.iter().max_by_key(|p| p.replicas).cloned();
    let (mut desired, mut why, mut rule) = match best {
        Some(p) => (p.replicas, p.why.clone(), if p.fallback { Rule::Fallback } else { Rule::ScaleToMetric }),
        None => (current, "no metric".to_string(), Rule::ScalerErrorHold),
    };
    // The HPA does not scale down while some metrics are missing.
    if ev.unresolved_errors > 0 && desired < current {
        desired = current;
        why = format!("{why}; not scaling in while a scaler fails ({})", ev.errors.first().cloned().unwrap_or_default());
        rule = Rule::ScalerErrorHold;
    }

    let (up, down) = if spec.actuation == crate::spec::Actuation::Direct { spec.direct_behavior() } else { spec.hpa_behavior() };
    let (stabilized, window_note) = stabilize(&mut next, current, desired, &up, &down, now);
    if stabilized != desired {
        why = format!("{why}; {window_note}");
        rule = Rule::Stabilized;
    }
    let (limited, rate_note) = rate_limit(&next, current, stabilized, min, max, &up, &down, now);
    if limited != stabilized {
        why = format!("{why}; {rate_note}");
        rule = if limited == max && stabilized > max {
            Rule::ClampMax
        } else if limited == min && stabilized < min {
            Rule::ClampMin
        } else {
            Rule::RateLimited
        };
    }
    record_scale_event(&mut next, current, limited, now);
    next.phase = phase;
    Decision { state: next, replicas: limited, rule, explanation: format!("{}: {why}", verb(limited)) }
}

mod hpa;
use hpa::{rate_limit, record_scale_event, stabilize};
mod jobs;
mod window;
pub use window::{Recommendations, ScaleEvents};
pub use jobs::{JobScalerReading, JobStrategy, MultipleScalersCalculation, combine_job_scalers, jobs_to_create};

#[cfg(test)]
mod tests;
