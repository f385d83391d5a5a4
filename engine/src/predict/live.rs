//! The forecast in the live loop: an object's predictor keeps its first trigger's metric on a
//! minute grid, trains its model off the scaling path (`spawn_blocking`) once it has
//! `minHistory` and again every [`RETRAIN`], and blends the forecast into the decision
//! (`on`) or only says what it would have done (`forecastOnly`).

use std::sync::Arc;

use super::blend::{Bounds, blend};
use super::config::{PredictiveMode, PredictiveSpec};
use super::features::Series;
use super::forecast::{Forecast, Forecaster};
use crate::decide::{Decision, Phase};

/// How often a model is trained again.
pub const RETRAIN: i64 = 6 * 3600;
/// The grid the live history is kept on.
const STEP: i64 = 60;

/// One training at a time per process: a thousand models due together queue here instead of
/// taking every core from the polls.
static TRAINING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

pub struct Predictor {
    pub spec: PredictiveSpec,
    polling: u32,
    history: Series,
    counts: Vec<u32>,
    model: Option<Arc<dyn Forecaster>>,
    training: Option<tokio::task::JoinHandle<Result<Box<dyn Forecaster>, String>>>,
    trained_at: Option<i64>,
    /// Models trained so far (the one in use is this number).
    pub version: u32,
    /// The last training failure, said in words.
    pub last_error: Option<String>,
}

impl Predictor {
    pub fn new(spec: PredictiveSpec, polling: u32) -> Predictor {
        Predictor { spec, polling, history: Series { start: 0, step: STEP, values: Vec::new() }, counts: Vec::new(), model: None, training: None, trained_at: None, version: 0, last_error: None }
    }

    /// Adds a reading at unix second `t` (readings in one minute are averaged).
    pub fn observe(&mut self, t: i64, value: f64) {
        if !value.is_finite() {
            return;
        }
        if self.history.values.is_empty() {
            self.history.start = t - t.rem_euclid(STEP);
        }
        let Ok(slot) = usize::try_from((t - self.history.start).div_euclid(STEP)) else { return };
        if slot >= self.history.values.len() {
            self.history.values.resize(slot + 1, None);
            self.counts.resize(slot + 1, 0);
        }
        let n = self.counts[slot] as f64;
        self.history.values[slot] = Some(self.history.values[slot].map_or(value, |m| (m * n + value) / (n + 1.0)));
        self.counts[slot] += 1;
        // Keep `history` seconds (and a slot for the one in progress).
        let keep = (self.spec.history as i64 / STEP) as usize + 1;
        if self.history.values.len() > keep {
            let drop = self.history.values.len() - keep;
            self.history.values.drain(..drop);
            self.counts.drain(..drop);
            self.history.start += drop as i64 * STEP;
        }
    }

    fn span(&self) -> i64 {
        self.history.values.len() as i64 * STEP
    }

    /// Takes up a finished training; starts one when due. Returns whether a new model came in.
    pub fn poll_training(&mut self, now: i64) -> bool {
        let mut swapped = false;
        if self.training.as_ref().is_some_and(|t| t.is_finished()) {
            let done = self.training.take().expect("checked");
            match futures::FutureExt::now_or_never(done) {
                Some(Ok(Ok(model))) => {
                    self.model = Some(Arc::from(model));
                    self.version += 1;
                    self.last_error = None;
                    swapped = true;
                }
                Some(Ok(Err(e))) => self.last_error = Some(e),
                Some(Err(e)) => self.last_error = Some(format!("training stopped: {e}")),
                None => {}
            }
        }
        let due = self.trained_at.is_none_or(|at| now - at >= RETRAIN);
        if self.training.is_none() && due && self.span() >= self.spec.min_history as i64 {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                self.trained_at = Some(now);
                let (spec, polling, history) = (self.spec.clone(), self.polling, self.history.clone());
                self.training = Some(rt.spawn(async move {
                    let _one = TRAINING.acquire().await.map_err(|e| e.to_string())?;
                    tokio::task::spawn_blocking(move || train(&spec, polling, &history)).await.map_err(|e| format!("training stopped: {e}"))?
                }));
            }
        }
        swapped
    }

    /// The forecast from the last complete minute, if a model is in use and the data it needs is there.
    pub fn forecast(&self) -> Option<Forecast> {
        let last_complete = self.history.values.len().checked_sub(2)?;
        self.model.as_ref()?.predict(&self.history, last_complete)
    }

    /// Blends the forecast into `decision` (mode `on`) or says what it would do
    /// (`forecastOnly`). Never while paused, overridden, idle or on a fallback.
    pub fn adjust(&self, decision: &mut Decision, current: i32, target: f64, min: i32, max: i32) {
        let Some(f) = self.forecast() else { return };
        let acting = matches!(decision.state.phase, Phase::Active | Phase::CoolingDown) && decision.replicas > 0 && decision.rule != crate::decide::Rule::Fallback;
        if !acting || self.spec.mode == PredictiveMode::Off {
            return;
        }
        let bounds = Bounds { reactive: decision.replicas, current, target, min, max, max_scale_up_step: self.spec.max_scale_up_step };
        let b = blend(f, self.spec.quantile > 0.5, bounds);
        let horizon = self.spec.horizon_secs(self.polling);
        let said = format!(
            "forecast {:.1} (p{:.0} {:.1}) in {horizon} s asks {} (model {} v{})",
            f.mean,
            self.spec.quantile * 100.0,
            f.upper,
            b.predicted,
            self.model.as_ref().map_or("-", |m| m.name()),
            self.version
        );
        match (self.spec.mode, b.changed) {
            (PredictiveMode::On, true) => {
                decision.explanation = format!("{}; {said}: raised from {} to {}", decision.explanation, decision.replicas, b.replicas);
                decision.replicas = b.replicas;
            }
            (PredictiveMode::ForecastOnly, true) => decision.explanation = format!("{}; {said}: would raise to {} (forecastOnly)", decision.explanation, b.replicas),
            _ => decision.explanation = format!("{}; {said}: no change", decision.explanation),
        }
    }
}

/// Trains the model `spec` asks for on `history` (blocking; run off the async threads).
pub fn train(spec: &PredictiveSpec, polling: u32, history: &Series) -> Result<Box<dyn Forecaster>, String> {
    let mut f = super::compare::forecaster_for_history(spec, polling, history);
    f.fit(history, 0..history.len()).map_err(|e| e.to_string())?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Rule, State};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn learns_from_what_it_sees_then_raises_the_reactive_answer_and_says_so() {
        let spec: PredictiveSpec = serde_json::from_value(serde_json::json!({"mode": "on", "minHistory": 10800, "history": 86400, "quantile": 0.5, "podStartup": 60})).unwrap();
        let mut p = Predictor::new(spec, 30);
        let t0 = 1_700_000_040;
        // A 20-minute cycle around 1,000, read every 30 s for 3 hours.
        let load = |t: i64| 1000.0 + 500.0 * ((t - t0) as f64 * std::f64::consts::TAU / 1200.0).sin();
        for k in 0..=360 {
            let t = t0 + k * 30;
            p.observe(t, load(t));
            p.poll_training(t);
        }
        let started = std::time::Instant::now();
        while p.version == 0 {
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "no model: {:?}", p.last_error);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            p.poll_training(t0 + 360 * 30);
        }
        // From the last complete minute, 3 minutes on (horizon 90 s + the minute in progress).
        let f = p.forecast().expect("a forecast");
        let truth = (0..2).map(|h| load(t0 + 182 * 60 + h * 30)).sum::<f64>() / 2.0;
        assert!((f.mean - truth).abs() < 150.0, "forecast {f:?}, truth {truth}");
        let mut state = State::new(chrono::Utc::now());
        state.phase = Phase::Active;
        let mut d = Decision { state, replicas: 1, rule: Rule::ScaleToMetric, explanation: "metric / 100 per replica".into() };
        p.adjust(&mut d, 1, 100.0, 1, 50);
        let want = (f.mean / 100.0).ceil() as i32;
        assert_eq!(d.replicas, want, "{}", d.explanation);
        assert!(d.explanation.contains(&format!("raised from 1 to {want}")) && d.explanation.contains("model random-forest v1"), "{}", d.explanation);
        // forecastOnly: the same words, nothing changed.
        p.spec.mode = PredictiveMode::ForecastOnly;
        let mut d2 = Decision { replicas: 1, explanation: String::new(), ..d };
        p.adjust(&mut d2, 1, 100.0, 1, 50);
        assert_eq!(d2.replicas, 1);
        assert!(d2.explanation.contains(&format!("would raise to {want} (forecastOnly)")), "{}", d2.explanation);
    }

    #[test]
    fn history_is_a_minute_grid_trimmed_to_its_length() {
        let spec: PredictiveSpec = serde_json::from_value(serde_json::json!({"history": 600, "minHistory": 60})).unwrap();
        let mut p = Predictor::new(spec, 15);
        for k in 0..80 {
            p.observe(1_700_000_040 + k * 15, k as f64);
        }
        assert_eq!(p.history.values.len(), 11, "600 s of minutes and the one in progress");
        assert_eq!(p.history.values[10], Some(77.5), "the mean of the readings in the newest minute");
    }
}
