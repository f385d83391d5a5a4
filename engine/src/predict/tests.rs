//! The learned forecasters on series whose answer is known.

use super::features::{FeatureSpec, Series};
use super::forecast::{Forecaster, SeasonalNaive, score};
use super::forest::{ForestForecaster, ForestParams};
use super::linear::LinearForecaster;

/// Two weeks of a pure daily sine at 5-minute slots (level 100, amplitude 50).
fn sine() -> Series {
    let day = 288.0;
    Series { start: 1_700_000_000 - 1_700_000_000 % 300, step: 300, values: (0..4032).map(|i| Some(100.0 + 50.0 * (i as f64 * std::f64::consts::TAU / day).sin())).collect() }
}

#[test]
fn a_pure_sine_is_learned_to_under_5_percent_mape() {
    let s = sine();
    let (train, test) = (0..3000, 3000..4020);
    let spec = FeatureSpec::standard(6);
    let mut forest = ForestForecaster::new(spec.clone(), ForestParams { trees: 20, ..Default::default() });
    forest.fit(&s, train.clone()).unwrap();
    let f = score(&forest, &s, test.clone());
    assert!(f.points > 900 && f.mape < 5.0, "forest: {f:?}");
    let mut linear = LinearForecaster::new(spec, 0.9);
    linear.fit(&s, train.clone()).unwrap();
    let l = score(&linear, &s, test.clone());
    assert!(l.mape < 5.0, "linear: {l:?}");
    let mut naive = SeasonalNaive::new("seasonal-naive-day", 288, 6, 0.9);
    naive.fit(&s, train).unwrap();
    assert!(score(&naive, &s, test).mape < 0.01, "a day back is exact on a pure daily sine");
}

#[test]
fn a_forest_round_trips_through_serde_with_the_same_predictions() {
    let s = sine();
    let mut forest = ForestForecaster::new(FeatureSpec::standard(6), ForestParams { trees: 10, ..Default::default() });
    forest.fit(&s, 0..3000).unwrap();
    let stored = serde_json::to_vec(forest.fitted.as_ref().unwrap()).unwrap();
    let restored = ForestForecaster { fitted: Some(serde_json::from_slice(&stored).unwrap()), ..ForestForecaster::new(FeatureSpec::standard(6), ForestParams::default()) };
    for at in [3100, 3500, 4000] {
        assert_eq!(forest.predict(&s, at), restored.predict(&s, at));
    }
    let f = forest.predict(&s, 3500).unwrap();
    assert!(f.upper >= f.mean, "the upper quantile is above the mean");
}

#[test]
fn too_little_history_is_an_error_that_says_so() {
    let s = Series { start: 0, step: 60, values: vec![Some(1.0); 100] };
    let err = ForestForecaster::new(FeatureSpec::standard(5), ForestParams::default()).fit(&s, 0..100).unwrap_err();
    assert!(err.to_string().contains("usable points"), "{err}");
}
