//! Replay of a ScaledObject over a recorded trace at full speed: the same `decide` (KEDA's
//! executor and the HPA's rules, as in `direct` mode), the forecast blend, and pods that take
//! `startup` seconds to be ready; the trace stands in for the first trigger's metric. Scored
//! by under-provisioned minutes (load above ready capacity), replica-minutes and actions.

use chrono::{DateTime, Utc};

use super::blend::{Bounds, blend};
use super::features::Series;
use super::forecast::{Forecaster, score};
use crate::decide::{self, Pause, State, TriggerInput};
use crate::scalers::{self, MetricSpec, MetricValue, ScalerContext};
use crate::spec::ScaledObjectSpec;
use crate::{Error, Result};

/// Pods of the replayed target, each ready `startup` seconds after it was asked for; scaling
/// in removes the newest (not yet ready ones first).
#[derive(Default)]
struct Pods {
    ready_at: Vec<f64>,
}

impl Pods {
    fn scale(&mut self, n: i32, now: f64, startup: f64) {
        let n = n.max(0) as usize;
        while self.ready_at.len() < n {
            self.ready_at.push(now + startup);
        }
        self.ready_at.truncate(n);
    }

    fn ready(&self, now: f64) -> i32 {
        self.ready_at.iter().filter(|t| **t <= now).count() as i32
    }
}

/// How the replayed cluster behaves.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Load one ready replica serves, in the trace's units.
    pub capacity: f64,
    /// Seconds from asking for a pod to its being ready.
    pub startup: f64,
    /// The slots replayed (the test part).
    pub range: std::ops::Range<usize>,
    /// Replicas at the start.
    pub initial: i32,
}

/// One policy: a spec, and a fitted forecaster when it predicts.
pub struct Policy {
    pub name: String,
    pub spec: ScaledObjectSpec,
    pub forecaster: Option<std::sync::Arc<dyn Forecaster>>,
    /// The first trigger's target times this (below 1: more headroom per replica).
    pub target_factor: f64,
}

/// One point per polling interval, for plots.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Point {
    pub t: i64,
    pub load: f64,
    pub replicas: i32,
    pub ready: i32,
    pub forecast: Option<f64>,
    /// The anomaly guard took this reading for broken (`spec.anomaly`).
    pub anomaly: bool,
}

/// How a policy did over the replay.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub name: String,
    pub under_provisioned_minutes: f64,
    pub replica_minutes: f64,
    pub actions: u32,
    /// Of the forecast at its horizon over the replayed slots (predictive policies).
    pub mae: Option<f64>,
    pub mape: Option<f64>,
    #[serde(skip)]
    pub timeline: Vec<Point>,
}

/// The first trigger's metric spec (its target), from the trigger as written.
pub fn metric_spec(spec: &ScaledObjectSpec) -> Result<MetricSpec> {
    let t = spec.triggers.first().ok_or_else(|| Error::invalid("spec.triggers", "needs one trigger: the trace stands in for its metric"))?;
    // A simulated trigger reads the simulated cluster; here the trace stands in for it.
    if t.trigger_type == "simulated" {
        let m = scalers::simulated::SimulatedMetadata::parse("spec.triggers[0]", &t.metadata)?;
        return Ok(MetricSpec { name: t.metric_name(0), target: m.target, activation_target: m.activation_target });
    }
    Ok(scalers::build(t, 0, &ScalerContext::new(None), "replay")?.metric_spec())
}

/// Replays `policy` over `series`.
pub fn run(series: &Series, policy: &Policy, setup: &Setup) -> Result<Outcome> {
    let spec = ScaledObjectSpec { triggers: policy.spec.triggers.iter().take(1).cloned().collect(), ..policy.spec.clone() };
    spec.validate()?;
    let mut metric = metric_spec(&spec)?;
    metric.target *= policy.target_factor;
    let poll = spec.polling_interval.max(1) as i64;
    let (from, to) = (series.time(setup.range.start), series.time(setup.range.end.min(series.len())));
    let at = |t: i64| DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default();
    let mut state = State::new(at(from));
    let mut pods = Pods::default();
    pods.scale(setup.initial, from as f64 - setup.startup, setup.startup);
    let predictive = spec.predictive.as_ref().filter(|p| p.mode != super::config::PredictiveMode::Off);
    let acts_on_forecast = predictive.is_some_and(|p| p.mode == super::config::PredictiveMode::On);
    let (mut under, mut replica_minutes, mut actions) = (0.0, 0.0, 0u32);
    let mut timeline = Vec::new();
    let mut guard = spec.anomaly.clone().map(super::guard::AnomalyGuard::new);
    if let Some(g) = guard.as_mut() {
        // What came before the replayed part is the guard's history, as it is the forecasters'.
        let before: Vec<(i64, f64)> = (0..setup.range.start).filter_map(|i| Some((series.time(i), series.at(i as isize)?))).collect();
        g.warm(&metric.name, &before);
    }
    let mut t = from;
    while t < to {
        let slot = ((t - series.start) / series.step) as usize;
        let current = pods.ready_at.len() as i32;
        let Some(load) = series.at(slot as isize) else {
            t += poll; // a gap in the trace: nothing measured, nothing decided
            continue;
        };
        let inputs = decide::Inputs {
            spec: &spec,
            triggers: &[TriggerInput { spec: metric.clone(), reading: Ok((vec![MetricValue { name: metric.name.clone(), value: load }], load > metric.activation_target)) }],
            current_replicas: current,
            override_: None,
            pause: Pause::default(),
        };
        let mut decision = decide::decide(&state, &inputs, at(t));
        // spec.anomaly: the same guard and policy as the live loop.
        let finding = guard.as_mut().and_then(|g| g.check(t, &metric.name, load));
        let mitigated = match (&finding, guard.as_ref()) {
            (Some(f), Some(g)) => g.mitigate(&metric.name, f, &mut decision, current, &state, spec.fallback.as_ref().map(|f| f.replicas)).mitigated,
            _ => false,
        };
        let mut replicas = decision.replicas;
        // The forecast is made from complete slots only (the one in progress is not known yet).
        let forecast = match (&policy.forecaster, slot.checked_sub(1)) {
            (Some(f), Some(done)) => f.predict(series, done),
            _ => None,
        };
        if let (Some(f), Some(p), true) = (forecast, predictive, acts_on_forecast && replicas > 0 && !mitigated) {
            let unstabilized = (p.scale_in == super::config::ScaleIn::ForecastConfirmed).then(|| super::blend::unstabilized(&decision.state, at(t))).flatten();
            let bounds = Bounds { reactive: replicas, unstabilized, current, target: metric.target, min: spec.min_replica_count, max: spec.max_replica_count, max_scale_up_step: p.max_scale_up_step };
            replicas = blend(f, p.quantile > 0.5, bounds).replicas;
        }
        if replicas != current {
            actions += 1;
            pods.scale(replicas, t as f64, setup.startup);
        }
        state = decision.state;
        let minutes = poll as f64 / 60.0;
        let ready = pods.ready(t as f64);
        if load > ready as f64 * setup.capacity {
            under += minutes;
        }
        replica_minutes += pods.ready_at.len() as f64 * minutes;
        timeline.push(Point { t, load, replicas: pods.ready_at.len() as i32, ready, forecast: forecast.map(|f| f.mean), anomaly: finding.is_some() });
        t += poll;
    }
    let scored = policy.forecaster.as_ref().map(|f| score(f.as_ref(), series, setup.range.clone()));
    Ok(Outcome {
        name: policy.name.clone(),
        under_provisioned_minutes: under,
        replica_minutes,
        actions,
        mae: scored.map(|s| s.mae),
        mape: scored.map(|s| s.mape),
        timeline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(polling: u32, predictive: bool) -> ScaledObjectSpec {
        let mut s = serde_json::json!({"scaleTargetRef": {"name": "w"}, "actuation": "direct", "pollingInterval": polling, "cooldownPeriod": 300, "minReplicaCount": 1, "maxReplicaCount": 50,
            "triggers": [{"type": "metrics-api", "metadata": {"url": "http://127.0.0.1:9/m", "valueLocation": "v", "targetValue": "100"}}]});
        if predictive {
            s["predictive"] = serde_json::json!({"mode": "on", "quantile": 0.5});
        }
        serde_json::from_value(s).unwrap()
    }

    /// A step from 100 to 1,000 at slot 30 (1-minute slots): a forecaster that knows the
    /// future is the best possible one.
    struct Oracle;
    impl Forecaster for Oracle {
        fn name(&self) -> &str {
            "oracle"
        }
        fn horizon(&self) -> usize {
            3
        }
        fn fit(&mut self, _: &Series, _: std::ops::Range<usize>) -> std::result::Result<(), super::super::forecast::FitError> {
            Ok(())
        }
        fn predict(&self, s: &Series, at: usize) -> Option<super::super::forecast::Forecast> {
            let v = s.at((at + 3) as isize)?;
            Some(super::super::forecast::Forecast { mean: v, upper: v })
        }
        fn encode(&self) -> std::result::Result<Vec<u8>, String> {
            Err("the oracle is not stored".into())
        }
    }

    #[test]
    fn a_step_in_load_under_provisions_the_reactive_policy_and_not_the_one_that_saw_it_coming() {
        let series = Series { start: 1_700_000_040, step: 60, values: (0..60).map(|i| Some(if i < 30 { 100.0 } else { 1000.0 })).collect() };
        let setup = Setup { capacity: 120.0, startup: 120.0, range: 0..60, initial: 1 };
        let reactive = run(&series, &Policy { name: "reactive".into(), spec: spec(30, false), forecaster: None, target_factor: 1.0 }, &setup).unwrap();
        let ahead = run(&series, &Policy { name: "oracle".into(), spec: spec(30, true), forecaster: Some(std::sync::Arc::new(Oracle)), target_factor: 1.0 }, &setup).unwrap();
        // Reactive: it sees the step at the first poll after it and waits 2 minutes for pods.
        assert!(reactive.under_provisioned_minutes >= 2.0, "{reactive:?}");
        assert!(ahead.under_provisioned_minutes < reactive.under_provisioned_minutes, "{ahead:?} vs {reactive:?}");
        assert_eq!(ahead.mae, Some(0.0));
        assert!(reactive.actions >= 1 && reactive.timeline.len() == 120, "{}", reactive.timeline.len());
        // A gap is skipped, not taken as zero load.
        let gappy = Series { values: (0..60).map(|i| if (10..20).contains(&i) { None } else { Some(100.0) }).collect(), ..series };
        let g = run(&gappy, &Policy { name: "reactive".into(), spec: spec(30, false), forecaster: None, target_factor: 1.0 }, &setup).unwrap();
        assert_eq!((g.actions, g.timeline.len()), (0, 100));
    }
}
