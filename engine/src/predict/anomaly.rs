//! Is a new metric value broken? Plain guards first (not a number, negative, stuck for N
//! polls, a jump ×k off the typical value), then an Isolation Forest on features that make a
//! spike stand out (ratios to the rolling median and max, a z-score, the step from the last
//! value): a split is drawn inside a node's training range, so raw values far outside it are
//! not isolated early, ratios are.

use extended_isolation_forest::{Forest, ForestOptions};
use serde::{Deserialize, Serialize};

/// Features per scored point.
const N: usize = 4;

/// Why a value was taken for broken.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    NotANumber,
    Negative(f64),
    /// The same value for this many polls in a row while it used to move.
    Stuck { value: f64, polls: usize },
    /// `value` is `ratio` × the `typical` (rolling median) one.
    Jump { value: f64, ratio: f64, typical: f64 },
    /// `value` fell at once to under 1/k of the typical one (a source that went blank).
    Drop { value: f64, typical: f64 },
    /// The forest's score above the threshold.
    Isolated { value: f64, typical: f64, score: f64, threshold: f64 },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::NotANumber => write!(f, "metric is not a number"),
            Finding::Negative(v) => write!(f, "metric {v} is negative"),
            Finding::Stuck { value, polls } => write!(f, "metric stuck at {value} for {polls} polls"),
            Finding::Jump { value, ratio, typical } => write!(f, "metric {value} is ×{ratio:.0} the typical {typical}"),
            Finding::Drop { value, typical } => write!(f, "metric {value} fell at once from the typical {typical}"),
            Finding::Isolated { value, typical, score, threshold } => {
                write!(f, "metric {value} is ×{:.1} the typical {typical} (score {score:.2} > {threshold:.2})", value / typical.max(f64::EPSILON))
            }
        }
    }
}

/// The plain guards' settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Guards {
    /// Polls with exactly the same value, after the window moved, that count as stuck.
    pub stuck_polls: usize,
    /// A value this many times the rolling median (or 1/k of it) is a jump.
    pub jump_ratio: f64,
    /// Values in the rolling window the guards compare against.
    pub window: usize,
}

impl Default for Guards {
    fn default() -> Self {
        Guards { stuck_polls: 30, jump_ratio: 20.0, window: 60 }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl Guards {
    /// Checks `value` against the recent good values `recent` (oldest first).
    pub fn check(&self, recent: &[f64], value: f64) -> Option<Finding> {
        if !value.is_finite() {
            return Some(Finding::NotANumber);
        }
        if value < 0.0 {
            return Some(Finding::Negative(value));
        }
        let window = &recent[recent.len().saturating_sub(self.window)..];
        if window.len() < self.window / 2 {
            return None; // too little history to call anything odd
        }
        let typical = median(window);
        // A jump either way, relative to a typical value that is not itself ~0.
        let floor = 1.0;
        if typical.max(floor) * self.jump_ratio < value {
            return Some(Finding::Jump { value, ratio: value / typical.max(floor), typical });
        }
        // A fall to under 1/k straight from a normal value; a source draining step by step
        // (a queue emptying) passes through the values between and is not one.
        let last = window.last().copied().unwrap_or(typical);
        if typical >= 10.0 * floor && value * self.jump_ratio < typical && last > typical / 4.0 {
            return Some(Finding::Drop { value, typical });
        }
        let tail = &window[window.len().saturating_sub(self.stuck_polls)..];
        let moved_before = window.iter().any(|v| (v - window[0]).abs() > f64::EPSILON);
        if tail.len() >= self.stuck_polls && moved_before && tail.iter().all(|v| (v - value).abs() <= f64::EPSILON) {
            // Stuck exactly: a source that stopped updating (stuck at zero is the usual one).
            let before = &window[..window.len() - tail.len()];
            if before.iter().any(|v| (v - value).abs() > f64::EPSILON) {
                return Some(Finding::Stuck { value, polls: tail.len() + 1 });
            }
        }
        None
    }
}

/// The scored features of `value` given the `window` before it.
fn features(window: &[f64], value: f64) -> [f64; N] {
    let med = median(window).max(1.0);
    let max = window.iter().copied().fold(1.0, f64::max);
    let mean = window.iter().sum::<f64>() / window.len().max(1) as f64;
    let sd = (window.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / window.len().max(1) as f64).sqrt().max(1.0);
    let last = window.last().copied().unwrap_or(value).max(1.0);
    let raw = [(value.max(0.0) + 1.0).ln() - (med + 1.0).ln(), (value.max(0.0) + 1.0).ln() - (max + 1.0).ln(), (value - mean) / sd, (value.max(0.0) + 1.0).ln() - (last + 1.0).ln()];
    // Rounded to 1e-6: the forest draws each split uniformly between a node's min and max,
    // and rand's uniform sampler all but never returns for two values an ulp apart (a
    // noiseless series gives such pairs); rounded, they are equal or far enough apart.
    raw.map(|x| if x.is_finite() { (x * 1e6).round() / 1e6 } else { 0.0 })
}

/// An Isolation Forest over a metric's windowed features, with its threshold.
#[derive(Serialize, Deserialize)]
pub struct Detector {
    forest: Forest<f64, N>,
    pub window: usize,
    pub threshold: f64,
}

impl Detector {
    /// Trains on every point of `history` that has `window` values before it.
    pub fn train(history: &[f64], window: usize, threshold: f64, seed_trees: usize) -> Result<Detector, String> {
        let points: Vec<[f64; N]> = (window..history.len()).map(|i| features(&history[i - window..i], history[i])).collect();
        if points.len() < 64 {
            return Err(format!("{} points with {window} before them; 64 needed to train the anomaly detector", points.len()));
        }
        // Depth capped at log2(sample) as in the original algorithm: identical points (a flat
        // metric) can never be isolated, and uncapped trees never stop growing on them.
        let sample_size = 256.min(points.len());
        let depth = (sample_size as f64).log2().ceil() as usize;
        let options = ForestOptions { n_trees: seed_trees.max(10), sample_size, max_tree_depth: Some(depth), extension_level: 1 };
        let forest = Forest::from_slice(&points, &options).map_err(|e| format!("isolation forest: {e:?}"))?;
        Ok(Detector { forest, window, threshold })
    }

    /// Raises the threshold to the `q` quantile of the scores of the training points
    /// themselves (at least the one given): a live reading is isolated only when it is
    /// stranger than nearly all the history the forest learned from, whatever the metric's
    /// shape (a smooth daily cycle scores its own peaks near 0.65).
    pub fn calibrate(&mut self, history: &[f64], q: f64) {
        let mut scores: Vec<f64> = (self.window..history.len()).map(|i| self.forest.score(&features(&history[i - self.window..i], history[i]))).collect();
        if !scores.is_empty() {
            self.threshold = self.threshold.max(super::forecast::quantile(&mut scores, q));
        }
    }

    /// The forest's score (0–1; above ~0.5 unusual) of `value` after `recent`.
    pub fn score(&self, recent: &[f64], value: f64) -> f64 {
        let window = &recent[recent.len().saturating_sub(self.window)..];
        self.forest.score(&features(window, value))
    }

    /// A finding when `value` scores above the threshold.
    pub fn check(&self, recent: &[f64], value: f64) -> Option<Finding> {
        let score = self.score(recent, value);
        (score > self.threshold).then(|| Finding::Isolated { value, typical: median(&recent[recent.len().saturating_sub(self.window)..]), score, threshold: self.threshold })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(n: usize) -> Vec<f64> {
        (0..n).map(|i| 300.0 + 100.0 * ((i as f64) * std::f64::consts::TAU / 1440.0).sin() + ((i * 7919) % 23) as f64).collect()
    }

    #[test]
    fn the_plain_guards_name_what_they_saw() {
        let g = Guards::default();
        let recent = daily(200);
        assert_eq!(g.check(&recent, f64::NAN), Some(Finding::NotANumber));
        assert_eq!(g.check(&recent, -1.0), Some(Finding::Negative(-1.0)));
        let Some(Finding::Jump { ratio, .. }) = g.check(&recent, 41_000.0) else { panic!("a ×100 spike is a jump") };
        assert!(ratio > 50.0);
        assert!(g.check(&recent, 350.0).is_none(), "a normal value");
        // Stuck at zero after moving: 30 polls of 0.
        let mut stuck = recent.clone();
        stuck.extend(std::iter::repeat_n(0.0, 30));
        assert_eq!(g.check(&stuck, 0.0), Some(Finding::Stuck { value: 0.0, polls: 31 }));
        assert!(g.check(&recent[..10], 41_000.0).is_none(), "too little history to judge");
        // Straight from ~300 to 0: a blank source; a queue draining step by step is not one.
        assert!(matches!(g.check(&recent, 0.0), Some(Finding::Drop { value: 0.0, .. })));
        let mut draining = recent.clone();
        draining.extend([150.0, 60.0, 12.0]);
        assert!(g.check(&draining, 0.0).is_none(), "{:?}", g.check(&draining, 0.0));
        assert_eq!(Finding::Jump { value: 41_000.0, ratio: 120.0, typical: 340.0 }.to_string(), "metric 41000 is ×120 the typical 340");
    }

    #[test]
    fn the_forest_scores_a_spike_above_normal_values() {
        let history = daily(5_000);
        let d = Detector::train(&history, 30, 0.65, 100).unwrap();
        let recent = &history[..4_000];
        let normal = d.score(recent, history[4_000]);
        let spike = d.score(recent, history[3_999] * 8.0);
        assert!(spike > normal + 0.1, "spike {spike:.2} vs normal {normal:.2}");
        assert!(d.check(recent, history[3_999] * 8.0).is_some());
        assert!(d.check(recent, history[4_000]).is_none());
    }

    #[test]
    fn a_flat_metric_trains_and_a_step_off_it_scores_higher() {
        let flat = vec![42.0; 2_000];
        let d = Detector::train(&flat, 30, 0.65, 50).expect("a flat history trains (it used to grow trees forever)");
        assert!(d.score(&flat, 4_200.0) > d.score(&flat, 42.0));
    }
}
