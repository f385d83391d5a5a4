//! An object's history for its charts: the server function that reads it from SQL, and the
//! charts built from it plus what the live stream pushed since.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::{DecisionRow, ObjectRow};
use crate::charts::{self, Chart, Line, Marker};
use crate::pages::live::Reading;

/// The time ranges a chart offers, by their query value.
pub const RANGES: [(&str, i64); 5] = [("15m", 15 * 60_000), ("1h", 3_600_000), ("6h", 6 * 3_600_000), ("24h", 24 * 3_600_000), ("7d", 7 * 24 * 3_600_000)];
pub const DEFAULT_RANGE: &str = "15m";

/// The length of a range in ms; an unknown one is refused naming the ones there are.
pub fn range_ms(range: &str) -> Result<i64, String> {
    RANGES.iter().find(|(name, _)| *name == range).map(|(_, ms)| *ms).ok_or_else(|| {
        format!("range: \"{range}\" is not one of {}", RANGES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))
    })
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<(i64, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarkerRow {
    pub at_ms: i64,
    pub kind: String,
    pub rule: String,
    pub replicas: i32,
    pub text: String,
}

/// What SQL holds of an object over a range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub range: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub metrics: Vec<Series>,
    pub replicas: Series,
    pub predicted: Series,
    pub forecast_mean: Series,
    pub forecast_upper: Series,
    pub markers: Vec<MarkerRow>,
}

#[cfg(feature = "ssr")]
fn series(s: engine::SeriesView) -> Series {
    Series { name: s.name, points: s.points }
}

/// One object's charts' history over `range` (15m, 1h, 6h, 24h, 7d).
#[server(client = crate::client::ApiClient, endpoint = "load_history")]
pub async fn load_history(tenant: String, id: i32, range: String) -> Result<History, ServerFnError> {
    use crate::api::ssr;
    ssr::authorize(&tenant, engine::access::Role::Viewer, "load_history").await?;
    let ms = range_ms(&range).map_err(ServerFnError::new)?;
    let to = chrono::Utc::now();
    let from = to - chrono::Duration::milliseconds(ms);
    let h = ssr::engine()?.history(&tenant, id, from, to).await.map_err(ssr::fail)?;
    Ok(History {
        range,
        from_ms: h.from_ms,
        to_ms: h.to_ms,
        metrics: h.metrics.into_iter().map(series).collect(),
        replicas: series(h.replicas),
        predicted: series(h.predicted),
        forecast_mean: series(h.forecast_mean),
        forecast_upper: series(h.forecast_upper),
        markers: h
            .markers
            .into_iter()
            .map(|m| MarkerRow { at_ms: m.at_ms, kind: m.kind, rule: m.rule, replicas: m.replicas, text: m.text })
            .collect(),
    })
}

/// The window a chart shows: the history's range, moved on to the newest live reading.
fn window(h: &History, live: &[Reading]) -> (i64, i64) {
    let to = live.last().map_or(h.to_ms, |r| r.at_ms.max(h.to_ms));
    (to - (h.to_ms - h.from_ms), to)
}

/// SQL's points, then the live ones after them, inside the window.
fn joined(stored: &[(i64, f64)], live: impl Iterator<Item = (i64, f64)>, from: i64) -> Vec<(i64, f64)> {
    let after = stored.last().map_or(i64::MIN, |p| p.0);
    stored.iter().copied().chain(live.filter(|p| p.0 > after)).filter(|p| p.0 >= from).collect()
}

fn markers(h: &History, pushed: &[DecisionRow], from: i64, value: impl Fn(&MarkerRow) -> f64) -> Vec<Marker> {
    let last = h.markers.last().map_or(h.to_ms, |m| m.at_ms.max(h.to_ms));
    let pushed = pushed.iter().rev().filter(|d| d.at_ms > last && d.prev_replicas != d.new_replicas).map(|d| MarkerRow {
        at_ms: d.at_ms,
        kind: "decision".into(),
        rule: d.rule.clone(),
        replicas: d.new_replicas,
        text: d.explanation.clone(),
    });
    h.markers
        .iter()
        .cloned()
        .chain(pushed)
        .filter(|m| m.at_ms >= from)
        .map(|m| Marker { at_ms: m.at_ms, value: value(&m), kind: m.kind.clone(), text: format!("{}: {}", m.rule, m.text) })
        .collect()
}

/// Each metric against its trigger's target and activation threshold, with the forecast band.
pub fn metric_chart(row: &ObjectRow, h: &History, live: &[Reading], pushed: &[DecisionRow]) -> Chart {
    let (from, to) = window(h, live);
    let mut names: Vec<String> = h.metrics.iter().map(|s| s.name.clone()).collect();
    for (name, _) in live.iter().flat_map(|r| r.metrics.iter()) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let lines: Vec<Line> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let stored = h.metrics.iter().find(|s| &s.name == name).map(|s| s.points.as_slice()).unwrap_or_default();
            let pushed = live.iter().filter_map(|r| r.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| (r.at_ms, *v)));
            Line { name: name.clone(), color: charts::PALETTE[i % charts::PALETTE.len()], points: joined(stored, pushed, from), steps: false }
        })
        .collect();
    let mut levels = Vec::new();
    if let Some(t) = row.triggers.first() {
        levels.push(("target".to_string(), t.target, charts::GREY));
        if t.activation_target > 0.0 {
            levels.push(("activation".to_string(), t.activation_target, charts::ORANGE));
        }
    }
    let band = (!h.forecast_upper.points.is_empty()).then(|| (h.forecast_mean.points.clone(), h.forecast_upper.points.clone()));
    let first = lines.first().map(|l| l.points.clone()).unwrap_or_default();
    let at = |t: i64| first.iter().rev().find(|p| p.0 <= t).or(first.first()).map_or(0.0, |p| p.1);
    Chart {
        id: "metric".into(),
        title: format!("{} metric vs target", row.name),
        from_ms: from,
        to_ms: to,
        lines,
        levels,
        band,
        markers: markers(h, pushed, from, |m| at(m.at_ms)),
    }
}

/// Replicas: what each decision asked (desired), what the target had (current, live), and
/// what the forecast asked (predicted).
pub fn replicas_chart(row: &ObjectRow, h: &History, live: &[Reading], pushed: &[DecisionRow]) -> Chart {
    let (from, to) = window(h, live);
    let desired = joined(&h.replicas.points, live.iter().filter_map(|r| Some((r.at_ms, r.desired? as f64))), from);
    let current: Vec<(i64, f64)> = live.iter().filter(|r| r.at_ms >= from).filter_map(|r| Some((r.at_ms, r.current? as f64))).collect();
    let predicted: Vec<(i64, f64)> = h.predicted.points.iter().copied().filter(|p| p.0 >= from).collect();
    Chart {
        id: "replicas".into(),
        title: format!("{} replicas", row.name),
        from_ms: from,
        to_ms: to,
        lines: vec![
            Line { name: "desired".into(), color: charts::BLUE, points: desired, steps: true },
            Line { name: "current".into(), color: charts::GREEN, points: current, steps: true },
            Line { name: "predicted".into(), color: charts::PURPLE, points: predicted, steps: false },
        ],
        levels: vec![("max".into(), row.max_replicas as f64, charts::GREY)],
        band: None,
        markers: markers(h, pushed, from, |m| m.replicas as f64),
    }
}
