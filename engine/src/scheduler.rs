//! When each object is next due: a min-heap of (due instant, object id).
//!
//! Measured with `engine/benches/scheduler.rs`: 10,000 objects at 1 s polling cost a few
//! microseconds of heap work per tick; the cost that matters is the polls themselves,
//! which the engine runs as tasks (bounded by a semaphore) so a slow one stalls nobody.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<(Instant, i32)>>,
}

impl Schedule {
    pub fn push(&mut self, due: Instant, id: i32) {
        self.heap.push(Reverse((due, id)));
    }

    /// Removes and returns every entry due at or before `at`, earliest first.
    pub fn pop_due(&mut self, at: Instant) -> Vec<(Instant, i32)> {
        let mut out = Vec::new();
        while let Some(Reverse((due, _))) = self.heap.peek() {
            if *due > at {
                break;
            }
            let Reverse(entry) = self.heap.pop().expect("peeked");
            out.push(entry);
        }
        out
    }

    /// When the earliest entry is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((due, _))| *due)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// The next due time after a poll that was due at `due` and dispatched at `at`: the first
/// time on the object's own cadence (`due` plus whole intervals) after `at`. An object that
/// fell behind skips the polls it missed but keeps its phase, so objects spread over the
/// interval stay spread after a stall instead of all becoming due at the same instant.
pub fn next_due(due: Instant, at: Instant, interval: Duration) -> Instant {
    let interval = interval.max(Duration::from_millis(1));
    let missed = at.saturating_duration_since(due).as_nanos() / interval.as_nanos();
    due + interval * (missed as u32).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_only_what_is_due_in_order() {
        let t = Instant::now();
        let mut s = Schedule::default();
        s.push(t + Duration::from_secs(3), 3);
        s.push(t + Duration::from_secs(1), 1);
        s.push(t + Duration::from_secs(2), 2);
        assert_eq!(s.pop_due(t + Duration::from_secs(2)).into_iter().map(|(_, id)| id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(s.len(), 1);
        assert!(s.pop_due(t).is_empty());
    }

    #[test]
    fn cadence_is_kept_unless_far_behind() {
        let t = Instant::now();
        let i = Duration::from_secs(1);
        assert_eq!(next_due(t, t + Duration::from_millis(30), i), t + i, "a late tick does not shift the cadence");
        assert_eq!(next_due(t, t + Duration::from_secs(5), i), t + Duration::from_secs(6), "far behind: the missed polls skipped");
        // Two objects half an interval apart, both stalled for seconds: still half apart.
        let (a, b) = (t, t + Duration::from_millis(500));
        let stalled_until = t + Duration::from_millis(4200);
        assert_eq!(next_due(a, stalled_until, i), t + Duration::from_secs(5));
        assert_eq!(next_due(b, stalled_until, i), t + Duration::from_millis(4500));
        assert_eq!(next_due(t, t + i, i), t + 2 * i, "due exactly now: the next interval");
    }
}
