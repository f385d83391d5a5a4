//! The policies a replay compares: the object as given (with its forecast, and without), KEDA
//! with the HPA's defaults, and the best reactive setting of a small sweep; and every
//! forecaster's error at the horizon on the replayed part.

use super::config::{Model, PredictiveMode, PredictiveSpec};
use super::features::{FeatureSpec, Series};
use super::forecast::{Forecaster, Score, SeasonalNaive, score};
use super::forest::{ForestForecaster, ForestParams};
use super::linear::LinearForecaster;
use super::replay::{Outcome, Policy, Setup, run};
use crate::spec::{Advanced, HpaBehavior, HpaConfig, ScaledObjectSpec, ScalingRules};
use crate::{Error, Result};

/// What a replay found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub policies: Vec<Outcome>,
    /// Name of the best reactive policy of the sweep (fewest under-provisioned minutes, then
    /// fewest replica-minutes).
    pub best_reactive: String,
    /// Every forecaster's MAE/MAPE at the horizon on the replayed part.
    pub forecasters: Vec<(String, ScoreRow)>,
    /// What `--tune` chose on the training part.
    pub tuned: Option<super::tune::Tuned>,
}

#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct ScoreRow {
    pub mae: f64,
    pub mape: f64,
    pub points: usize,
}

impl From<Score> for ScoreRow {
    fn from(s: Score) -> Self {
        ScoreRow { mae: s.mae, mape: s.mape, points: s.points }
    }
}

fn with_behavior(spec: &ScaledObjectSpec, polling: u32, up: Option<ScalingRules>, down_window: i32) -> ScaledObjectSpec {
    let mut s = spec.clone();
    s.predictive = None;
    s.polling_interval = polling;
    s.advanced = Some(Advanced {
        horizontal_pod_autoscaler_config: Some(HpaConfig {
            name: None,
            behavior: Some(HpaBehavior { scale_up: up, scale_down: Some(ScalingRules { stabilization_window_seconds: Some(down_window), ..Default::default() }) }),
        }),
        ..s.advanced.unwrap_or_default()
    });
    s
}

/// KEDA + HPA with their defaults: 30 s polling, the HPA's scale-up limits (100 % or 4 pods
/// per 15 s), 300 s scale-down stabilization.
pub fn keda_defaults(spec: &ScaledObjectSpec) -> ScaledObjectSpec {
    with_behavior(spec, 30, Some(ScalingRules::default_scale_up()), 300)
}

/// Shares of the object's target tried for the tuned baseline, after polling and
/// stabilization: more headroom is the reactive way to fewer under-provisioned minutes.
pub const HEADROOM: [f64; 2] = [0.9, 0.8];

/// Reactive settings tried for the tuned baseline: polling 5/15/30 s × scale-down
/// stabilization 0/60/300 s, scale-up unlimited (then [`HEADROOM`] on the best of them).
pub fn reactive_sweep(spec: &ScaledObjectSpec) -> Vec<(String, ScaledObjectSpec)> {
    let mut out = Vec::new();
    for polling in [5, 15, 30] {
        for down in [0, 60, 300] {
            out.push((format!("reactive {polling}s/{down}s"), with_behavior(spec, polling, None, down)));
        }
    }
    out
}

/// The forecaster a predictive spec asks for, at the series' step, on every feature.
pub fn forecaster(p: &PredictiveSpec, polling: u32, step: i64) -> Box<dyn Forecaster> {
    build(p, step, |h| FeatureSpec::standard(h), polling)
}

/// The forecaster for a live object: seasonal lags and cycles only where `history` covers them.
pub fn forecaster_for_history(p: &PredictiveSpec, polling: u32, history: &Series) -> Box<dyn Forecaster> {
    let span = history.len() as i64 * history.step;
    build(p, history.step, |h| FeatureSpec::for_history(h, span), polling)
}

/// The horizon in slots of `step` seconds: the spec's horizon rounded up, and one slot more
/// (forecasts are made from the last complete slot).
pub fn horizon_slots(p: &PredictiveSpec, polling: u32, step: i64) -> usize {
    ((p.horizon_secs(polling) as i64 + step - 1) / step).max(1) as usize + 1
}

fn build(p: &PredictiveSpec, step: i64, features: impl Fn(usize) -> FeatureSpec, polling: u32) -> Box<dyn Forecaster> {
    let horizon = horizon_slots(p, polling, step);
    match p.model {
        Model::RandomForest => Box::new(ForestForecaster::new(features(horizon), ForestParams { q: p.quantile, ..Default::default() })),
        Model::Linear => Box::new(LinearForecaster::new(features(horizon), p.quantile)),
        Model::SeasonalNaive => Box::new(SeasonalNaive::new("seasonal-naive-day", (86_400 / step).max(1) as usize, horizon, p.quantile)),
    }
}

/// Fits on `train` and replays the object and its baselines over `setup.range`; with `tune`,
/// the predictive policy's quantile and target are first chosen on `train` alone.
pub fn compare(series: &Series, spec: &ScaledObjectSpec, setup: &Setup, train: std::ops::Range<usize>, tune: bool, progress: &dyn Fn(&str)) -> Result<Report> {
    let predictive = spec.predictive.clone().unwrap_or(PredictiveSpec { mode: PredictiveMode::On, ..serde_json::from_value(serde_json::json!({})).expect("defaults") });
    let tuned = if tune { Some(super::tune::tune(series, spec, &predictive, setup, train.clone(), progress)?) } else { None };
    let fit = |mut f: Box<dyn Forecaster>| -> Result<Box<dyn Forecaster>> {
        f.fit(series, train.clone()).map_err(|e| Error::invalid("--train-until", e.to_string()))?;
        Ok(f)
    };
    let mut policies = Vec::new();
    progress("fitting the forecasters");
    let step = series.step;
    let all: Vec<Box<dyn Forecaster>> = [Model::RandomForest, Model::Linear, Model::SeasonalNaive]
        .into_iter()
        .map(|m| fit(forecaster(&PredictiveSpec { model: m, ..predictive.clone() }, spec.polling_interval, step)))
        .collect::<Result<_>>()?;
    let weekly = {
        let horizon = all[0].horizon();
        fit(Box::new(SeasonalNaive::new("seasonal-naive-week", (7 * 86_400 / step).max(1) as usize, horizon, predictive.quantile)))?
    };
    let mut forecasters: Vec<(String, ScoreRow)> = all.iter().chain(std::iter::once(&weekly)).map(|f| (f.name().to_string(), score(f.as_ref(), series, setup.range.clone()).into())).collect();
    forecasters.sort_by(|a, b| a.1.mae.total_cmp(&b.1.mae));

    progress("replaying the object as given");
    let chosen = fit(forecaster(&predictive, spec.polling_interval, step))?;
    let mut as_given = spec.clone();
    as_given.predictive = Some(PredictiveSpec { mode: PredictiveMode::On, ..predictive.clone() });
    policies.push(run(series, &Policy { name: format!("predictive ({})", chosen.name()), spec: as_given.clone(), forecaster: Some(chosen.into()), target_factor: 1.0 }, setup)?);
    if let Some(t) = &tuned {
        progress("replaying the tuned predictive policy");
        let p = PredictiveSpec { quantile: t.quantile, ..as_given.predictive.clone().expect("set above") };
        let f = fit(forecaster(&p, spec.polling_interval, step))?;
        let name = format!("predictive ({}, tuned: p{:.0}, target {:.0} %)", f.name(), t.quantile * 100.0, t.target_factor * 100.0);
        let s = ScaledObjectSpec { predictive: Some(p), ..as_given };
        policies.push(run(series, &Policy { name, spec: s, forecaster: Some(f.into()), target_factor: t.target_factor }, setup)?);
    }
    let mut reactive = spec.clone();
    reactive.predictive = None;
    policies.push(run(series, &Policy { name: "the object, reactive only".into(), spec: reactive, forecaster: None, target_factor: 1.0 }, setup)?);
    progress("replaying KEDA with the HPA's defaults");
    policies.push(run(series, &Policy { name: "KEDA + HPA defaults".into(), spec: keda_defaults(spec), forecaster: None, target_factor: 1.0 }, setup)?);
    let (tried, best_reactive) = reactive_baselines(series, spec, setup, progress)?;
    policies.extend(tried);
    Ok(Report { policies, best_reactive, forecasters, tuned })
}

/// The reactive sweep over `setup.range`: the best polling and stabilization, then that one
/// with more headroom ([`HEADROOM`]); returns the three and the name of the best (fewest
/// under-provisioned minutes, then fewest replica-minutes).
pub fn reactive_baselines(series: &Series, spec: &ScaledObjectSpec, setup: &Setup, progress: &dyn Fn(&str)) -> Result<(Vec<Outcome>, String)> {
    let mut best: Option<Outcome> = None;
    for (name, s) in reactive_sweep(spec) {
        progress(&format!("sweep: {name}"));
        let o = run(series, &Policy { name, spec: s, forecaster: None, target_factor: 1.0 }, setup)?;
        let better = best.as_ref().is_none_or(|b| (o.under_provisioned_minutes, o.replica_minutes) < (b.under_provisioned_minutes, b.replica_minutes));
        if better {
            best = Some(o);
        }
    }
    // Then that setting with more headroom: the target at 90 % and 80 %, as an operator would
    // lower it to be under-provisioned less often. All three are shown; the best of them is
    // the baseline.
    let stage1 = best.expect("the sweep is not empty");
    let (_, best_spec) = reactive_sweep(spec).into_iter().find(|(n, _)| *n == stage1.name).expect("the best is one of the sweep");
    let mut tried = vec![stage1];
    for factor in HEADROOM {
        let name = format!("{}, target {:.0} %", tried[0].name, factor * 100.0);
        progress(&format!("sweep: {name}"));
        tried.push(run(series, &Policy { name, spec: best_spec.clone(), forecaster: None, target_factor: factor }, setup)?);
    }
    let best_reactive = tried
        .iter()
        .min_by(|a, b| (a.under_provisioned_minutes, a.replica_minutes).partial_cmp(&(b.under_provisioned_minutes, b.replica_minutes)).unwrap_or(std::cmp::Ordering::Equal))
        .map(|o| o.name.clone())
        .unwrap_or_default();
    Ok((tried, best_reactive))
}
