//! Champion and challenger: a new model is fitted on all but the newest part of the history,
//! it and the model in use are scored on that newest part (MAE at the horizon), and the
//! challenger takes over only if it is strictly better.

use std::ops::Range;

use super::config::PredictiveSpec;
use super::features::Series;
use super::forecast::{Forecaster, Score, score};

/// The newest share of the history both models are judged on.
pub const VALIDATION_SHARE: f64 = 0.2;

/// How a challenger fared against the champion.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub challenger: Score,
    pub champion: Option<Score>,
    pub promote: bool,
    /// In words, for the model's record and the log.
    pub reason: String,
}

/// The training and validation ranges of a history of `len` slots.
pub fn split(len: usize) -> (Range<usize>, Range<usize>) {
    let validation = ((len as f64 * VALIDATION_SHARE).ceil() as usize).min(len);
    (0..len - validation, len - validation..len)
}

/// Scores both on `validation`; the challenger wins when there is no champion, when the
/// champion forecasts another horizon or cannot forecast there, or when its MAE is lower.
pub fn judge(champion: Option<&dyn Forecaster>, challenger: &dyn Forecaster, series: &Series, validation: Range<usize>) -> Verdict {
    let theirs = score(challenger, series, validation.clone());
    let Some(champion) = champion else {
        return Verdict { challenger: theirs, champion: None, promote: true, reason: "first model".into() };
    };
    if champion.horizon() != challenger.horizon() {
        return Verdict { challenger: theirs, champion: None, promote: true, reason: format!("the champion forecasts {} slots ahead, the spec asks {}", champion.horizon(), challenger.horizon()) };
    }
    let ours = score(champion, series, validation);
    let (promote, reason) = if ours.points == 0 {
        (true, "the champion could not forecast on the newest history".to_string())
    } else if theirs.points == 0 {
        (false, "the challenger could not forecast on the newest history".to_string())
    } else if theirs.mae < ours.mae {
        (true, format!("MAE {:.3} beats the champion's {:.3}", theirs.mae, ours.mae))
    } else {
        (false, format!("MAE {:.3} does not beat the champion's {:.3}", theirs.mae, ours.mae))
    };
    Verdict { challenger: theirs, champion: Some(ours), promote, reason }
}

/// A challenger fitted, judged against `champion` and serialized (blocking: run off the
/// async threads).
pub struct Trained {
    pub model: Box<dyn Forecaster>,
    pub bytes: Vec<u8>,
    pub verdict: Verdict,
    /// Unix seconds: first and last slot of the training range, end of the validation range.
    pub window: (i64, i64, i64),
}

pub fn train_and_judge(spec: &PredictiveSpec, polling: u32, history: &Series, champion: Option<&dyn Forecaster>) -> Result<Trained, String> {
    let (train, validation) = split(history.len());
    let mut model = super::compare::forecaster_for_history(spec, polling, history);
    model.fit(history, train.clone()).map_err(|e| e.to_string())?;
    let verdict = judge(champion, model.as_ref(), history, validation.clone());
    let bytes = model.encode()?;
    let end = validation.end.max(1) - 1;
    Ok(Trained { model, bytes, verdict, window: (history.time(train.start), history.time(train.end.max(1) - 1), history.time(end)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::features::FeatureSpec;
    use crate::predict::linear::LinearForecaster;

    fn wave(period: f64, n: usize) -> Series {
        Series { start: 1_700_000_040, step: 60, values: (0..n).map(|i| Some(1000.0 + 400.0 * (i as f64 * std::f64::consts::TAU / period).sin())).collect() }
    }

    #[test]
    fn a_worse_challenger_is_not_promoted_and_a_better_one_is() {
        let live = wave(90.0, 2000);
        let features = FeatureSpec::for_history(3, 2000 * 60);
        let (train, validation) = split(live.len());
        assert_eq!((train.end, validation.len()), (1600, 400));
        let mut good = LinearForecaster::new(features.clone(), 0.9);
        good.fit(&live, train.clone()).unwrap();
        // Learned on another series: it misreads this one.
        let mut bad = LinearForecaster::new(features, 0.9);
        let mut other = wave(37.0, 2000);
        for (i, v) in other.values.iter_mut().enumerate() {
            *v = v.map(|x| x + if i % 2 == 0 { 300.0 } else { -300.0 });
        }
        bad.fit(&other, train).unwrap();

        let v = judge(Some(&good), &bad, &live, validation.clone());
        assert!(!v.promote, "{v:?}");
        assert!(v.challenger.mae > v.champion.unwrap().mae && v.reason.contains("does not beat"), "{v:?}");
        let v = judge(Some(&bad), &good, &live, validation.clone());
        assert!(v.promote && v.reason.contains("beats"), "{v:?}");
        // An equal challenger is not better: the champion stays.
        let v = judge(Some(&good), &good, &live, validation.clone());
        assert!(!v.promote, "{v:?}");
        assert!(judge(None, &bad, &live, validation).promote, "the first model is used");
    }
}
