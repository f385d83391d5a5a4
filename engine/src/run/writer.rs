//! The batched writer: decisions, samples and loop state from the polls, stored in SQL in
//! batches. While SQL does not answer (a restart, a failover) the rows are kept and written
//! once it does, in one transaction, so an outage loses nothing up to WRITE_QUEUE rows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Engine, FLUSH_EVERY, FLUSH_ROWS, WRITE_QUEUE};
use crate::store::{self, NewDecision, NewSample};

/// What one poll produced, for the batched writer.
pub(super) struct Record {
    pub(super) decision: Option<NewDecision>,
    pub(super) samples: Vec<NewSample>,
    /// The object's loop state, when it changed in a way a restart must not lose.
    pub(super) state: Option<(i32, store::state::ObjectState)>,
}

/// Rows not yet in SQL, oldest first; the newest loop state of each object.
#[derive(Default)]
struct Pending {
    decisions: Vec<NewDecision>,
    samples: Vec<NewSample>,
    states: BTreeMap<i32, store::state::ObjectState>,
}

impl Pending {
    fn add(&mut self, r: Record) -> u64 {
        let rows = r.decision.is_some() as u64 + r.samples.len() as u64;
        self.decisions.extend(r.decision);
        self.samples.extend(r.samples);
        if let Some((id, state)) = r.state {
            self.states.insert(id, state);
        }
        rows
    }

    fn rows(&self) -> usize {
        self.decisions.len() + self.samples.len()
    }

    fn is_empty(&self) -> bool {
        self.rows() == 0 && self.states.is_empty()
    }

    /// Everything pending in one transaction; counts the rows written.
    async fn store(&self, db: &sea_orm::DatabaseConnection, metrics: &crate::metrics::Metrics) -> crate::Result<()> {
        let states: Vec<_> = self.states.iter().map(|(id, s)| (*id, s.clone())).collect();
        store::write_batch(db, &self.decisions, &self.samples, &states).await?;
        metrics.rows_written.inc_by(self.rows() as u64);
        Ok(())
    }

    /// Keeps only the rows and states of `objects`; returns how many rows went.
    fn retain(&mut self, objects: &std::collections::BTreeSet<i32>) -> usize {
        let before = self.rows();
        self.decisions.retain(|d| objects.contains(&d.scaled_object_id));
        self.samples.retain(|s| objects.contains(&s.scaled_object_id));
        self.states.retain(|id, _| objects.contains(id));
        before - self.rows()
    }

    fn objects(&self) -> Vec<i32> {
        let mut ids: std::collections::BTreeSet<i32> = self.states.keys().copied().collect();
        ids.extend(self.decisions.iter().map(|d| d.scaled_object_id));
        ids.extend(self.samples.iter().map(|s| s.scaled_object_id));
        ids.into_iter().collect()
    }

    /// Keeps at most `limit` rows: the oldest samples go first, then the oldest decisions.
    /// Returns how many were dropped.
    fn trim(&mut self, limit: usize) -> usize {
        let over = self.rows().saturating_sub(limit);
        let samples = over.min(self.samples.len());
        self.samples.drain(..samples);
        let decisions = (over - samples).min(self.decisions.len());
        self.decisions.drain(..decisions);
        samples + decisions
    }
}

/// How long a stopping engine keeps trying to write what SQL has not taken yet.
const LAST_WRITE: Duration = Duration::from_secs(10);

impl Engine {
    /// Writes records in batches: every FLUSH_EVERY, or as soon as FLUSH_ROWS are queued,
    /// and whatever is left when the channel closes. A failed write keeps the rows and is
    /// tried again at the next flush.
    pub(super) async fn write_records(self, mut rx: mpsc::Receiver<Record>) {
        let metrics = &self.inner.metrics;
        let mut incoming = Vec::new();
        let mut pending = Pending::default();
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing_since: Option<Instant> = None;
        loop {
            let (open, tick) = tokio::select! {
                n = rx.recv_many(&mut incoming, FLUSH_ROWS) => (n > 0, false),
                _ = flush.tick() => (true, true),
            };
            for r in incoming.drain(..) {
                metrics.rows_queued.inc_by(pending.add(r));
            }
            // While SQL is down, retry at the flush ticks only.
            let due = tick || !open || (failing_since.is_none() && pending.rows() >= FLUSH_ROWS);
            if due && !pending.is_empty() {
                self.flush(&mut pending, &mut failing_since).await;
            }
            metrics.rows_pending.set(pending.rows() as i64);
            if !open {
                let stop_at = Instant::now() + LAST_WRITE;
                while failing_since.is_some() && !pending.is_empty() && Instant::now() < stop_at {
                    tokio::time::sleep(FLUSH_EVERY).await;
                    self.flush(&mut pending, &mut failing_since).await;
                }
                if !pending.is_empty() {
                    tracing::error!(rows = pending.rows(), "stopping with rows SQL did not take: they are lost");
                    metrics.rows_dropped.inc_by(pending.rows() as u64);
                }
                metrics.rows_pending.set(0);
                break;
            }
        }
    }

    /// Writes `records` at once, or fails (`tick_at`: tests and benchmarks).
    pub(super) async fn write(&self, records: Vec<Record>) -> crate::Result<()> {
        let mut pending = Pending::default();
        for r in records {
            self.inner.metrics.rows_queued.inc_by(pending.add(r));
        }
        pending.store(&self.inner.db, &self.inner.metrics).await
    }

    /// One transaction with everything pending; on failure the rows stay (trimmed to
    /// WRITE_QUEUE, the dropped ones counted).
    async fn flush(&self, pending: &mut Pending, failing_since: &mut Option<Instant>) {
        let metrics = &self.inner.metrics;
        match pending.store(&self.inner.db, metrics).await {
            Ok(()) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(rows = pending.rows(), after_secs = since.elapsed().as_secs(), "SQL answers again: the rows kept meanwhile are written");
                }
                *pending = Pending::default();
            }
            Err(e) => {
                // SQL answers, so it refused the batch itself: rows of objects deleted while
                // they waited. Those go (counted); the rest is tried again at once.
                if store::ping(&self.inner.db).await.is_ok() {
                    if let Ok(live) = store::existing_objects(&self.inner.db, pending.objects()).await {
                        let gone = pending.retain(&live);
                        metrics.rows_dropped.inc_by(gone as u64);
                        if pending.store(&self.inner.db, metrics).await.is_ok() {
                            *pending = Pending::default();
                            *failing_since = None;
                            return;
                        }
                    }
                }
                if failing_since.is_none() {
                    tracing::error!(error = %e, "writing decisions failed: keeping them in memory and retrying every second");
                    *failing_since = Some(Instant::now());
                }
                let dropped = pending.trim(WRITE_QUEUE);
                if dropped > 0 {
                    metrics.rows_dropped.inc_by(dropped as u64);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: i32) -> NewSample {
        NewSample { scaled_object_id: i, metric: "m".into(), at: chrono::Utc::now(), value: i as f64 }
    }

    #[test]
    fn trimming_drops_the_oldest_samples_before_any_decision() {
        let mut p = Pending::default();
        p.samples.extend((0..5).map(sample));
        p.decisions.extend((0..3).map(|i| NewDecision {
            scaled_object_id: i,
            at: chrono::Utc::now(),
            state: "Active".into(),
            rule: "scale".into(),
            prev_replicas: 0,
            new_replicas: 1,
            explanation: String::new(),
            inputs: serde_json::Value::Null,
        }));
        assert_eq!(p.trim(10), 0);
        assert_eq!(p.trim(4), 4);
        assert_eq!((p.samples.len(), p.samples[0].scaled_object_id, p.decisions.len()), (1, 4, 3));
        assert_eq!(p.trim(2), 2);
        assert_eq!((p.samples.len(), p.decisions.len(), p.decisions[0].scaled_object_id), (0, 2, 1));
    }
}
