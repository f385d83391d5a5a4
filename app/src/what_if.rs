//! What-if: replay an object's own history, or an uploaded trace, under edited parameters
//! and compare the plots.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::charts::{self, Chart, Line};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayRow {
    pub name: String,
    pub under_provisioned_minutes: f64,
    pub replica_minutes: f64,
    pub actions: u32,
    /// (unix ms, replicas the load needs, ready replicas, replicas asked)
    pub points: Vec<(i64, f64, f64, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WhatIfResult {
    pub as_is: ReplayRow,
    pub edited: ReplayRow,
}

#[cfg(feature = "ssr")]
fn parse<T: std::str::FromStr>(field: &str, v: &str) -> Result<Option<T>, ServerFnError> {
    match v.trim() {
        "" => Ok(None),
        t => t.parse().map(Some).map_err(|_| ServerFnError::new(format!("{field}: {t:?} is not a number; leave it empty to keep the object's value"))),
    }
}

/// Replays the object's first metric over `range` (or `trace`, a CSV, when it is not empty)
/// as it is and with the edits (empty: kept).
#[allow(clippy::too_many_arguments)]
#[server(client = crate::client::ApiClient, endpoint = "what_if")]
pub async fn what_if(tenant: String, id: i32, range: String, min_replicas: String, max_replicas: String, target: String, cooldown_period: String, polling_interval: String, trace: String, trace_name: String) -> Result<WhatIfResult, ServerFnError> {
    use crate::api::ssr;
    ssr::authorize(&tenant, engine::access::Role::Viewer, "what_if").await?;
    let ms = crate::history::range_ms(&range).map_err(ServerFnError::new)?;
    let edits = engine::WhatIfEdits {
        min_replicas: parse("min_replicas", &min_replicas)?,
        max_replicas: parse("max_replicas", &max_replicas)?,
        target: parse("target", &target)?,
        cooldown_period: parse("cooldown_period", &cooldown_period)?,
        polling_interval: parse("polling_interval", &polling_interval)?,
    };
    let load = if trace.trim().is_empty() {
        let to = chrono::Utc::now();
        engine::WhatIfLoad::History { from: to - chrono::Duration::milliseconds(ms), to }
    } else {
        let name = if trace_name.trim().is_empty() { "the uploaded trace".to_string() } else { trace_name };
        engine::WhatIfLoad::Trace { name, csv: trace }
    };
    let (a, b, capacity) = ssr::engine()?.what_if(&tenant, id, &edits, load).await.map_err(ssr::fail)?;
    let row = |o: engine::predict::replay::Outcome| ReplayRow {
        name: o.name,
        under_provisioned_minutes: o.under_provisioned_minutes,
        replica_minutes: o.replica_minutes,
        actions: o.actions,
        points: thin(o.timeline.iter().map(|p| (p.t * 1000, p.load / capacity, p.ready as f64, p.replicas as f64)).collect()),
    };
    Ok(WhatIfResult { as_is: row(a), edited: row(b) })
}

/// At most 600 points (each bucket keeps the one that needed most), for the page.
#[cfg(feature = "ssr")]
fn thin(points: Vec<(i64, f64, f64, f64)>) -> Vec<(i64, f64, f64, f64)> {
    let per = points.len().div_ceil(600).max(1);
    points.chunks(per).filter_map(|c| c.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1))).collect()
}

/// One replay as a chart: the replicas the load needed against those ready and asked for.
pub fn replay_chart(r: &ReplayRow) -> Chart {
    let from = r.points.first().map_or(0, |p| p.0);
    let to = r.points.last().map_or(1, |p| p.0);
    let line = |name: &str, color, f: fn(&(i64, f64, f64, f64)) -> f64, steps| Line { name: name.into(), color, points: r.points.iter().map(|p| (p.0, f(p))).collect(), steps };
    Chart {
        id: format!("replay-{}", r.name.replace(' ', "-")),
        title: format!("{}: {:.1} under-provisioned minutes, {:.0} replica-minutes, {} actions", r.name, r.under_provisioned_minutes, r.replica_minutes, r.actions),
        from_ms: from,
        to_ms: to,
        lines: vec![
            line("needed", charts::ORANGE, |p| p.1, false),
            line("ready", charts::GREEN, |p| p.2, true),
            line("asked", charts::BLUE, |p| p.3, true),
        ],
        ..Default::default()
    }
}
