//! `decide` against KEDA's and the HPA's rules. Each case names the rule it mirrors.

use super::*;
use crate::spec::ScaledObjectSpec;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

/// A spec from KEDA-shaped JSON merged over a minimal valid one with triggers `a` and `b`.
fn spec(extra: serde_json::Value) -> ScaledObjectSpec {
    let mut base = serde_json::json!({
        "scaleTargetRef": {"name": "w"},
        "triggers": [
            {"type": "simulated", "name": "a", "metadata": {}},
            {"type": "simulated", "name": "b", "metadata": {}}
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    let spec: ScaledObjectSpec = serde_json::from_value(base).unwrap();
    spec.validate().unwrap();
    spec
}

/// A healthy reading: `value` against `target`, active when above `activation`.
fn ok(name: &str, value: f64, target: f64, activation: f64) -> TriggerInput {
    TriggerInput {
        spec: MetricSpec { name: name.into(), target, activation_target: activation },
        reading: Ok((vec![MetricValue { name: name.into(), value }], value > activation)),
    }
}

fn failed(name: &str, target: f64) -> TriggerInput {
    TriggerInput { spec: MetricSpec { name: name.into(), target, activation_target: 0.0 }, reading: Err("connection refused".into()) }
}

struct Case {
    /// The rule of KEDA or the HPA this case mirrors.
    rule_source: &'static str,
    spec: serde_json::Value,
    state: fn(State) -> State,
    triggers: Vec<TriggerInput>,
    current: i32,
    pause: Pause,
    override_: Option<OverrideInput>,
    want: (i32, Rule),
}

fn same(s: State) -> State {
    s
}

fn case(rule_source: &'static str, spec: serde_json::Value, triggers: Vec<TriggerInput>, current: i32, want: (i32, Rule)) -> Case {
    Case { rule_source, spec, state: same, triggers, current, pause: Pause::default(), override_: None, want }
}

fn run_case(c: &Case) -> Decision {
    let spec = spec(c.spec.clone());
    let state = (c.state)(State::new(at(-10_000)));
    let inputs = Inputs { spec: &spec, triggers: &c.triggers, current_replicas: c.current, override_: c.override_, pause: c.pause.clone() };
    decide(&state, &inputs, t0())
}

fn active_at(secs_ago: i64) -> fn(State) -> State {
    // fn pointers cannot capture; the few offsets used get their own functions.
    match secs_ago {
        299 => |mut s: State| {
            s.last_active = Some(at(-299));
            s
        },
        300 => |mut s: State| {
            s.last_active = Some(at(-300));
            s
        },
        301 => |mut s: State| {
            s.last_active = Some(at(-301));
            s
        },
        _ => unreachable!(),
    }
}

#[test]
fn table() {
    let none = serde_json::json!({});
    let b0 = || ok("b", 0.0, 10.0, 0.0);
    let fallback = |behavior: &str| serde_json::json!({"fallback": {"failureThreshold": 3, "replicas": 6, "behavior": behavior}});
    let with_failures = |mut s: State| {
        s.failures.insert("a".into(), 3);
        s
    };
    let cases = vec![
        case("HPA External AverageValue: ceil(value / target)", none.clone(), vec![ok("a", 412.0, 60.0, 0.0), b0()], 3, (7, Rule::ScaleToMetric)),
        case("HPA tolerance: |1 − usage/target| ≤ 0.1 keeps replicas", none.clone(), vec![ok("a", 42.0, 10.0, 0.0), b0()], 4, (4, Rule::ScaleToMetric)),
        case(
            "HPA External Value: ceil(current × value / target)",
            serde_json::json!({"triggers": [{"type": "simulated", "name": "a", "metricType": "Value"}]}),
            vec![ok("a", 30.0, 10.0, 0.0)],
            2,
            (6, Rule::ScaleToMetric),
        ),
        case("HPA: the largest proposal of several metrics wins", none.clone(), vec![ok("a", 20.0, 10.0, 0.0), ok("b", 50.0, 10.0, 0.0)], 3, (5, Rule::ScaleToMetric)),
        case("maxReplicaCount caps (HPA maxReplicas)", serde_json::json!({"maxReplicaCount": 5}), vec![ok("a", 1000.0, 10.0, 0.0), b0()], 3, (5, Rule::ClampMax)),
        case("HPA: a target above maxReplicas is brought back first", serde_json::json!({"maxReplicaCount": 5}), vec![ok("a", 10.0, 10.0, 0.0), b0()], 9, (5, Rule::ClampMax)),
        case("HPA default scale-up policy: max(+100 %, +4 pods) per 15 s", none.clone(), vec![ok("a", 1000.0, 1.0, 0.0), b0()], 2, (6, Rule::RateLimited)),
        case("KEDA scaleFromZeroOrIdle: active at 0 → 1", none.clone(), vec![ok("a", 0.5, 10.0, 0.0), b0()], 0, (1, Rule::Activate)),
        case("KEDA scaleFromZeroOrIdle: active at 0 → minReplicaCount", serde_json::json!({"minReplicaCount": 3}), vec![ok("a", 0.5, 10.0, 0.0), b0()], 0, (3, Rule::Activate)),
        case("KEDA activation threshold: at or below it the source is inactive", none.clone(), vec![ok("a", 3.0, 10.0, 5.0), b0()], 0, (0, Rule::HoldIdle)),
        Case { state: active_at(299), ..case("KEDA cooldownPeriod (300 s default) holds 1 → 0", none.clone(), vec![ok("a", 0.0, 10.0, 0.0), b0()], 1, (1, Rule::CooldownHold)) },
        Case { state: active_at(300), ..case("KEDA: lastActiveTime + cooldownPeriod must be before now", none.clone(), vec![ok("a", 0.0, 10.0, 0.0), b0()], 1, (1, Rule::CooldownHold)) },
        Case { state: active_at(301), ..case("KEDA scaleToZeroOrIdle after cooldownPeriod", none.clone(), vec![ok("a", 0.0, 10.0, 0.0), b0()], 1, (0, Rule::ScaleToZero)) },
        Case { state: active_at(301), ..case("KEDA cooldownPeriod: custom value", serde_json::json!({"cooldownPeriod": 400}), vec![ok("a", 0.0, 10.0, 0.0), b0()], 2, (1, Rule::ClampMin)) },
        Case {
            state: |mut s| {
                s.since = at(-30);
                s
            },
            ..case("KEDA initialCooldownPeriod: never active, counted from creation", serde_json::json!({"initialCooldownPeriod": 60}), vec![ok("a", 0.0, 10.0, 0.0), b0()], 1, (1, Rule::CooldownHold))
        },
        Case {
            state: |mut s| {
                s.since = at(-61);
                s
            },
            ..case("KEDA initialCooldownPeriod over → zero", serde_json::json!({"initialCooldownPeriod": 60}), vec![ok("a", 0.0, 10.0, 0.0), b0()], 1, (0, Rule::ScaleToZero))
        },
        Case { state: active_at(301), ..case("KEDA idleReplicaCount: inactive → idle count", serde_json::json!({"minReplicaCount": 2, "idleReplicaCount": 0}), vec![ok("a", 0.0, 10.0, 0.0), b0()], 3, (0, Rule::ScaleToIdle)) },
        case("KEDA idleReplicaCount: active at idle → minReplicaCount", serde_json::json!({"minReplicaCount": 2, "idleReplicaCount": 0}), vec![ok("a", 5.0, 10.0, 0.0), b0()], 0, (2, Rule::Activate)),
        case("KEDA: inactive, minReplicaCount > 0 — the HPA keeps min", serde_json::json!({"minReplicaCount": 2}), vec![ok("a", 0.0, 10.0, 0.0), b0()], 2, (2, Rule::ClampMin)),
        case("KEDA: inactive and below minReplicaCount → min", serde_json::json!({"minReplicaCount": 2}), vec![ok("a", 0.0, 10.0, 0.0), b0()], 1, (2, Rule::ScaleToMin)),
        Case { state: with_failures, ..case("KEDA fallback static: failures > failureThreshold", fallback("static"), vec![failed("a", 10.0), failed("b", 10.0)], 2, (6, Rule::Fallback)) },
        case("KEDA fallback: not before failures exceed failureThreshold", fallback("static"), vec![failed("a", 10.0), failed("b", 10.0)], 2, (2, Rule::ScalerErrorHold)),
        Case { state: with_failures, ..case("KEDA fallback currentReplicas", fallback("currentReplicas"), vec![failed("a", 10.0), b0()], 4, (4, Rule::Fallback)) },
        Case { state: with_failures, ..case("KEDA fallback currentReplicasIfHigher", fallback("currentReplicasIfHigher"), vec![failed("a", 10.0), ok("b", 80.0, 10.0, 0.0)], 8, (8, Rule::ScaleToMetric)) },
        Case { state: with_failures, ..case("KEDA fallback currentReplicasIfLower", fallback("currentReplicasIfLower"), vec![failed("a", 10.0), failed("b", 10.0)], 8, (6, Rule::Fallback)) },
        Case { state: with_failures, ..case("KEDA fallback with another trigger active: HPA takes the larger", fallback("static"), vec![failed("a", 10.0), ok("b", 10.0, 10.0, 0.0)], 2, (6, Rule::Fallback)) },
        case(
            "KEDA scalingModifiers: composite = formula over trigger metrics",
            serde_json::json!({"advanced": {"scalingModifiers": {"formula": "a + b", "target": "10"}}}),
            vec![ok("a", 15.0, 5.0, 0.0), ok("b", 25.0, 5.0, 0.0)],
            2,
            (4, Rule::ScaleToMetric),
        ),
        case(
            "KEDA scalingModifiers activationTarget decides activity",
            serde_json::json!({"advanced": {"scalingModifiers": {"formula": "a + b", "target": "10", "activationTarget": "50"}}}),
            vec![ok("a", 15.0, 5.0, 0.0), ok("b", 25.0, 5.0, 0.0)],
            0,
            (0, Rule::HoldIdle),
        ),
        Case {
            state: |mut s| {
                s.failures.insert(COMPOSITE_METRIC.into(), 3);
                s
            },
            ..case(
                "KEDA fallback applies to the scalingModifiers composite metric",
                serde_json::json!({"fallback": {"failureThreshold": 3, "replicas": 5}, "advanced": {"scalingModifiers": {"formula": "a * 2", "target": "10"}}}),
                vec![failed("a", 5.0), ok("b", 1.0, 5.0, 0.0)],
                1,
                (5, Rule::Fallback),
            )
        },
        Case { pause: Pause { paused: true, ..Default::default() }, ..case("KEDA annotation paused: replicas frozen", none.clone(), vec![ok("a", 100.0, 10.0, 0.0), b0()], 3, (3, Rule::Paused)) },
        Case { pause: Pause { replicas: Some(4), ..Default::default() }, ..case("KEDA annotation paused-replicas", none.clone(), vec![ok("a", 100.0, 10.0, 0.0), b0()], 3, (4, Rule::PausedReplicas)) },
        Case { pause: Pause { scale_in: true, ..Default::default() }, ..case("KEDA annotation paused-scale-in blocks decreases", none.clone(), vec![ok("a", 10.0, 10.0, 0.0), b0()], 3, (3, Rule::PausedScaleIn)) },
        Case { pause: Pause { scale_in: true, ..Default::default() }, ..case("KEDA annotation paused-scale-in lets increases through", none.clone(), vec![ok("a", 50.0, 10.0, 0.0), b0()], 3, (5, Rule::ScaleToMetric)) },
        Case { pause: Pause { scale_out: true, ..Default::default() }, ..case("KEDA annotation paused-scale-out blocks increases", none.clone(), vec![ok("a", 50.0, 10.0, 0.0), b0()], 3, (3, Rule::PausedScaleOut)) },
        Case { pause: Pause { scale_in: true, scale_out: true, ..Default::default() }, ..case("KEDA: both scale pauses = paused", none.clone(), vec![ok("a", 50.0, 10.0, 0.0), b0()], 3, (3, Rule::Paused)) },
        Case {
            pause: Pause { paused: true, ..Default::default() },
            override_: Some(OverrideInput::Replicas(7)),
            ..case("Swell: a person's override beats annotations and metrics", none.clone(), vec![ok("a", 0.0, 10.0, 0.0), b0()], 3, (7, Rule::OverrideReplicas))
        },
        Case { override_: Some(OverrideInput::Pause), ..case("Swell: pause override holds", none.clone(), vec![ok("a", 90.0, 10.0, 0.0), b0()], 3, (3, Rule::OverridePause)) },
        Case {
            state: |mut s| {
                s.recommendations.record(at(-100), 8, Duration::seconds(3600));
                s
            },
            ..case("HPA scale-down stabilization window (300 s default) keeps the highest recent recommendation", none.clone(), vec![ok("a", 20.0, 10.0, 0.0), b0()], 8, (8, Rule::Stabilized))
        },
        Case {
            state: |mut s| {
                s.recommendations.record(at(-100), 8, Duration::seconds(3600));
                s
            },
            ..case(
                "HPA stabilizationWindowSeconds: 0 scales down at once (policy permitting)",
                serde_json::json!({"advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}}}),
                vec![ok("a", 20.0, 10.0, 0.0), b0()],
                8,
                (2, Rule::ScaleToMetric),
            )
        },
        Case {
            state: |mut s| {
                s.recommendations.record(at(-30), 3, Duration::seconds(3600));
                s
            },
            ..case(
                "HPA scale-up stabilization window keeps the lowest recent recommendation",
                serde_json::json!({"advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleUp": {"stabilizationWindowSeconds": 60}}}}}),
                vec![ok("a", 100.0, 10.0, 0.0), b0()],
                3,
                (3, Rule::Stabilized),
            )
        },
        case(
            "HPA selectPolicy Disabled: no scale-down",
            serde_json::json!({"advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Disabled"}}}}}),
            vec![ok("a", 10.0, 10.0, 0.0), b0()],
            5,
            (5, Rule::RateLimited),
        ),
        case(
            "HPA Pods policy: at most N pods per period",
            serde_json::json!({"advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}}}}),
            vec![ok("a", 10.0, 10.0, 0.0), b0()],
            5,
            (4, Rule::RateLimited),
        ),
        Case {
            state: |mut s| {
                s.scale_down_events.record(at(-30), 1);
                s
            },
            ..case(
                "HPA policies count changes already made in the period",
                serde_json::json!({"advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}}}}),
                vec![ok("a", 10.0, 10.0, 0.0), b0()],
                5,
                (5, Rule::RateLimited),
            )
        },
        case(
            "HPA selectPolicy Min picks the smallest change",
            serde_json::json!({"advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleUp": {"selectPolicy": "Min"}}}}}),
            vec![ok("a", 1000.0, 1.0, 0.0), b0()],
            2,
            (4, Rule::RateLimited),
        ),
        case("HPA: no scale-in while a metric is missing", none.clone(), vec![ok("a", 10.0, 10.0, 0.0), failed("b", 10.0)], 4, (4, Rule::ScalerErrorHold)),
        case("HPA: scale-out still allowed while a metric is missing", none.clone(), vec![ok("a", 60.0, 10.0, 0.0), failed("b", 10.0)], 4, (6, Rule::ScaleToMetric)),
        case("KEDA: every scaler failing and no fallback leaves replicas alone", none.clone(), vec![failed("a", 10.0), failed("b", 10.0)], 4, (4, Rule::ScalerErrorHold)),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let d = run_case(c);
            ((d.replicas, d.rule) != c.want).then(|| format!("{}: got {:?}, want {:?} ({})", c.rule_source, (d.replicas, d.rule), c.want, d.explanation))
        })
        .collect();
    assert!(wrong.is_empty(), "{} of {} cases wrong:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
}

#[test]
fn explanations_read_as_sentences() {
    let c = case("", serde_json::json!({}), vec![ok("a", 412.0, 60.0, 0.0), ok("b", 0.0, 10.0, 0.0)], 3, (7, Rule::ScaleToMetric));
    assert_eq!(run_case(&c).explanation, "scaled 3 → 7: a=412 / 60 per replica = 7");
    let c = Case { state: active_at(301), ..case("", serde_json::json!({}), vec![ok("a", 0.0, 10.0, 0.0), ok("b", 0.0, 10.0, 0.0)], 1, (0, Rule::ScaleToZero)) };
    assert_eq!(run_case(&c).explanation, "scaled 1 → 0 (zero): no source active for cooldownPeriod 300 s");
}

#[test]
fn boolean_annotations_parse_as_go_parsebool_and_keda() {
    let map = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
    assert_eq!(Pause::from_annotations(&map(&[])).unwrap(), Pause::default());
    let p = Pause::from_annotations(&map(&[(ANNOTATION_PAUSED, "true"), (ANNOTATION_PAUSED_REPLICAS, "2")])).unwrap();
    assert!(p.paused && p.replicas == Some(2) && p.warnings.is_empty());
    for yes in ["1", "t", "T", "TRUE", "true", "True"] {
        let p = Pause::from_annotations(&map(&[(ANNOTATION_PAUSED_SCALE_IN, yes)])).unwrap();
        assert!(p.scale_in && p.warnings.is_empty(), "{yes}");
    }
    for no in ["0", "f", "F", "FALSE", "false", "False"] {
        let p = Pause::from_annotations(&map(&[(ANNOTATION_PAUSED, no)])).unwrap();
        assert!(!p.paused && p.warnings.is_empty(), "{no}");
    }
    // KEDA's getBoolAnnotation: a value that is not a boolean counts as true; Swell says so.
    for (key, value) in [(ANNOTATION_PAUSED, "yes"), (ANNOTATION_PAUSED_SCALE_OUT, "tRuE"), (ANNOTATION_PAUSED, " true")] {
        let p = Pause::from_annotations(&map(&[(key, value)])).unwrap();
        assert!(p.paused || p.scale_out, "{key}={value}");
        assert!(p.warnings.len() == 1 && p.warnings[0].contains(key), "{:?}", p.warnings);
    }
    let p = Pause::from_annotations(&map(&[(ANNOTATION_FORCE_ACTIVATION, "true")])).unwrap();
    assert!(p.force_activation);
    assert!(Pause::from_annotations(&map(&[(ANNOTATION_SWELL_FORCE_ACTIVATION, "1")])).unwrap().force_activation);
    for value in ["-1", "x"] {
        let err = Pause::from_annotations(&map(&[(ANNOTATION_PAUSED_REPLICAS, value)])).unwrap_err().to_string();
        assert!(err.contains(ANNOTATION_PAUSED_REPLICAS), "{err}");
    }
}

#[test]
fn a_trigger_error_while_none_is_active_holds_replicas_as_keda_does() {
    // One trigger inactive, the other failing, cooldown long over: KEDA holds, never zero.
    let none = serde_json::json!({});
    let c = Case { state: active_at(301), ..case("", none.clone(), vec![ok("a", 0.0, 10.0, 0.0), failed("b", 10.0)], 3, (3, Rule::ScalerErrorHold)) };
    let d = run_case(&c);
    assert_eq!((d.replicas, d.rule), (3, Rule::ScalerErrorHold), "{}", d.explanation);
    assert!(d.explanation.contains("b"), "{}", d.explanation);
    // With a fallback not yet past its threshold: held too.
    let c = Case { state: active_at(301), ..case("", serde_json::json!({"fallback": {"failureThreshold": 3, "replicas": 6}}), vec![ok("a", 0.0, 10.0, 0.0), failed("b", 10.0)], 2, (2, Rule::ScalerErrorHold)) };
    assert_eq!(run_case(&c).replicas, 2);
    // Forced activation takes a target from zero to max(min, 1) with no active source.
    let c = Case { pause: Pause { force_activation: true, ..Default::default() }, ..case("", none, vec![ok("a", 0.0, 10.0, 0.0), ok("b", 0.0, 10.0, 0.0)], 0, (1, Rule::Activate)) };
    assert_eq!(run_case(&c).rule, Rule::Activate);
}

#[test]
fn fallback_starts_after_failure_threshold_and_ends_on_first_success() {
    let spec = spec(serde_json::json!({"fallback": {"failureThreshold": 3, "replicas": 6}}));
    let fail = [failed("a", 10.0), failed("b", 10.0)];
    let heal = [ok("a", 20.0, 10.0, 0.0), ok("b", 0.0, 10.0, 0.0)];
    let mut state = State::new(at(-1000));
    let mut rules = Vec::new();
    for i in 0..5 {
        let d = decide(&state, &Inputs { spec: &spec, triggers: &fail, current_replicas: 2, override_: None, pause: Pause::default() }, at(i));
        rules.push(d.rule);
        state = d.state;
    }
    // KEDA: numberOfFailures > failureThreshold → fallback (the 4th failure with threshold 3).
    assert_eq!(rules, [Rule::ScalerErrorHold, Rule::ScalerErrorHold, Rule::ScalerErrorHold, Rule::Fallback, Rule::Fallback]);
    let d = decide(&state, &Inputs { spec: &spec, triggers: &heal, current_replicas: 6, override_: None, pause: Pause::default() }, at(5));
    assert_ne!(d.rule, Rule::Fallback);
    assert_eq!(d.state.failures["a"], 0);
}

#[test]
fn scaled_job_scalers_combine_like_keda() {
    let r = |q: f64, active: bool| JobScalerReading { queue_length: q, target: 2.0, active };
    let readings = [r(10.0, true), r(4.0, true), r(30.0, false)];
    // (active, queue length, max scale) per multipleScalersCalculation.
    assert_eq!(combine_job_scalers(&readings, MultipleScalersCalculation::Max, 0, 100), (true, 10, 5));
    assert_eq!(combine_job_scalers(&readings, MultipleScalersCalculation::Min, 0, 100), (true, 4, 2));
    assert_eq!(combine_job_scalers(&readings, MultipleScalersCalculation::Avg, 0, 100), (true, 7, 4));
    assert_eq!(combine_job_scalers(&readings, MultipleScalersCalculation::Sum, 0, 100), (true, 14, 7));
    assert_eq!(combine_job_scalers(&readings, MultipleScalersCalculation::Sum, 0, 3), (true, 14, 3), "maxReplicaCount caps");
    assert_eq!(combine_job_scalers(&[r(0.0, false)], MultipleScalersCalculation::Max, 0, 100), (false, 0, 0));
    assert_eq!(combine_job_scalers(&[r(0.0, false)], MultipleScalersCalculation::Max, 1, 100).0, true, "minReplicaCount > 0 is always active");
}

#[test]
fn scaled_job_strategies_follow_keda_formulas() {
    let custom = JobStrategy::Custom { queue_length_deduction: 1, running_job_percentage: 0.5 };
    // (strategy, queue length = scaleTo, max scale, running, pending, max replicas) → jobs to create
    let cases = [
        (JobStrategy::Default, 10, 10, 3, 0, 100, 7),
        (JobStrategy::Default, 10, 10, 12, 0, 100, 0),
        (custom, 10, 10, 4, 0, 100, 7),
        (custom, 10, 10, 4, 0, 5, 5),
        (JobStrategy::Accurate, 10, 10, 3, 2, 100, 8),
        (JobStrategy::Accurate, 10, 10, 95, 0, 100, 5),
        // keda #7417: 10 queued of which 4 pending, 92 running, max 100: 10 + 92 − 4 = 98 fits,
        // so 10 − 4 = 6 new (the old check, 10 + 92 > 100, capped at 100 − 92 = 8).
        (JobStrategy::Accurate, 10, 10, 92, 4, 100, 6),
        (JobStrategy::Eager, 3, 3, 2, 0, 10, 3),
        (JobStrategy::Eager, 20, 10, 4, 2, 10, 4),
    ];
    for (strategy, scale_to, max_scale, running, pending, max, want) in cases {
        assert_eq!(jobs_to_create(strategy, true, scale_to, max_scale, running, pending, 0, max), want, "{strategy:?} q={scale_to} running={running} pending={pending} max={max}");
    }
    assert_eq!(jobs_to_create(JobStrategy::Default, false, 10, 10, 0, 0, 0, 100), 0, "inactive creates nothing");
    assert_eq!(jobs_to_create(JobStrategy::Default, true, 0, 0, 1, 0, 3, 100), 2, "below minReplicaCount: top up to min");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn replicas_stay_within_bounds(value in 0.0f64..1e6, target in 0.1f64..1e3, min in 0i32..5, extra in 1i32..20, current in 0i32..30, since_active in 0i64..1000) {
            let s = spec(serde_json::json!({"minReplicaCount": min, "maxReplicaCount": min + extra}));
            let mut state = State::new(at(-5000));
            state.last_active = Some(at(-since_active));
            let t = [ok("a", value, target, 0.0), ok("b", 0.0, 10.0, 0.0)];
            let d = decide(&state, &Inputs { spec: &s, triggers: &t, current_replicas: current, override_: None, pause: Pause::default() }, t0());
            let holds_current_outside = matches!(d.rule, Rule::HoldIdle);
            prop_assert!(holds_current_outside || (d.replicas >= min && d.replicas <= s.max_replica_count), "{d:?}");
        }

        #[test]
        fn never_one_to_zero_before_cooldown(cooldown in 1u32..3600, elapsed in 0i64..3600, current in 1i32..20, value in 0.0f64..5.0) {
            prop_assume!(elapsed <= cooldown as i64);
            let s = spec(serde_json::json!({"cooldownPeriod": cooldown}));
            let mut state = State::new(at(-100_000));
            state.last_active = Some(at(-elapsed));
            let t = [ok("a", value, 10.0, 5.0), ok("b", 0.0, 10.0, 5.0)];
            let d = decide(&state, &Inputs { spec: &s, triggers: &t, current_replicas: current, override_: None, pause: Pause::default() }, t0());
            prop_assert!(d.replicas >= 1, "{d:?}");
        }

        #[test]
        fn fallback_exactly_after_threshold(threshold in 0i32..6, polls in 1usize..12) {
            let s = spec(serde_json::json!({"fallback": {"failureThreshold": threshold, "replicas": 3}}));
            let fail = [failed("a", 10.0), failed("b", 10.0)];
            let mut state = State::new(at(-1000));
            for i in 1..=polls {
                let d = decide(&state, &Inputs { spec: &s, triggers: &fail, current_replicas: 1, override_: None, pause: Pause::default() }, at(i as i64));
                prop_assert_eq!(d.rule == Rule::Fallback, i as i32 > threshold, "poll {}: {:?}", i, d.rule);
                state = d.state;
            }
            let ok_now = [ok("a", 10.0, 10.0, 0.0), ok("b", 0.0, 10.0, 0.0)];
            let d = decide(&state, &Inputs { spec: &s, triggers: &ok_now, current_replicas: 3, override_: None, pause: Pause::default() }, at(100));
            prop_assert_ne!(d.rule, Rule::Fallback);
        }

        #[test]
        fn an_override_always_wins(n in 0i32..1000, value in 0.0f64..1e6, current in 0i32..50, paused in any::<bool>()) {
            let s = spec(serde_json::json!({}));
            let t = [ok("a", value, 1.0, 0.0), ok("b", value, 1.0, 0.0)];
            let pause = Pause { paused, ..Default::default() };
            let d = decide(&State::new(t0()), &Inputs { spec: &s, triggers: &t, current_replicas: current, override_: Some(OverrideInput::Replicas(n)), pause }, t0());
            prop_assert_eq!(d.replicas, n);
        }
    }
}

#[test]
fn direct_mode_takes_the_metrics_step_at_once_unless_behavior_limits_it() {
    // HPA defaults: from 1, +100 % or +4 pods per 15 s → 5.
    let hpa = case("", serde_json::json!({"maxReplicaCount": 10}), vec![ok("a", 50.0, 5.0, 0.0), ok("b", 0.0, 10.0, 0.0)], 1, (5, Rule::RateLimited));
    assert_eq!(run_case(&hpa).replicas, 5);
    // Direct: 50 / 5 = 10 at once.
    let direct = case("", serde_json::json!({"maxReplicaCount": 10, "actuation": "direct"}), vec![ok("a", 50.0, 5.0, 0.0), ok("b", 0.0, 10.0, 0.0)], 1, (10, Rule::ScaleToMetric));
    assert_eq!(run_case(&direct).replicas, 10);
    // Direct with a scale-up behaviour: the behaviour rules.
    let limited = case(
        "",
        serde_json::json!({"maxReplicaCount": 10, "actuation": "direct", "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]}}}}}),
        vec![ok("a", 50.0, 5.0, 0.0), ok("b", 0.0, 10.0, 0.0)],
        1,
        (3, Rule::RateLimited),
    );
    assert_eq!(run_case(&limited).replicas, 3);
    // Scale-down in direct mode keeps the HPA's 300 s stabilization.
    let down = Case {
        state: |mut s: State| {
            s.recommendations.record(at(-10), 8, Duration::seconds(3600));
            s
        },
        ..case("", serde_json::json!({"maxReplicaCount": 10, "actuation": "direct"}), vec![ok("a", 10.0, 5.0, 0.0), ok("b", 0.0, 10.0, 0.0)], 8, (8, Rule::Stabilized))
    };
    assert_eq!(run_case(&down).replicas, 8);
}
