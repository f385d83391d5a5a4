//! Values pushed into Swell (webhooks): the latest value per (tenant, source), and a change
//! counter that push scalers hand to the engine so a push reaches `decide` at once.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// What a push does to its source's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PushUpdate {
    /// The value is now this.
    Set(f64),
    /// A counter: add this (may be negative; never below 0).
    Add(f64),
}

struct Entry {
    value: f64,
    last_push: Option<chrono::DateTime<chrono::Utc>>,
    changes: watch::Sender<u64>,
}

#[derive(Default)]
pub struct PushBoard {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl PushBoard {
    fn with_entry<T>(&self, tenant: &str, source: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut entries = self.entries.lock().expect("push board lock");
        let entry = entries
            .entry((tenant.to_string(), source.to_string()))
            .or_insert_with(|| Entry { value: 0.0, last_push: None, changes: watch::channel(0).0 });
        f(entry)
    }

    /// Applies a push and wakes every subscriber. Returns the new value.
    pub fn push(&self, tenant: &str, source: &str, update: PushUpdate) -> f64 {
        self.with_entry(tenant, source, |e| {
            e.value = match update {
                PushUpdate::Set(v) => v,
                PushUpdate::Add(d) => (e.value + d).max(0.0),
            };
            e.last_push = Some(chrono::Utc::now());
            e.changes.send_modify(|n| *n += 1);
            e.value
        })
    }

    /// The latest value (0 before the first push).
    pub fn value(&self, tenant: &str, source: &str) -> f64 {
        self.entries.lock().expect("push board lock").get(&(tenant.to_string(), source.to_string())).map_or(0.0, |e| e.value)
    }

    /// When the source was last pushed to (through this instance), if ever.
    pub fn last_push(&self, tenant: &str, source: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        self.entries.lock().expect("push board lock").get(&(tenant.to_string(), source.to_string())).and_then(|e| e.last_push)
    }

    /// A receiver that changes on every push to the source.
    pub fn subscribe(&self, tenant: &str, source: &str) -> watch::Receiver<u64> {
        self.with_entry(tenant, source, |e| e.changes.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_add_and_wake() {
        let board = PushBoard::default();
        let mut rx = board.subscribe("t", "s");
        assert_eq!(board.value("t", "s"), 0.0);
        assert_eq!(board.push("t", "s", PushUpdate::Add(3.0)), 3.0);
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        assert_eq!(board.push("t", "s", PushUpdate::Add(-5.0)), 0.0, "a counter never goes below 0");
        assert_eq!(board.push("t", "s", PushUpdate::Set(42.0)), 42.0);
        assert!(rx.has_changed().unwrap());
        assert_eq!(board.value("other", "s"), 0.0, "tenants do not share sources");
    }
}
