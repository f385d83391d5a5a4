//! Values pushed into Swell (webhooks): the latest value per (tenant, source), and a change
//! counter that push scalers hand to the engine so a push reaches `decide` at once.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

pub mod replay;

/// What a push does to its source's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PushUpdate {
    /// The value is now this.
    Set(f64),
    /// A counter: add this (may be negative; never below 0).
    Add(f64),
}

impl PushUpdate {
    /// A webhook body: `{"value": n}` (n at least 0) or `{"add": n}`, n a finite number; an
    /// error names the field and what it must be.
    pub fn from_body(body: &[u8]) -> Result<PushUpdate, String> {
        let doc: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
        let obj = doc.as_object().ok_or("body must be a JSON object: {\"value\": n} or {\"add\": n}")?;
        let number = |key: &str| -> Result<Option<f64>, String> {
            match obj.get(key) {
                None => Ok(None),
                Some(v) => v.as_f64().filter(|n| n.is_finite()).map(Some).ok_or(format!("body.{key} must be a number")),
            }
        };
        if let Some(k) = obj.keys().find(|k| *k != "value" && *k != "add") {
            return Err(format!("body.{k} is not a known key (value, add)"));
        }
        match (number("value")?, number("add")?) {
            (Some(v), None) if v >= 0.0 => Ok(PushUpdate::Set(v)),
            (Some(_), None) => Err("body.value must be 0 or more".into()),
            (None, Some(d)) => Ok(PushUpdate::Add(d)),
            (Some(_), Some(_)) => Err("give body.value or body.add, not both".into()),
            (None, None) => Err("body needs value or add".into()),
        }
    }
}

/// Whether `signature_hex` is the HMAC-SHA256 of `"{timestamp}.{body}"` under the source's
/// `secret` (what a webhook sender signs).
pub fn verify_signature(secret: &[u8], timestamp: &str, signature_hex: &str, body: &[u8]) -> bool {
    crate::crypto::verify_hmac_sha256(secret, &signed_message(timestamp, body), signature_hex)
}

/// The bytes a webhook sender signs: `"{timestamp}.{body}"`.
pub fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    message
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

    #[test]
    fn signatures() {
        let body = br#"{"value": 3}"#;
        let good = crate::crypto::hmac_sha256_hex(b"s3cret", &signed_message("1700000000", body));
        assert!(verify_signature(b"s3cret", "1700000000", &good, body));
        assert!(!verify_signature(b"other", "1700000000", &good, body));
        assert!(!verify_signature(b"s3cret", "1700000001", &good, body));
        assert!(!verify_signature(b"s3cret", "1700000000", &good[..63], body));
        assert!(!verify_signature(b"s3cret", "1700000000", "é", body));
    }

    #[test]
    fn bodies() {
        assert_eq!(PushUpdate::from_body(br#"{"value": 12}"#), Ok(PushUpdate::Set(12.0)));
        assert_eq!(PushUpdate::from_body(br#"{"add": -2.5}"#), Ok(PushUpdate::Add(-2.5)));
        for (body, want) in [
            (&b"nope"[..], "not JSON"),
            (br#"[1]"#, "JSON object"),
            (br#"{"value": "3"}"#, "body.value must be a number"),
            (br#"{"value": -1}"#, "body.value must be 0 or more"),
            (br#"{"value": 1, "add": 1}"#, "not both"),
            (br#"{}"#, "needs value or add"),
            (br#"{"valeu": 1}"#, "body.valeu is not a known key"),
        ] {
            let err = PushUpdate::from_body(body).unwrap_err();
            assert!(err.contains(want), "{}: {err}", String::from_utf8_lossy(body));
        }
    }
}
