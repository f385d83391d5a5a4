//! The forecast in the live loop: an object's predictor keeps its first trigger's metric on a
//! minute grid (seeded from the samples in SQL at start), takes up the stored champion model,
//! trains a challenger off the scaling path (on the low-priority trainer thread) once it has `minHistory` and
//! again every [`RETRAIN`], records every version in SQL and uses a new one only if it beats
//! the champion; it blends the forecast into the decision (`on`) or only says what it would
//! have done (`forecastOnly`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::blend::{Bounds, blend};
use super::champion::{Verdict, train_and_judge};
use super::config::{PredictiveMode, PredictiveSpec, ScaleIn};
use super::features::Series;
use super::forecast::{Forecast, Forecaster};
use crate::decide::{Decision, Phase};
use crate::store::{self, models::NewModelVersion};

/// How often a model is trained again.
pub const RETRAIN: i64 = 6 * 3600;
/// The grid the live history is kept on.
pub const STEP: i64 = 60;


/// Where an object's models and samples are kept.
#[derive(Clone, Debug)]
pub struct ModelSink {
    pub db: DatabaseConnection,
    pub object_id: i32,
}

/// What SQL had for a predictor at start: its history and its champion (if still usable).
struct Restored {
    samples: Vec<(i64, f64)>,
    champion: Option<(Box<dyn Forecaster>, u32, i64, Option<f64>)>,
    note: Option<String>,
}

struct TrainOutcome {
    model: Box<dyn Forecaster>,
    version: u32,
    verdict: Verdict,
}

type Task<T> = tokio::task::JoinHandle<Result<T, String>>;

pub struct Predictor {
    pub spec: PredictiveSpec,
    polling: u32,
    history: Series,
    counts: Vec<u32>,
    model: Option<Arc<dyn Forecaster>>,
    training: Option<Task<TrainOutcome>>,
    restoring: Option<Task<Restored>>,
    restored: bool,
    trained_at: Option<i64>,
    /// The version of the model in use (0: none yet).
    pub version: u32,
    /// The newest version trained (used or not).
    pub trained: u32,
    /// The last training or restore failure, said in words.
    pub last_error: Option<String>,
    /// How the last challenger was judged, in words.
    pub last_verdict: Option<String>,
    /// The validation MAPE of the model in use (its error on data it was not trained on),
    /// exported as `swell_forecast_mape`.
    pub mape: Option<f64>,
    sink: Option<ModelSink>,
    metric: Option<String>,
}

fn to_unix(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_unix(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

impl Predictor {
    /// A predictor; with a sink it starts from SQL (samples and champion) and stores models.
    pub fn new(spec: PredictiveSpec, polling: u32, sink: Option<ModelSink>) -> Predictor {
        Predictor {
            spec,
            polling,
            history: Series { start: 0, step: STEP, values: Vec::new() },
            counts: Vec::new(),
            model: None,
            training: None,
            restoring: None,
            restored: sink.is_none(),
            trained_at: None,
            version: 0,
            trained: 0,
            last_error: None,
            last_verdict: None,
            mape: None,
            sink,
            metric: None,
        }
    }

    /// Adds a reading at unix second `t` (readings in one minute are averaged).
    pub fn observe(&mut self, t: i64, value: f64) {
        self.put(t, value, 1);
    }

    fn put(&mut self, t: i64, value: f64, weight: u32) {
        if !value.is_finite() || weight == 0 {
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
        let (n, w) = (self.counts[slot] as f64, weight as f64);
        self.history.values[slot] = Some(self.history.values[slot].map_or(value, |m| (m * n + value * w) / (n + w)));
        self.counts[slot] += weight;
        // Keep `history` seconds (and a slot for the one in progress).
        let keep = (self.spec.history as i64 / STEP) as usize + 1;
        if self.history.values.len() > keep {
            let drop = self.history.values.len() - keep;
            self.history.values.drain(..drop);
            self.counts.drain(..drop);
            self.history.start += drop as i64 * STEP;
        }
    }

    /// Puts stored samples from before the first minute seen live in front of the history.
    fn merge(&mut self, samples: &[(i64, f64)]) {
        let mine = std::mem::replace(&mut self.history, Series { start: 0, step: STEP, values: Vec::new() });
        let counts = std::mem::take(&mut self.counts);
        let first_live = if mine.values.is_empty() { i64::MAX } else { mine.start };
        for &(t, v) in samples.iter().filter(|(t, _)| *t < first_live) {
            self.put(t, v, 1);
        }
        for (i, (v, n)) in mine.values.iter().zip(&counts).enumerate() {
            if let Some(v) = v {
                self.put(mine.start + i as i64 * STEP, *v, *n);
            }
        }
    }

    fn span(&self) -> i64 {
        self.history.values.len() as i64 * STEP
    }

    /// Whether a model is in use.
    pub fn has_model(&self) -> bool {
        self.model.is_some()
    }

    /// What the predictor has, in words (for pages and the CLI).
    pub fn status(&self) -> String {
        let model = match (&self.model, self.restored) {
            (_, false) => "loading its history and model from SQL".to_string(),
            (Some(m), true) => format!("model {} v{} in use", m.name(), self.version),
            (None, true) if self.training.is_some() => "training its first model".to_string(),
            (None, true) => format!("no model yet: {} of the {} s of history needed", self.span(), self.spec.min_history),
        };
        match (&self.last_error, &self.last_verdict) {
            (Some(e), _) => format!("{model}; last training failed: {e}"),
            (None, Some(v)) => format!("{model}; last training: {v}"),
            _ => model,
        }
    }

    /// Trains again at the next poll (the CLI's and dashboard's "retrain").
    pub fn retrain_now(&mut self) {
        self.trained_at = None;
    }

    /// Uses `model` as version `version` from now on (a rollback).
    pub fn use_model(&mut self, model: Box<dyn Forecaster>, version: u32) {
        self.model = Some(Arc::from(model));
        self.version = version;
    }

    /// Restores from SQL once, takes up a finished training and starts one when due.
    /// `metric`: the name of the first trigger's metric (samples are stored by it). Returns
    /// whether another model came into use.
    pub fn poll_training(&mut self, now: i64, metric: Option<&str>) -> bool {
        if self.metric.is_none() {
            self.metric = metric.map(str::to_string);
        }
        let mut swapped = self.poll_restore(now);
        if !self.restored {
            return swapped;
        }
        if let Some(outcome) = take_finished(&mut self.training, &mut self.last_error) {
            self.trained = self.trained.max(outcome.version);
            let word = if outcome.verdict.promote { "in use" } else { "kept the champion" };
            tracing::info!(version = outcome.version, promoted = outcome.verdict.promote, "model trained: {}", outcome.verdict.reason);
            self.last_verdict = Some(format!("v{} {word}: {}", outcome.version, outcome.verdict.reason));
            if outcome.verdict.promote {
                let scores = &outcome.verdict.challenger;
                self.mape = (scores.points > 0).then_some(scores.mape);
                self.use_model(outcome.model, outcome.version);
                swapped = true;
            }
        }
        let due = self.trained_at.is_none_or(|at| now - at >= RETRAIN);
        if self.training.is_none() && due && self.span() >= self.spec.min_history as i64 {
            self.start_training(now);
        }
        swapped
    }

    fn poll_restore(&mut self, now: i64) -> bool {
        if self.restored {
            return false;
        }
        if self.restoring.is_none() {
            if let (Some(sink), Some(metric), Ok(rt)) = (self.sink.clone(), self.metric.clone(), tokio::runtime::Handle::try_current()) {
                let (spec, polling) = (self.spec.clone(), self.polling);
                self.restoring = Some(rt.spawn(restore(sink, metric, spec, polling, now)));
            }
            return false;
        }
        let Some(r) = take_finished(&mut self.restoring, &mut self.last_error) else {
            // Still loading, or it failed: a failed restore starts from what the loop sees.
            self.restored = self.restoring.is_none();
            return false;
        };
        self.restored = true;
        self.merge(&r.samples);
        if let Some(note) = r.note {
            tracing::info!("{note}");
            self.last_verdict = Some(note);
        }
        match r.champion {
            Some((model, version, at, mape)) => {
                self.mape = mape;
                self.trained = version;
                self.trained_at = Some(at);
                self.use_model(model, version);
                true
            }
            None => false,
        }
    }

    fn start_training(&mut self, now: i64) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        self.trained_at = Some(now);
        let (spec, polling, history, champion) = (self.spec.clone(), self.polling, self.history.clone(), self.model.clone());
        let (sink, metric, next) = (self.sink.clone(), self.metric.clone().unwrap_or_default(), self.trained + 1);
        self.training = Some(rt.spawn(async move {
            // One training at a time per process, on a low-priority thread: a thousand models
            // due together queue there instead of taking the cores from the polls.
            let t = super::trainer::run(move || train_and_judge(&spec, polling, &history, champion.as_deref())).await.map_err(|e| format!("training stopped: {e}"))??;
            let version = match sink {
                None => next,
                Some(sink) => {
                    let row = NewModelVersion {
                        scaled_object_id: sink.object_id,
                        kind: t.model.name().to_string(),
                        metric,
                        horizon_secs: (t.model.horizon() as i64 * STEP) as i32,
                        trained_from: from_unix(t.window.0),
                        trained_to: from_unix(t.window.1),
                        validated_to: from_unix(t.window.2),
                        mae: Some(t.verdict.challenger.mae).filter(|_| t.verdict.challenger.points > 0),
                        mape: Some(t.verdict.challenger.mape).filter(|_| t.verdict.challenger.points > 0),
                        scored_points: t.verdict.challenger.points as i32,
                        champion_mae: t.verdict.champion.map(|s| s.mae),
                        promoted: t.verdict.promote,
                        reason: t.verdict.reason.clone(),
                        model: t.bytes,
                    };
                    store::models::record(&sink.db, row).await.map_err(|e| format!("storing the model: {e}"))? as u32
                }
            };
            Ok(TrainOutcome { model: t.model, version, verdict: t.verdict })
        }));
    }

    /// The forecast from the last complete minute, if a model is in use and the data it needs is there.
    pub fn forecast(&self) -> Option<Forecast> {
        let last_complete = self.history.values.len().checked_sub(2)?;
        self.model.as_ref()?.predict(&self.history, last_complete)
    }

    /// Blends the forecast into `decision` (mode `on`, direct route), raises the metric served
    /// to the HPA (mode `on`, hpa route), or says what it would do (`forecastOnly`). Never
    /// while paused, overridden, idle or on a fallback. Returns what the forecast was and did.
    #[allow(clippy::too_many_arguments)]
    pub fn adjust(&self, decision: &mut Decision, at: DateTime<Utc>, current: i32, target: f64, min: i32, max: i32, route: Route) -> Option<ForecastNote> {
        let f = self.forecast()?;
        let acting = matches!(decision.state.phase, Phase::Active | Phase::CoolingDown) && decision.replicas > 0 && decision.rule != crate::decide::Rule::Fallback;
        if !acting || self.spec.mode == PredictiveMode::Off {
            return None;
        }
        let step = self.spec.max_scale_up_step;
        let unstabilized = (route == Route::Direct && self.spec.scale_in == ScaleIn::ForecastConfirmed).then(|| super::blend::unstabilized(&decision.state, at)).flatten();
        let bounds = Bounds { reactive: decision.replicas, unstabilized, current, target, min, max, max_scale_up_step: step };
        let upper = self.spec.quantile > 0.5;
        let b = blend(f, upper, bounds);
        let horizon = self.spec.horizon_secs(self.polling);
        let model = self.model.as_ref().map_or("-", |m| m.name()).to_string();
        let said = format!("forecast {:.1} (p{:.0} {:.1}) in {horizon} s asks {} (model {model} v{})", f.mean, self.spec.quantile * 100.0, f.upper, b.predicted, self.version);
        let mut note = ForecastNote {
            mean: f.mean,
            upper: f.upper,
            quantile: self.spec.quantile,
            horizon_secs: horizon,
            model,
            version: self.version,
            replicas: b.predicted,
            changed: b.changed,
            acted: false,
            hpa_floor: None,
        };
        match (self.spec.mode, route, b.changed) {
            (PredictiveMode::On, Route::Direct, false) if b.scaled_in && b.replicas < decision.replicas => {
                decision.explanation = format!("{}; {said}: it needs no more, so scaled in to {} now instead of after the stabilization window", decision.explanation, b.replicas);
                decision.replicas = b.replicas;
                note.acted = true;
            }
            (PredictiveMode::On, Route::Direct, true) => {
                decision.explanation = format!("{}; {said}: raised from {} to {}", decision.explanation, decision.replicas, b.replicas);
                decision.replicas = b.replicas;
                note.acted = true;
            }
            (PredictiveMode::On, Route::Hpa { reading }, _) => {
                // The HPA divides the served metric by the target: serve the load the forecast
                // plans for when it is above the reading, capped as the blend caps replicas.
                let load = if upper { f.upper.max(f.mean) } else { f.mean };
                let cap = step.map_or(max, |s| current.max(1).saturating_add(s).min(max));
                let floor = load.min(cap as f64 * target);
                note.changed = floor > reading;
                if note.changed {
                    decision.explanation = format!("{}; {said}: the HPA is served {floor:.1} (the forecast) instead of the reading {reading:.1}", decision.explanation);
                    note.acted = true;
                    note.hpa_floor = Some(floor);
                } else {
                    decision.explanation = format!("{}; {said}: no change (the reading {reading:.1} is served)", decision.explanation);
                }
            }
            (PredictiveMode::ForecastOnly, Route::Hpa { reading }, _) => {
                let load = if upper { f.upper.max(f.mean) } else { f.mean };
                note.changed = load > reading;
                let what = if note.changed { format!("would serve the HPA {load:.1} instead of the reading {reading:.1} (forecastOnly)") } else { "no change".to_string() };
                decision.explanation = format!("{}; {said}: {what}", decision.explanation);
            }
            (PredictiveMode::ForecastOnly, _, true) => decision.explanation = format!("{}; {said}: would raise to {} (forecastOnly)", decision.explanation, b.replicas),
            _ => decision.explanation = format!("{}; {said}: no change", decision.explanation),
        }
        Some(note)
    }
}

/// Where the decision goes: Swell scales the target itself, or serves the HPA its metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Route {
    Direct,
    /// With the first trigger's reading now (what is served unless the forecast is higher).
    Hpa { reading: f64 },
}

/// What a forecast was and did at one poll (recorded with the decision, shown on pages).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ForecastNote {
    pub mean: f64,
    pub upper: f64,
    pub quantile: f64,
    pub horizon_secs: u32,
    pub model: String,
    pub version: u32,
    /// The replicas the forecast asks.
    pub replicas: i32,
    /// It asks more than the reactive answer.
    pub changed: bool,
    /// It changed what Swell did (raised replicas, or the metric served to the HPA).
    pub acted: bool,
    /// In hpa mode: the value served for the first trigger's metric when it is higher.
    pub hpa_floor: Option<f64>,
}

/// The finished task's answer, if it is done (a failure goes to `error`).
fn take_finished<T>(task: &mut Option<Task<T>>, error: &mut Option<String>) -> Option<T> {
    if !task.as_ref().is_some_and(|t| t.is_finished()) {
        return None;
    }
    match futures::FutureExt::now_or_never(task.take()?) {
        Some(Ok(Ok(v))) => {
            *error = None;
            Some(v)
        }
        Some(Ok(Err(e))) => {
            *error = Some(e);
            None
        }
        Some(Err(e)) => {
            *error = Some(format!("stopped: {e}"));
            None
        }
        None => None,
    }
}

/// Loads the history and the champion from SQL (decoding off the async threads); a champion
/// for another model kind or horizon than the spec asks is left unused.
async fn restore(sink: ModelSink, metric: String, spec: PredictiveSpec, polling: u32, now: i64) -> Result<Restored, String> {
    let from = from_unix(now - spec.history as i64);
    let rows = store::samples_between(&sink.db, sink.object_id, &metric, from, from_unix(now + 1)).await.map_err(|e| format!("loading samples: {e}"))?;
    let samples = rows.into_iter().map(|r| (to_unix(r.at), r.value)).collect();
    let Some(row) = store::models::champion(&sink.db, sink.object_id).await.map_err(|e| format!("loading the champion: {e}"))? else {
        return Ok(Restored { samples, champion: None, note: None });
    };
    let want = super::compare::forecaster(&spec, polling, STEP);
    let (bytes, version, at, mape) = (row.model, row.version as u32, to_unix(row.created_at), row.mape);
    let model = tokio::task::spawn_blocking(move || super::stored::decode(&bytes)).await.map_err(|e| format!("decoding stopped: {e}"))??;
    if model.name() != want.name() || model.horizon() != want.horizon() {
        let note = format!(
            "stored champion v{version} is a {} for {} slots ahead; the spec asks a {} for {}: a new model will be trained",
            model.name(),
            model.horizon(),
            want.name(),
            want.horizon()
        );
        return Ok(Restored { samples, champion: None, note: Some(note) });
    }
    Ok(Restored { samples, champion: Some((model, version, at, mape)), note: None })
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
