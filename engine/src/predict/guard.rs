//! The anomaly guard in the live loop: each trigger's metric is checked by the plain guards
//! and, once `minHistory` of good values is there, an Isolation Forest (trained off the
//! async threads, again every [`RETRAIN`](super::live::RETRAIN)); a broken value is kept out
//! of the history and the object's policy (hold, clampStep, fallback, ignore) is applied to
//! the decision, in words. A value that stays "broken" longer than `maxHold` is the new normal.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::anomaly::{Detector, Finding, Guards};
use super::config::{AnomalyPolicy, AnomalySpec};
use crate::decide::Decision;

/// Good values kept per metric (for the guards' window and the forest's training).
const KEEP: usize = 20_000;
/// A reading is isolated only above this quantile of the training points' own scores.
const CALIBRATION: f64 = 0.999;
/// The newest changes scored for that quantile.
const CALIBRATION_POINTS: usize = 2_048;

#[derive(Default)]
struct MetricGuard {
    good: VecDeque<f64>,
    /// The good values with repeats in a row collapsed: what the forest learns from and
    /// judges against (a source updated every 5 minutes and polled every 30 s would
    /// otherwise make every change look rare).
    changes: VecDeque<f64>,
    first_at: Option<i64>,
    detector: Option<Arc<Detector>>,
    training: Option<tokio::task::JoinHandle<Result<Detector, String>>>,
    trained_at: Option<i64>,
    broken_since: Option<i64>,
    /// Identical good values in a row now, and the longest such run that ended: a value held
    /// longer than the source has ever held one (and than `stuck_polls`) is stuck; a square
    /// wave's long plateaus are not.
    run: usize,
    longest_done: usize,
    /// The current run outlasted maxHold once: it is the source's way now.
    run_accepted: bool,
}

impl MetricGuard {
    fn push_good(&mut self, v: f64) {
        if self.good.back() == Some(&v) {
            self.run += 1;
        } else {
            self.longest_done = self.longest_done.max(self.run);
            self.run = 1;
            self.run_accepted = false;
        }
        self.good.push_back(v);
        if self.good.len() > KEEP {
            self.good.pop_front();
        }
        if self.changes.back() != Some(&v) {
            self.changes.push_back(v);
            if self.changes.len() > KEEP {
                self.changes.pop_front();
            }
        }
    }
}

/// What the guard found at one poll, for the decision and its record.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AnomalyNote {
    pub metric: String,
    pub finding: String,
    pub policy: String,
    /// The policy changed the decision.
    pub mitigated: bool,
}

pub struct AnomalyGuard {
    pub spec: AnomalySpec,
    guards: Guards,
    metrics: BTreeMap<String, MetricGuard>,
}

impl AnomalyGuard {
    pub fn new(spec: AnomalySpec) -> AnomalyGuard {
        AnomalyGuard { spec, guards: Guards::default(), metrics: BTreeMap::new() }
    }

    /// Checks one reading of `metric` at unix second `now`; a good one joins the history.
    pub fn check(&mut self, now: i64, metric: &str, value: f64) -> Option<Finding> {
        let (spec, guards) = (&self.spec, &self.guards);
        let m = self.metrics.entry(metric.to_string()).or_default();
        take_detector(m);
        let run_now = if m.good.back() == Some(&value) { m.run + 1 } else { 1 };
        let stuck = (run_now > guards.stuck_polls.max(m.longest_done) && m.changes.len() > 1 && !(run_now > 1 && m.run_accepted)).then_some(Finding::Stuck { value, polls: run_now });
        let recent = m.good.make_contiguous();
        let repeat = m.changes.back() == Some(&value);
        let finding = guards
            .check(recent, value)
            .filter(|f| !matches!(f, Finding::Stuck { .. }))
            .or(stuck)
            .or_else(|| if value.is_finite() && !repeat { m.detector.as_ref()?.check(m.changes.make_contiguous(), value) } else { None });
        let finding = match finding {
            Some(f) if m.broken_since.is_some_and(|t| now - t > spec.max_hold as i64) && value.is_finite() && value >= 0.0 => {
                tracing::info!(metric, "{f} for more than {} s: taken as the new normal", spec.max_hold);
                if let Finding::Stuck { .. } = f {
                    m.run_accepted = true;
                }
                None
            }
            other => other,
        };
        match &finding {
            Some(f) => {
                m.broken_since.get_or_insert(now);
                // An isolated value is still the context the next change is judged in (else each
                // one after it looks further off, and one odd value flags a whole stretch); it
                // stays out of the good history the plain guards compare against.
                if matches!(f, Finding::Isolated { .. }) && m.changes.back() != Some(&value) {
                    m.changes.push_back(value);
                    if m.changes.len() > KEEP {
                        m.changes.pop_front();
                    }
                }
            }
            None => {
                m.broken_since = None;
                m.push_good(value);
                m.first_at.get_or_insert(now);
            }
        }
        let span = m.first_at.map_or(0, |t| now - t);
        let due = m.trained_at.is_none_or(|t| now - t >= super::live::RETRAIN);
        if m.training.is_none() && due && span >= spec.min_history as i64 && m.changes.len() >= 128 {
            m.trained_at = Some(now);
            let (history, threshold): (Vec<f64>, f64) = (m.changes.iter().copied().collect(), spec.threshold);
            let train = move || {
                let mut d = Detector::train(&history, 30, threshold, 100)?;
                d.calibrate(&history[history.len().saturating_sub(CALIBRATION_POINTS)..], CALIBRATION);
                Ok(d)
            };
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => m.training = Some(rt.spawn_blocking(train)),
                // A replay runs at full speed off any runtime: train in line.
                Err(_) => match train() {
                    Ok(d) => m.detector = Some(Arc::new(d)),
                    Err(e) => tracing::warn!("anomaly detector not trained: {e}"),
                },
            }
        }
        finding
    }

    /// Takes `values` (unix second, value; oldest first) as `metric`'s good history without
    /// judging them, and trains the forest on them now if they span `minHistory` (a replay's
    /// training part; the live loop learns as it polls).
    pub fn warm(&mut self, metric: &str, values: &[(i64, f64)]) {
        let m = self.metrics.entry(metric.to_string()).or_default();
        for &(t, v) in values.iter().filter(|(_, v)| v.is_finite() && *v >= 0.0) {
            m.first_at.get_or_insert(t);
            m.push_good(v);
        }
        let (Some(first), Some(&(last, _))) = (m.first_at, values.last()) else { return };
        if last - first >= self.spec.min_history as i64 && m.changes.len() >= 128 {
            let history: Vec<f64> = m.changes.iter().copied().collect();
            if let Ok(mut d) = Detector::train(&history, 30, self.spec.threshold, 100) {
                d.calibrate(&history[history.len().saturating_sub(CALIBRATION_POINTS)..], CALIBRATION);
                m.detector = Some(Arc::new(d));
                m.trained_at = Some(last);
            }
        }
    }

    /// The policy as the spec spells it (`hold`, `clampStep`, …): the metrics' label.
    pub fn policy_name(&self) -> String {
        serde_json::to_value(self.spec.policy).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }

    /// Applies the policy for `finding` on `metric` to `decision` (made from the broken value),
    /// given the target's replicas now, the state before this poll and `spec.fallback.replicas`.
    pub fn mitigate(&self, metric: &str, finding: &Finding, decision: &mut Decision, current: i32, before: &crate::decide::State, fallback: Option<i32>) -> AnomalyNote {
        let policy = self.spec.policy;
        let mut note = AnomalyNote { metric: metric.to_string(), finding: finding.to_string(), policy: self.policy_name(), mitigated: true };
        let said = format!("{finding} on {metric}");
        match policy {
            AnomalyPolicy::Hold => {
                // As if this poll never happened: the replicas and the loop's state stay.
                decision.state = before.clone();
                decision.replicas = current;
                decision.explanation = format!("{said}: held at {current} (anomaly policy hold)");
            }
            AnomalyPolicy::ClampStep => {
                let step = self.spec.step;
                let want = decision.replicas;
                decision.replicas = want.clamp(current - step, current + step).max(0);
                decision.explanation = format!("{said}: {} asked {want}, moved at most {step} to {} (anomaly policy clampStep)", decision.explanation, decision.replicas);
            }
            AnomalyPolicy::Fallback => {
                let n = fallback.unwrap_or(current);
                decision.state = before.clone();
                decision.replicas = n;
                decision.explanation = format!("{said}: fallback replicas {n} (anomaly policy fallback)");
            }
            AnomalyPolicy::Ignore => {
                note.mitigated = false;
                decision.explanation = format!("{}; {said} (anomaly policy ignore: decided as usual)", decision.explanation);
            }
        }
        note
    }

    /// The forest's threshold for `metric` once it is trained (after calibration).
    pub fn threshold(&self, metric: &str) -> Option<f64> {
        Some(self.metrics.get(metric)?.detector.as_ref()?.threshold)
    }

    /// The newest good value of `metric`.
    pub fn last_good(&self, metric: &str) -> Option<f64> {
        self.metrics.get(metric)?.good.back().copied()
    }

    /// Whether a trained forest guards `metric` (the plain guards always do).
    pub fn has_detector(&mut self, metric: &str) -> bool {
        self.metrics.get_mut(metric).is_some_and(|m| {
            take_detector(m);
            m.detector.is_some()
        })
    }
}

fn take_detector(m: &mut MetricGuard) {
    if !m.training.as_ref().is_some_and(|t| t.is_finished()) {
        return;
    }
    match m.training.take().and_then(futures::FutureExt::now_or_never) {
        Some(Ok(Ok(d))) => m.detector = Some(Arc::new(d)),
        Some(Ok(Err(e))) => tracing::warn!("anomaly detector not trained: {e}"),
        Some(Err(e)) => tracing::warn!("anomaly detector training stopped: {e}"),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Phase, Rule, State};

    fn guard(policy: &str) -> AnomalyGuard {
        AnomalyGuard::new(serde_json::from_value(serde_json::json!({"policy": policy, "minHistory": 60, "maxHold": 120})).unwrap())
    }

    fn decision(replicas: i32) -> Decision {
        let mut state = State::new(chrono::Utc::now());
        state.phase = Phase::Active;
        Decision { state, replicas, rule: Rule::ScaleToMetric, explanation: "metric / 20 per replica".into() }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_policy_says_what_it_did_and_a_lasting_change_becomes_the_new_normal() {
        let mut g = guard("hold");
        let t0 = 1_700_000_000;
        for k in 0..300 {
            assert!(g.check(t0 + k, "rps", 340.0 + (k % 13) as f64).is_none());
        }
        let spike = g.check(t0 + 300, "rps", 34_000.0).expect("a ×100 spike");
        let before = decision(6).state;
        let mut d = decision(12);
        let note = g.mitigate("rps", &spike, &mut d, 6, &before, None);
        assert_eq!(d.replicas, 6);
        assert!(note.mitigated && d.explanation.contains("is ×9") && d.explanation.ends_with("held at 6 (anomaly policy hold)"), "{}", d.explanation);
        assert!(g.check(t0 + 301, "rps", f64::NAN).is_some() && g.check(t0 + 302, "rps", 0.0).is_some(), "NaN and a fall to zero");

        let mut c = guard("clampStep");
        c.metrics = std::mem::take(&mut g.metrics);
        let mut d = decision(12);
        c.mitigate("rps", &spike, &mut d, 6, &before, None);
        assert_eq!(d.replicas, 7, "{}", d.explanation);
        let mut d = decision(12);
        c.spec.policy = AnomalyPolicy::Fallback;
        c.mitigate("rps", &spike, &mut d, 6, &before, Some(3));
        assert_eq!(d.replicas, 3, "{}", d.explanation);
        let mut d = decision(12);
        c.spec.policy = AnomalyPolicy::Ignore;
        assert!(!c.mitigate("rps", &spike, &mut d, 6, &before, None).mitigated);
        assert_eq!(d.replicas, 12);

        // Still ×100 two minutes on: a real surge, taken as the new normal.
        assert!(c.check(t0 + 330, "rps", 34_000.0).is_some());
        assert!(c.check(t0 + 430, "rps", 34_000.0).is_none(), "past maxHold");
        // NaN never becomes normal.
        assert!(c.check(t0 + 431, "rps", f64::NAN).is_some() && c.check(t0 + 900, "rps", f64::NAN).is_some());

        // After minHistory a forest guards the metric too.
        let started = std::time::Instant::now();
        while !c.has_detector("rps") {
            assert!(started.elapsed() < std::time::Duration::from_secs(30), "no detector");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
#[cfg(test)]
mod false_alarms {
    /// A daily cycle with noise, updated every 5 minutes and polled every 30 s for ten
    /// days: the forest (trained on changes only, threshold calibrated on its own history)
    /// flags well under one update a day, and nothing else fires.
    #[test]
    fn a_plateau_as_long_as_the_sources_usual_ones_is_not_stuck() {
        let mut g = super::AnomalyGuard::new(serde_json::from_value(serde_json::json!({"policy": "hold", "minHistory": 999_999, "maxHold": 120})).unwrap());
        // A square wave: 100 polls at 20, 100 at 80, … (an on/off load).
        let level = |k: i64| if (k / 100) % 2 == 0 { 20.0 } else { 80.0 };
        let wave: Vec<(i64, f64)> = (0..1_000).map(|k| (k, level(k))).collect();
        g.warm("m", &wave);
        for k in 1_000..1_400 {
            assert!(g.check(k, "m", level(k)).is_none(), "poll {k}");
        }
        // Then 20 from poll 1,500 on, held longer than any plateau before: stuck from the run's
        // poll 101 until maxHold (120 s here), then the source's way while it lasts.
        let flagged: Vec<i64> = (1_500..1_900).filter(|&k| g.check(k, "m", 20.0).is_some()).collect();
        assert!(!flagged.is_empty() && flagged[0] == 1_600 && flagged.len() <= 122, "{flagged:?}");
        assert!(flagged.windows(2).all(|w| w[1] == w[0] + 1), "one stretch: {flagged:?}");
    }

    #[test]
    fn a_clean_cycle_polled_faster_than_it_updates_raises_few_alarms() {
        let mut g = super::AnomalyGuard::new(serde_json::from_value(serde_json::json!({"policy": "hold", "minHistory": 3600})).unwrap());
        let mut flagged = 0;
        for i in 0..(10 * 288) {
            let v = (500.0 + 400.0 * ((i as f64) * std::f64::consts::TAU / 288.0).sin() + ((i * 7919) % 37) as f64).round();
            for k in 0..10 {
                if let Some(f) = g.check(i * 300 + k * 30, "m", v) {
                    assert!(matches!(f, super::Finding::Isolated { .. }), "{f}");
                    flagged += 1;
                }
            }
        }
        assert!(flagged < 70, "{flagged} polls flagged in 10 days (10 polls per update)");
    }
}
