//! A metric's history on a regular grid (gaps stay gaps) and the features a forecaster reads
//! at a point: lags, rolling mean/max/std, time of day and week, the same time one day and
//! one week back — all from data at or before that point.

use ndarray::{Array1, Array2};

/// Samples on a regular grid: `values[i]` is the mean of what fell in
/// `[start + i·step, start + (i+1)·step)`, `None` where nothing did (missing, not zero).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Unix seconds of the first slot.
    pub start: i64,
    /// Seconds per slot.
    pub step: i64,
    pub values: Vec<Option<f64>>,
}

impl Series {
    /// Buckets `(unix seconds, value)` samples (any order) into slots of `step` seconds;
    /// non-finite values count as missing.
    pub fn from_samples(samples: &[(i64, f64)], step: i64) -> Series {
        let step = step.max(1);
        let Some(first) = samples.iter().map(|s| s.0).min() else { return Series { start: 0, step, values: Vec::new() } };
        let last = samples.iter().map(|s| s.0).max().unwrap_or(first);
        let start = first.div_euclid(step) * step;
        let n = ((last - start) / step + 1) as usize;
        let mut sums = vec![(0.0, 0u32); n];
        for (t, v) in samples.iter().filter(|s| s.1.is_finite()) {
            let slot = &mut sums[((t - start) / step) as usize];
            slot.0 += v;
            slot.1 += 1;
        }
        Series { start, step, values: sums.into_iter().map(|(s, c)| (c > 0).then(|| s / c as f64)).collect() }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value at slot `i`, if there is one.
    pub fn at(&self, i: isize) -> Option<f64> {
        usize::try_from(i).ok().and_then(|i| self.values.get(i).copied().flatten())
    }

    /// Unix seconds at the start of slot `i`.
    pub fn time(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Slots per `secs` (at least 1).
    pub fn slots(&self, secs: i64) -> usize {
        (secs / self.step).max(1) as usize
    }
}

/// Which features, for a forecast `horizon` slots ahead.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeatureSpec {
    pub horizon: usize,
    /// Lags in slots back from the point (0 is the point itself).
    pub lags: Vec<usize>,
    /// Rolling windows in slots, ending at the point.
    pub windows: Vec<usize>,
    /// Seasonal lags in seconds: the value this long before the target time.
    pub seasons: Vec<i64>,
    /// Cycles (seconds: a day, a week) whose phase at the target time is a feature (sin, cos).
    pub cycles: Vec<i64>,
}

impl FeatureSpec {
    /// Lags 0–3 and 6, windows of 5, 15 and 60 slots: a sensible set at 1-minute slots.
    pub fn standard(horizon: usize) -> FeatureSpec {
        FeatureSpec { horizon, lags: vec![0, 1, 2, 3, 6], windows: vec![5, 15, 60], seasons: vec![86_400, 7 * 86_400], cycles: vec![86_400, 7 * 86_400] }
    }

    /// The standard set without the seasonal lags and cycles that `history_secs` of history
    /// cannot cover twice (a young object learns without "a week ago" until it has two weeks;
    /// a cycle seen in part only is a trend a linear model would extrapolate).
    pub fn for_history(horizon: usize, history_secs: i64) -> FeatureSpec {
        let mut f = FeatureSpec::standard(horizon);
        f.seasons.retain(|back| 2 * back <= history_secs);
        f.cycles.retain(|period| 2 * period <= history_secs);
        f
    }

    /// How many features a row has.
    pub fn width(&self) -> usize {
        self.lags.len() + 3 * self.windows.len() + 2 * self.cycles.len() + self.seasons.len()
    }

    /// The features at slot `t` for the value at `t + horizon`, from values at slots ≤ `t`
    /// only; `None` when one of them falls on a gap (or before the series).
    pub fn row(&self, s: &Series, t: usize) -> Option<Vec<f64>> {
        let t = t as isize;
        let mut row = Vec::with_capacity(self.width());
        for lag in &self.lags {
            row.push(s.at(t - *lag as isize)?);
        }
        for w in &self.windows {
            let vals: Vec<f64> = (0..*w as isize).filter_map(|k| s.at(t - k)).collect();
            // A window mostly missing says nothing; half present is enough.
            if vals.len() * 2 < *w {
                return None;
            }
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let max = vals.iter().copied().fold(f64::MIN, f64::max);
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            row.extend([mean, max, var.sqrt()]);
        }
        // The calendar of the time forecast (known in advance, not data).
        let target = s.time(t as usize + self.horizon);
        for period in &self.cycles {
            // Unix time 0 was a Thursday: shift by 3 days so a week's phase 0 is Monday.
            let phase = (target + if *period == 7 * 86_400 { 3 * 86_400 } else { 0 }).rem_euclid(*period) as f64 / *period as f64;
            let angle = std::f64::consts::TAU * phase;
            row.extend([angle.sin(), angle.cos()]);
        }
        // The same time one day and one week before the target: at or before t when the
        // horizon is shorter than a day; else the latest value (a gap stays a gap).
        for back in &self.seasons {
            let i = t + self.horizon as isize - s.slots(*back) as isize;
            row.push(s.at(i.min(t))?);
        }
        Some(row)
    }

    /// Every slot `t` in `range` with a full row and a known target at `t + horizon`: the
    /// rows, the targets and the slots they are for.
    pub fn training_set(&self, s: &Series, range: std::ops::Range<usize>) -> (Array2<f64>, Array1<f64>, Vec<usize>) {
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        let mut slots = Vec::new();
        for t in range {
            let Some(y) = s.at((t + self.horizon) as isize) else { continue };
            if let Some(row) = self.row(s, t) {
                rows.extend(row);
                targets.push(y);
                slots.push(t);
            }
        }
        let x = Array2::from_shape_vec((targets.len(), self.width()), rows).expect("rows have the spec's width");
        (x, Array1::from(targets), slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn samples_bucket_into_slots_and_gaps_stay_gaps() {
        let s = Series::from_samples(&[(120, 2.0), (60, 1.0), (75, 3.0), (300, 5.0), (310, f64::NAN)], 60);
        assert_eq!(s.start, 60);
        assert_eq!(s.values, vec![Some(2.0), Some(2.0), None, None, Some(5.0)]);
    }

    #[test]
    fn a_row_on_a_gap_is_none_and_calendar_features_are_bounded() {
        let mut s = Series { start: 0, step: 60, values: (0..20_000).map(|i| Some(i as f64)).collect() };
        let spec = FeatureSpec::standard(5);
        let row = spec.row(&s, 15_000).expect("full history");
        assert_eq!(row.len(), spec.width());
        assert_eq!(&row[..5], &[15_000.0, 14_999.0, 14_998.0, 14_997.0, 14_994.0]);
        assert!(row[spec.lags.len() + 9..spec.lags.len() + 13].iter().all(|v| (-1.0..=1.0).contains(v)));
        s.values[14_999] = None;
        assert!(spec.row(&s, 15_000).is_none(), "lag 1 falls on the gap");
        assert!(spec.row(&s, 30).is_none(), "a week back is before the series");
    }

    proptest! {
        /// No look-ahead: changing anything after t changes no feature at t.
        #[test]
        fn a_feature_at_t_uses_only_data_up_to_t(t in 10_100usize..10_200, horizon in 1usize..30, noise in proptest::collection::vec(-1000.0f64..1000.0, 300)) {
            let base: Vec<Option<f64>> = (0..10_500).map(|i| Some(((i % 97) as f64).sin() * 10.0 + 50.0)).collect();
            let s = Series { start: 1_700_000_000, step: 60, values: base.clone() };
            let mut later = base;
            for (k, v) in noise.iter().enumerate() {
                if let Some(slot) = later.get_mut(t + 1 + k) {
                    *slot = if k % 7 == 0 { None } else { Some(*v) };
                }
            }
            let changed = Series { values: later, ..s.clone() };
            let spec = FeatureSpec::standard(horizon);
            prop_assert_eq!(spec.row(&s, t), spec.row(&changed, t));
        }
    }
}
