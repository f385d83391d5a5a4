//! Forecaster cost on 30 days of 1-minute history (43,200 points): fit time on one core, one
//! prediction's latency (p50/p99), and the size of a stored model. Not a test: run on purpose.
//!
//!   cargo bench -p engine --bench predict
//!   BENCH_TRACE=../shared/traces/nasa_http_1995_requests_per_minute.csv BENCH_TREES=50 cargo bench -p engine --bench predict
//!
//! The history is the NASA trace's first 30 days when BENCH_TRACE names it, else a daily
//! cycle with noise.

use std::time::Instant;

use engine::predict::features::{FeatureSpec, Series};
use engine::predict::forecast::{Forecaster, SeasonalNaive};
use engine::predict::forest::{ForestForecaster, ForestParams};
use engine::predict::linear::LinearForecaster;

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn history() -> Series {
    let points = 43_200;
    if let Ok(path) = std::env::var("BENCH_TRACE") {
        let text = std::fs::read_to_string(&path).expect("BENCH_TRACE is readable");
        let mut s = engine::predict::trace_csv::read("trace", &text, &Default::default()).expect("a trace");
        s.values.truncate(points);
        return s;
    }
    let values = (0..points).map(|i| Some(300.0 + 200.0 * ((i as f64) * std::f64::consts::TAU / 1440.0).sin() + ((i * 7919) % 41) as f64)).collect();
    Series { start: 1_700_000_000 - 1_700_000_000 % 86_400, step: 60, values }
}

fn main() {
    let s = history();
    let trees: usize = env("BENCH_TREES", 50);
    let features = FeatureSpec::standard(3);
    let forecasters: Vec<Box<dyn Forecaster>> = vec![
        Box::new(ForestForecaster::new(features.clone(), ForestParams { trees, ..Default::default() })),
        Box::new(LinearForecaster::new(features, 0.9)),
        Box::new(SeasonalNaive::new("seasonal-naive-day", 1440, 3, 0.9)),
    ];
    println!("{} points of history at {} s ({} present)", s.len(), s.step, s.values.iter().flatten().count());
    for mut f in forecasters {
        let started = Instant::now();
        f.fit(&s, 0..s.len()).expect("fits");
        let fit = started.elapsed().as_secs_f64();
        // Points with a full row only (a gap answers None at once).
        let mut lat: Vec<f64> = (10_080..s.len() - 4)
            .rev()
            .filter_map(|at| {
                let t = Instant::now();
                let got = std::hint::black_box(f.predict(&s, at));
                got.map(|_| t.elapsed().as_secs_f64() * 1e6)
            })
            .take(2_000)
            .collect();
        lat.sort_by(f64::total_cmp);
        let at = |q: f64| lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1];
        println!("{:<20} fit {fit:>7.2} s   predict p50 {:>8.1} µs  p99 {:>8.1} µs", f.name(), at(0.5), at(0.99));
    }
    // The size of a stored forest (what SQL keeps per model version).
    let mut forest = ForestForecaster::new(FeatureSpec::standard(3), ForestParams { trees, ..Default::default() });
    forest.fit(&s, 0..s.len()).unwrap();
    let stored = serde_json::to_vec(forest.fitted.as_ref().unwrap()).unwrap();
    let sealed = engine::predict::forecast::Forecaster::encode(&forest).unwrap();
    println!("a stored {trees}-tree forest: {:.1} MiB of JSON, {:.1} MiB as SQL keeps it (zlib)", stored.len() as f64 / 1_048_576.0, sealed.len() as f64 / 1_048_576.0);
    let started = std::time::Instant::now();
    let back = engine::predict::stored::decode(&sealed).unwrap();
    println!("restoring it from those bytes: {:.2} s; same forecast: {}", started.elapsed().as_secs_f64(), back.predict(&s, s.len() - 10) == forest.predict(&s, s.len() - 10));
}
