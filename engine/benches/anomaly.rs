//! Anomaly detection scored on the shared labelled data (../shared/traces): NAB windows
//! (a detection inside a window hits it; each window counts once; alarms outside windows are
//! false alarms), false alarms per day on NAB's series without anomalies, and Microsoft's
//! per-point labels. Not a test: run on purpose.
//!
//!   cargo bench -p engine --bench anomaly
//!   TRACES=../shared/traces cargo bench -p engine --bench anomaly
//!
//! The live loop's guard (plain guards + isolation forest) learns from each series' first
//! 15 % (NAB's probationary period) and keeps learning as it goes; the forest's threshold is
//! the 99.9th percentile of the scores of what it learned from, never below the spec's
//! default 0.65: chosen on the history only, never on the labels.

use std::path::Path;

use engine::predict::guard::AnomalyGuard;
use engine::predict::trace_csv::{Columns, parse_time, read};

/// Times (unix s) and values of a series with its gaps left out.
fn points(path: &Path, cols: &Columns) -> Vec<(i64, f64)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let s = read(&path.display().to_string(), &text, cols).expect("a series");
    s.values.iter().enumerate().filter_map(|(i, v)| Some((s.time(i), (*v)?))).collect()
}

/// The times at which the live guard fires after the probationary part: the engine's own
/// `AnomalyGuard` (plain guards, the forest trained on changes, its threshold calibrated on
/// its history, broken values kept out of it, maxHold), warmed with the first 15 %.
fn detections(points: &[(i64, f64)]) -> (Vec<i64>, f64) {
    let train = points.len() * 15 / 100;
    let spec = serde_json::from_value(serde_json::json!({"policy": "hold", "minHistory": 0})).expect("spec");
    let mut g = AnomalyGuard::new(spec);
    g.warm("m", &points[..train]);
    let fired = points[train..].iter().filter(|(t, v)| g.check(*t, "m", *v).is_some()).map(|p| p.0).collect();
    (fired, g.threshold("m").unwrap_or(f64::NAN))
}

/// Detections closer than `gap` seconds make one alarm.
fn alarms(fired: &[i64], gap: i64) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    for t in fired {
        if out.last().is_none_or(|last| t - last > gap) {
            out.push(*t);
        }
    }
    out
}

fn main() {
    let traces = std::env::var("TRACES").unwrap_or_else(|_| "../../shared/traces".into());
    let nab = Path::new(&traces).join("nab");
    let windows: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(nab.join("combined_windows.json")).expect("combined_windows.json")).unwrap();
    let (mut hits, mut total_windows, mut false_alarms) = (0usize, 0usize, 0usize);
    let (mut quiet_alarms, mut quiet_days) = (0usize, 0.0);
    println!("{:<58} {:>7} {:>6} {:>6} {:>9}", "NAB series", "windows", "hit", "false", "threshold");
    for (file, spans) in windows.as_object().unwrap() {
        let path = nab.join("data").join(file);
        if !path.exists() {
            continue;
        }
        let pts = points(&path, &Columns::default());
        let (fired, threshold) = detections(&pts);
        let alarms = alarms(&fired, 3600);
        let spans: Vec<(i64, i64)> = spans
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| Some((parse_time(w[0].as_str()?)?, parse_time(w[1].as_str()?)?)))
            .collect();
        let hit = spans.iter().filter(|(a, b)| fired.iter().any(|t| t >= a && t <= b)).count();
        let outside = alarms.iter().filter(|t| !spans.iter().any(|(a, b)| *t >= a && *t <= b)).count();
        if spans.is_empty() {
            quiet_alarms += outside;
            quiet_days += (pts.last().unwrap().0 - pts[pts.len() * 15 / 100].0) as f64 / 86_400.0;
        }
        hits += hit;
        total_windows += spans.len();
        false_alarms += outside;
        println!("{file:<58} {:>7} {:>6} {:>6} {threshold:>9.3}", spans.len(), hit, outside);
    }
    let precision = hits as f64 / (hits + false_alarms).max(1) as f64;
    let recall = hits as f64 / total_windows.max(1) as f64;
    println!(
        "NAB (shared subset): {hits}/{total_windows} windows hit, {false_alarms} false alarms: precision {precision:.2}, recall {recall:.2}, F1 {:.2}",
        2.0 * precision * recall / (precision + recall).max(f64::EPSILON)
    );
    println!("NAB series without anomalies: {quiet_alarms} false alarms in {quiet_days:.1} days ({:.2} per day)", quiet_alarms as f64 / quiet_days.max(1e-9));

    // Microsoft: expert labels per point (column Label), every series of the shared copy.
    let ms = Path::new(&traces).join("microsoft");
    let (mut tp, mut fp, mut positives) = (0usize, 0usize, 0usize);
    let mut dirs: Vec<_> = std::fs::read_dir(&ms).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()).unwrap_or_default();
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "csv")).collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let cols = Columns { time: Some("TimeStamp".into()), value: Some("Value".into()), step: None };
            let pts = points(&f, &cols);
            let labelled: std::collections::HashSet<i64> = csv::Reader::from_reader(text.as_bytes())
                .records()
                .flatten()
                .filter(|r| r.get(2).is_some_and(|l| l.trim() == "1"))
                .filter_map(|r| parse_time(r.get(0)?))
                .collect();
            let train_end = pts[pts.len() * 15 / 100].0;
            let (fired, _) = detections(&pts);
            let (t, p) = (fired.iter().filter(|t| labelled.contains(t)).count(), fired.len());
            tp += t;
            fp += p - t;
            positives += labelled.iter().filter(|t| **t >= train_end).count();
            println!("{:<58} labelled {:>4}  detected {:>4}  of them labelled {:>4}", f.strip_prefix(&ms).unwrap().display(), labelled.len(), p, t);
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / positives.max(1) as f64;
    println!("Microsoft (per point, after each series' first 15 %): precision {precision:.2}, recall {recall:.2}, F1 {:.2}", 2.0 * precision * recall / (precision + recall).max(f64::EPSILON));
}
