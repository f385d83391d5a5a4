//! An object's history for the charts, from SQL over a time range: metric samples, replicas
//! and forecasts per decision, and decisions and anomalies as markers.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Engine;
use crate::store;
use crate::Result;

/// The most points a series keeps; a longer range is cut into this many buckets and each
/// keeps its peak (a spike must not vanish from a 7-day chart).
pub const MAX_POINTS: usize = 600;
/// The most markers a chart gets (the newest).
pub const MAX_MARKERS: usize = 200;

/// One line of a chart: unix milliseconds and a value.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SeriesView {
    pub name: String,
    pub points: Vec<(i64, f64)>,
}

/// A decision that changed replicas, or an anomaly the guard found.
#[derive(Clone, Debug, Serialize)]
pub struct MarkerView {
    pub at_ms: i64,
    /// `decision` or `anomaly`.
    pub kind: String,
    pub rule: String,
    pub replicas: i32,
    pub text: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct HistoryView {
    pub from_ms: i64,
    pub to_ms: i64,
    /// One series per metric the object's triggers read.
    pub metrics: Vec<SeriesView>,
    /// The replicas each decision asked for.
    pub replicas: SeriesView,
    /// The replicas the forecast asked for, where there was one.
    pub predicted: SeriesView,
    /// The forecast of the first trigger's metric: mean and upper quantile.
    pub forecast_mean: SeriesView,
    pub forecast_upper: SeriesView,
    pub markers: Vec<MarkerView>,
}

/// The peak of each of at most [`MAX_POINTS`] buckets of `points` (sorted by time).
pub fn peaks(points: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    if points.len() <= MAX_POINTS {
        return points;
    }
    let per = points.len().div_ceil(MAX_POINTS);
    points.chunks(per).map(|c| (c[0].0, c.iter().map(|p| p.1).fold(f64::MIN, f64::max))).collect()
}

impl Engine {
    /// `object_id`'s history between `from` and `to`.
    pub async fn history(&self, tenant: &str, object_id: i32, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<HistoryView> {
        let view = self.require_object(tenant, object_id)?;
        let db = &self.inner.db;
        let mut names: Vec<String> = view.metrics.iter().map(|(n, _)| n.clone()).collect();
        names.extend(view.triggers.iter().map(|t| t.metric.clone()));
        names.dedup();
        let mut metrics = Vec::new();
        for name in names {
            if metrics.iter().any(|s: &SeriesView| s.name == name) {
                continue;
            }
            let rows = store::samples_between(db, object_id, &name, from, to).await?;
            let points = rows.into_iter().map(|r| (r.at.timestamp_millis(), r.value)).collect();
            metrics.push(SeriesView { name, points: peaks(points) });
        }
        let decisions = store::decisions_between(db, object_id, from, to).await?;
        let mut h = HistoryView { from_ms: from.timestamp_millis(), to_ms: to.timestamp_millis(), metrics, ..Default::default() };
        let (mut replicas, mut predicted, mut mean, mut upper) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut markers = Vec::new();
        for d in decisions {
            let at = d.at.timestamp_millis();
            replicas.push((at, d.new_replicas as f64));
            let forecast = d.inputs.get("forecast").filter(|f| !f.is_null());
            if let Some(f) = forecast {
                let num = |k: &str| f.get(k).and_then(|v| v.as_f64());
                if let (Some(r), Some(m), Some(u)) = (num("replicas"), num("mean"), num("upper")) {
                    predicted.push((at, r));
                    mean.push((at, m));
                    upper.push((at, u));
                }
            }
            if let Some(a) = d.inputs.get("anomaly").filter(|a| !a.is_null()) {
                let text = |k: &str| a.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
                markers.push(MarkerView {
                    at_ms: at,
                    kind: "anomaly".into(),
                    rule: d.rule.clone(),
                    replicas: d.new_replicas,
                    text: format!("{}: {} ({})", text("metric"), text("finding"), text("policy")),
                });
            } else if d.prev_replicas != d.new_replicas {
                markers.push(MarkerView { at_ms: at, kind: "decision".into(), rule: d.rule, replicas: d.new_replicas, text: d.explanation });
            }
        }
        let keep = markers.len().saturating_sub(MAX_MARKERS);
        h.markers = markers.split_off(keep);
        h.replicas = SeriesView { name: "replicas".into(), points: peaks(replicas) };
        h.predicted = SeriesView { name: "predicted".into(), points: peaks(predicted) };
        h.forecast_mean = SeriesView { name: "forecast".into(), points: peaks(mean) };
        h.forecast_upper = SeriesView { name: "forecast upper".into(), points: peaks(upper) };
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_keep_a_spike_and_bound_the_points() {
        let mut points: Vec<(i64, f64)> = (0..10_000).map(|i| (i, 1.0)).collect();
        points[7_777].1 = 99.0;
        let p = peaks(points);
        assert!(p.len() <= MAX_POINTS, "{} points", p.len());
        assert!(p.iter().any(|&(_, v)| v == 99.0));
        assert_eq!(p[0].0, 0);
        assert_eq!(peaks(vec![(1, 2.0)]), vec![(1, 2.0)]);
    }
}
