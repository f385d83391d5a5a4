//! One trait every forecaster speaks (fit on a window of history, predict h slots ahead with
//! an upper quantile), the seasonal-naive baselines, and how forecasts are scored.

use super::features::Series;

/// The load expected `horizon` slots after the point it was made at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Forecast {
    pub mean: f64,
    /// The upper quantile the model was fitted for (capacity is planned for it).
    pub upper: f64,
}

/// A failed fit, said in words (too little history, a numeric failure).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FitError(pub String);

/// Fit on a window of a series, then forecast `horizon` slots ahead of any point.
pub trait Forecaster: Send + Sync {
    fn name(&self) -> &str;
    fn horizon(&self) -> usize;
    /// Learns from the slots in `range` (targets inside the range only).
    fn fit(&mut self, series: &Series, range: std::ops::Range<usize>) -> Result<(), FitError>;
    /// The forecast for `at + horizon` from data at or before `at`; `None` when the data it
    /// needs is missing there.
    fn predict(&self, series: &Series, at: usize) -> Option<Forecast>;
    /// The fitted model as bytes for SQL ([`super::stored`]), restored exactly by `decode`.
    fn encode(&self) -> Result<Vec<u8>, String>;
}

/// Mean absolute error and mean absolute percentage error (over points with a non-zero
/// actual) of the forecasts for the slots in `range`, with how many points were scored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    pub mae: f64,
    pub mape: f64,
    pub points: usize,
}

/// Scores `f` on forecasts made at every slot of `range` whose target is known.
pub fn score(f: &dyn Forecaster, series: &Series, range: std::ops::Range<usize>) -> Score {
    let (mut abs, mut pct, mut n, mut n_pct) = (0.0, 0.0, 0usize, 0usize);
    for at in range {
        let Some(actual) = series.at((at + f.horizon()) as isize) else { continue };
        let Some(forecast) = f.predict(series, at) else { continue };
        let err = (forecast.mean - actual).abs();
        abs += err;
        n += 1;
        if actual.abs() > f64::EPSILON {
            pct += err / actual.abs();
            n_pct += 1;
        }
    }
    Score { mae: abs / n.max(1) as f64, mape: 100.0 * pct / n_pct.max(1) as f64, points: n }
}

/// The `q` quantile (0–1) of `values` (sorted in place), nearest rank.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Tomorrow looks like today (or next week like this week): the value one `period` before
/// the target; the upper quantile adds the `q` quantile of its errors on the fitted window.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SeasonalNaive {
    name: String,
    period: usize,
    horizon: usize,
    q: f64,
    margin: f64,
}

impl SeasonalNaive {
    /// `period_slots`: a day or a week in slots of the series it will see.
    pub fn new(name: &str, period_slots: usize, horizon: usize, q: f64) -> SeasonalNaive {
        SeasonalNaive { name: name.to_string(), period: period_slots.max(horizon), horizon, q, margin: 0.0 }
    }
}

impl Forecaster for SeasonalNaive {
    fn name(&self) -> &str {
        &self.name
    }

    fn horizon(&self) -> usize {
        self.horizon
    }

    fn fit(&mut self, series: &Series, range: std::ops::Range<usize>) -> Result<(), FitError> {
        let mut errors: Vec<f64> = range
            .filter(|t| t + self.horizon < series.len())
            .filter_map(|t| Some(series.at((t + self.horizon) as isize)? - self.predict(series, t)?.mean))
            .collect();
        if errors.is_empty() {
            return Err(FitError(format!("{}: no point in the window has the value one period back", self.name)));
        }
        self.margin = quantile(&mut errors, self.q).max(0.0);
        Ok(())
    }

    fn predict(&self, series: &Series, at: usize) -> Option<Forecast> {
        let mean = series.at((at + self.horizon) as isize - self.period as isize)?;
        Some(Forecast { mean, upper: mean + self.margin })
    }

    fn encode(&self) -> Result<Vec<u8>, String> {
        super::stored::encode(&super::stored::StoredRef::SeasonalNaive(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonal_naive_repeats_the_period_and_is_scored() {
        let values: Vec<Option<f64>> = (0..400).map(|i| Some(((i % 100) as f64) + if i >= 300 { 5.0 } else { 0.0 })).collect();
        let s = Series { start: 0, step: 60, values };
        let mut f = SeasonalNaive::new("seasonal-naive", 100, 3, 0.9);
        f.fit(&s, 100..290).unwrap();
        assert_eq!(f.predict(&s, 150).unwrap().mean, 53.0);
        let sc = score(&f, &s, 100..290);
        assert_eq!((sc.mae, sc.points), (0.0, 190));
        // After the level shift at 300 the forecast is 5 low.
        assert_eq!(score(&f, &s, 300..390).mae, 5.0);
        assert!(f.predict(&s, 10).is_none(), "nothing a period back");
    }

    #[test]
    fn quantile_is_the_nearest_rank() {
        assert_eq!(quantile(&mut [5.0, 1.0, 3.0, 2.0, 4.0], 0.9), 5.0);
        assert_eq!(quantile(&mut [5.0, 1.0, 3.0, 2.0, 4.0], 0.5), 3.0);
        assert_eq!(quantile(&mut [], 0.5), 0.0);
    }
}
