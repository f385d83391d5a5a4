//! Choosing the predictive policy's quantile and target on the training part only: the
//! training part is split (the first three quarters fit the forecaster, the last quarter is
//! replayed), the reactive baselines are found there as on the test part, and the setting
//! kept is the one with the fewest under-provisioned minutes among those that use no more
//! replica-minutes than the best reactive baseline there (else the leanest that is under-
//! provisioned no more than it). The test part is never looked at.

use std::ops::Range;
use std::sync::Arc;

use super::compare::{forecaster, reactive_baselines};
use super::config::{PredictiveMode, PredictiveSpec};
use super::features::Series;
use super::forecast::Forecaster;
use super::replay::{Outcome, Policy, Setup, run};
use crate::spec::ScaledObjectSpec;
use crate::{Error, Result};

/// Quantiles the forecast may be planned for.
pub const QUANTILES: [f64; 3] = [0.5, 0.7, 0.9];
/// Shares of the object's target the predictive policy may run at: below 1 more headroom per
/// replica (as the reactive sweep tries), above 1 less (the forecast's quantile being the
/// headroom).
pub const TARGETS: [f64; 4] = [0.8, 0.9, 1.0, 1.1];

/// What tuning chose, and why, in words.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Tuned {
    pub quantile: f64,
    pub target_factor: f64,
    pub note: String,
}

fn key(o: &Outcome) -> (f64, f64) {
    (o.under_provisioned_minutes, o.replica_minutes)
}

/// Tunes on `train` (never beyond it).
pub fn tune(series: &Series, spec: &ScaledObjectSpec, predictive: &PredictiveSpec, setup: &Setup, train: Range<usize>, progress: &dyn Fn(&str)) -> Result<Tuned> {
    let cut = train.start + train.len() * 3 / 4;
    if cut <= train.start || cut >= train.end {
        return Err(Error::invalid("--tune", "the training part is too short to be split for tuning"));
    }
    let validation = Setup { range: cut..train.end, ..setup.clone() };
    let quiet = |what: &str| progress(&format!("tuning: {what}"));
    let (reactive, best) = reactive_baselines(series, spec, &validation, &quiet)?;
    let best = reactive.iter().find(|o| o.name == best).expect("the best is one of them");
    let mut tried: Vec<(f64, f64, Outcome)> = Vec::new();
    for q in QUANTILES {
        progress(&format!("tuning: fitting for p{:.0}", q * 100.0));
        let p = PredictiveSpec { mode: PredictiveMode::On, quantile: q, ..predictive.clone() };
        let mut f = forecaster(&p, spec.polling_interval, series.step);
        f.fit(series, train.start..cut).map_err(|e| Error::invalid("--tune", e.to_string()))?;
        let f: Arc<dyn Forecaster> = f.into();
        let mut s = spec.clone();
        s.predictive = Some(p);
        for factor in TARGETS {
            let name = format!("p{:.0}, target {:.0} %", q * 100.0, factor * 100.0);
            progress(&format!("tuning: {name}"));
            tried.push((q, factor, run(series, &Policy { name, spec: s.clone(), forecaster: Some(f.clone()), target_factor: factor }, &validation)?));
        }
    }
    let lean = tried.iter().filter(|(.., o)| o.replica_minutes <= best.replica_minutes).min_by(|a, b| key(&a.2).partial_cmp(&key(&b.2)).unwrap_or(std::cmp::Ordering::Equal));
    let safe = || {
        tried
            .iter()
            .filter(|(.., o)| o.under_provisioned_minutes <= best.under_provisioned_minutes)
            .min_by(|a, b| a.2.replica_minutes.total_cmp(&b.2.replica_minutes))
    };
    let said = |(q, f, o): &(f64, f64, Outcome), why: &str| Tuned {
        quantile: *q,
        target_factor: *f,
        note: format!(
            "on the training part's last quarter, p{:.0} at {:.0} % of the target {why}: {:.1} under-provisioned minutes and {:.0} replica-minutes against {:.1} and {:.0} for {}",
            q * 100.0,
            f * 100.0,
            o.under_provisioned_minutes,
            o.replica_minutes,
            best.under_provisioned_minutes,
            best.replica_minutes,
            best.name
        ),
    };
    Ok(match (lean, safe()) {
        (Some(t), _) => said(t, "was the least under-provisioned within the best reactive baseline's replica-minutes"),
        (None, Some(t)) => said(t, "was the leanest no more under-provisioned than the best reactive baseline"),
        (None, None) => Tuned { quantile: predictive.quantile, target_factor: 1.0, note: "no setting beat the best reactive baseline on the training part: the object as given".into() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuning_reads_the_training_part_only() {
        let spec: ScaledObjectSpec = serde_json::from_value(serde_json::json!({
            "scaleTargetRef": {"name": "web"}, "pollingInterval": 30, "minReplicaCount": 1, "maxReplicaCount": 40,
            "triggers": [{"type": "metrics-api", "metadata": {"url": "http://127.0.0.1:9/m", "valueLocation": "v", "targetValue": "50"}}]
        }))
        .unwrap();
        let p: PredictiveSpec = serde_json::from_value(serde_json::json!({"mode": "on", "model": "linear", "podStartup": 120})).unwrap();
        let wave = |i: usize| 500.0 + 400.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin() + ((i * 7919) % 37) as f64;
        let series = |test: &dyn Fn(usize) -> f64| Series { start: 1_700_000_100, step: 300, values: (0..11 * 288).map(|i| Some(if i < 10 * 288 { wave(i) } else { test(i) })).collect() };
        let setup = Setup { capacity: 60.0, startup: 120.0, range: 10 * 288..11 * 288, initial: 1 };
        let quiet = |_: &str| {};
        let a = tune(&series(&wave), &spec, &p, &setup, 0..10 * 288, &quiet).unwrap();
        // Whatever the test part holds, the same setting is chosen (the forecaster's week of
        // lags needs the training part's first three quarters to be over 7 days).
        let b = tune(&series(&|i| (i % 5) as f64 * 1000.0), &spec, &p, &setup, 0..10 * 288, &quiet).unwrap();
        assert_eq!((a.quantile, a.target_factor, &a.note), (b.quantile, b.target_factor, &b.note));
        assert!(QUANTILES.contains(&a.quantile) && TARGETS.contains(&a.target_factor), "{a:?}");
    }
}
