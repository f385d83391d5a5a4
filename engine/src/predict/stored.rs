//! A fitted forecaster as bytes for SQL and back: the model's own serde form (JSON, floats
//! round-tripped exactly) compressed with zlib, tagged by kind, so a restored version
//! predicts exactly what it did when it was stored.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde::{Deserialize, Serialize};

use super::forecast::{Forecaster, SeasonalNaive};
use super::forest::ForestForecaster;
use super::linear::LinearForecaster;

/// What is written: a borrowed model, tagged by kind.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoredRef<'a> {
    RandomForest(&'a ForestForecaster),
    Linear(&'a LinearForecaster),
    SeasonalNaive(&'a SeasonalNaive),
}

/// What is read back (the same tags).
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Stored {
    RandomForest(ForestForecaster),
    Linear(LinearForecaster),
    SeasonalNaive(SeasonalNaive),
}

/// Serializes and compresses a model.
pub fn encode(model: &StoredRef<'_>) -> Result<Vec<u8>, String> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    serde_json::to_writer(&mut z, model).map_err(|e| format!("model does not serialize: {e}"))?;
    z.flush().and_then(|_| z.finish()).map_err(|e| format!("model does not compress: {e}"))
}

/// Restores a model stored by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Box<dyn Forecaster>, String> {
    let mut json = Vec::new();
    ZlibDecoder::new(bytes).read_to_end(&mut json).map_err(|e| format!("stored model is not zlib data: {e}"))?;
    let stored: Stored = serde_json::from_slice(&json).map_err(|e| format!("stored model does not parse: {e}"))?;
    Ok(match stored {
        Stored::RandomForest(f) => Box::new(f),
        Stored::Linear(f) => Box::new(f),
        Stored::SeasonalNaive(f) => Box::new(f),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::features::{FeatureSpec, Series};
    use crate::predict::forest::ForestParams;

    #[test]
    fn every_kind_predicts_exactly_the_same_after_a_round_trip() {
        let values = (0..1500).map(|i| Some(500.0 + 300.0 * (i as f64 * std::f64::consts::TAU / 60.0).sin() + (i % 7) as f64)).collect();
        let s = Series { start: 1_700_000_040, step: 60, values };
        let features = FeatureSpec::for_history(3, 1500 * 60);
        let mut models: Vec<Box<dyn Forecaster>> = vec![
            Box::new(ForestForecaster::new(features.clone(), ForestParams { trees: 10, ..Default::default() })),
            Box::new(LinearForecaster::new(features, 0.9)),
            Box::new(SeasonalNaive::new("seasonal-naive-hour", 60, 3, 0.9)),
        ];
        for m in &mut models {
            m.fit(&s, 0..1400).unwrap();
            let bytes = m.encode().unwrap();
            let back = decode(&bytes).unwrap();
            assert_eq!(back.name(), m.name());
            assert_eq!(back.horizon(), m.horizon());
            for at in 1400..1490 {
                assert_eq!(back.predict(&s, at), m.predict(&s, at), "{} at {at}", m.name());
            }
        }
        assert!(decode(b"not zlib").err().unwrap().contains("not zlib"));
    }
}
