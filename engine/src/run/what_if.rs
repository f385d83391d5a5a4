//! What-if: an object's own recorded metric replayed under its spec and under edited
//! parameters, side by side (the same replay as `swell replay`, on SQL history or on an
//! uploaded trace).

use chrono::{DateTime, Utc};

use super::Engine;
use crate::predict::features::Series;
use crate::predict::replay::{self, Outcome, Policy, Setup};
use crate::predict::trace_csv::{Columns, read};
use crate::store;
use crate::{Error, Result};

/// The parameters a what-if may change.
#[derive(Clone, Debug, Default)]
pub struct WhatIfEdits {
    pub min_replicas: Option<i32>,
    pub max_replicas: Option<i32>,
    /// The first trigger's target (load one replica serves).
    pub target: Option<f64>,
    pub cooldown_period: Option<u32>,
    pub polling_interval: Option<u32>,
}

/// What a what-if replays.
#[derive(Clone, Debug)]
pub enum WhatIfLoad {
    /// The object's own first metric, as recorded in SQL between the two instants.
    History { from: DateTime<Utc>, to: DateTime<Utc> },
    /// A trace the user uploaded: CSV with a header, a time column (or none) and a value.
    Trace { name: String, csv: String },
}

/// The largest uploaded trace a what-if reads (bytes).
pub const MAX_TRACE_BYTES: usize = 1 << 20;

impl Engine {
    /// Replays `load` under `object_id`'s spec and under `edits`; returns (as it is, as
    /// edited) and the load one replica serves.
    pub async fn what_if(&self, tenant: &str, object_id: i32, edits: &WhatIfEdits, load: WhatIfLoad) -> Result<(Outcome, Outcome, f64)> {
        let view = self.require_object(tenant, object_id)?;
        let spec = view.spec.as_deref().cloned().ok_or_else(|| Error::invalid("spec", "not loaded yet"))?;
        let series = match load {
            WhatIfLoad::History { from, to } => {
                let metric = view
                    .metrics
                    .first()
                    .map(|(n, _)| n.clone())
                    .or_else(|| view.triggers.first().map(|t| t.metric.clone()))
                    .ok_or_else(|| Error::invalid("history", "the object has not been polled yet: nothing to replay"))?;
                let rows = store::samples_between(&self.inner.db, object_id, &metric, from, to).await?;
                let samples: Vec<(i64, f64)> = rows.iter().map(|r| (r.at.timestamp(), r.value)).collect();
                let step = self.inner.opts.sample_every.num_seconds().max(1);
                let series = Series::from_samples(&samples, step);
                if series.len() < 4 {
                    return Err(Error::invalid("range", format!("{} samples of {metric} in it: choose a longer range (one is kept every {step} s)", samples.len())));
                }
                series
            }
            WhatIfLoad::Trace { name, csv } => {
                if csv.len() > MAX_TRACE_BYTES {
                    return Err(Error::invalid("trace", format!("{name} is {} KiB; at most {} KiB is read: cut it to the part to replay", csv.len() / 1024, MAX_TRACE_BYTES / 1024)));
                }
                let series = read(&name, &csv, &Columns::default()).map_err(|e| Error::invalid("trace", e.to_string()))?;
                if series.len() < 4 {
                    return Err(Error::invalid("trace", format!("{name} has {} slots: at least 4 are needed", series.len())));
                }
                series
            }
        };
        replay_pair(spec, series, edits).await
    }
}

/// The two replays of `series`: under `spec`, and under `spec` with `edits`.
async fn replay_pair(spec: crate::spec::ScaledObjectSpec, series: Series, edits: &WhatIfEdits) -> Result<(Outcome, Outcome, f64)> {
    let capacity = replay::metric_spec(&spec)?.target;
    let mut edited = spec.clone();
    if let Some(n) = edits.min_replicas {
        edited.min_replica_count = n;
    }
    if let Some(n) = edits.max_replicas {
        edited.max_replica_count = n;
    }
    if let Some(n) = edits.cooldown_period {
        edited.cooldown_period = n;
    }
    if let Some(n) = edits.polling_interval {
        edited.polling_interval = n;
    }
    let factor = match edits.target {
        Some(t) if t > 0.0 && t.is_finite() => t / capacity,
        Some(t) => return Err(Error::invalid("target", format!("{t} must be a number above 0"))),
        None => 1.0,
    };
    edited.validate()?;
    let setup = Setup { capacity, startup: 30.0, range: 0..series.len(), initial: spec.min_replica_count.max(1) };
    // Reactive replays: a forecaster would have to be trained on this very range.
    let as_is = Policy { name: "as it is".into(), spec: crate::spec::ScaledObjectSpec { predictive: None, ..spec }, forecaster: None, target_factor: 1.0 };
    let changed = Policy { name: "edited".into(), spec: crate::spec::ScaledObjectSpec { predictive: None, ..edited }, forecaster: None, target_factor: factor };
    let (a, b) = tokio::task::spawn_blocking(move || Ok::<_, Error>((replay::run(&series, &as_is, &setup)?, replay::run(&series, &changed, &setup)?)))
        .await
        .map_err(|e| Error::invalid("replay", format!("stopped: {e}")))??;
    Ok((a, b, capacity))
}
