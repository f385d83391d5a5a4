//! The batched writer: decisions, samples and loop state from the polls, stored in SQL in batches.

use tokio::sync::mpsc;

use super::{Engine, FLUSH_EVERY, FLUSH_ROWS};
use crate::store::{self, NewDecision, NewSample};
use crate::Result;

/// What one poll produced, for the batched writer.
pub(super) struct Record {
    pub(super) decision: Option<NewDecision>,
    pub(super) samples: Vec<NewSample>,
    /// The object's loop state, when it changed in a way a restart must not lose.
    pub(super) state: Option<(i32, store::state::ObjectState)>,
}

impl Engine {
    /// Writes records in batches: every FLUSH_EVERY, or as soon as FLUSH_ROWS are queued,
    /// and whatever is left when the channel closes.
    pub(super) async fn write_records(self, mut rx: mpsc::Receiver<Record>) {
        let mut buf = Vec::new();
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (open, due) = tokio::select! {
                n = rx.recv_many(&mut buf, FLUSH_ROWS) => (n > 0, buf.len() >= FLUSH_ROWS),
                _ = flush.tick() => (true, true),
            };
            if (due || !open) && !buf.is_empty() {
                let records = std::mem::take(&mut buf);
                if let Err(e) = self.write(records).await {
                    tracing::error!(error = %e, "writing decisions failed");
                }
            }
            if !open {
                break;
            }
        }
    }

    pub(super) async fn write(&self, records: Vec<Record>) -> Result<()> {
        let mut decisions = Vec::with_capacity(records.len());
        let mut samples = Vec::new();
        // The newest state of each object wins.
        let mut states = std::collections::BTreeMap::new();
        for r in records {
            decisions.extend(r.decision);
            samples.extend(r.samples);
            if let Some((id, state)) = r.state {
                states.insert(id, state);
            }
        }
        let states: Vec<_> = states.into_iter().collect();
        store::write_batch(&self.inner.db, &decisions, &samples, &states).await?;
        self.inner.metrics.rows_written.inc_by((decisions.len() + samples.len()) as u64);
        Ok(())
    }
}

