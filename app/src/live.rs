//! The live stream's messages (`GET /live/{tenant}`, a websocket): what the server pushes to
//! the dashboard and to `swell watch`, one JSON text frame each.

use serde::{Deserialize, Serialize};

use crate::api::{DecisionRow, ObjectRow};

/// The path of a tenant's live stream.
pub fn live_path(tenant: &str) -> String {
    format!("/live/{tenant}")
}

/// One message from the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", from = "Wire")]
pub enum LiveMessage {
    /// Every object of the tenant as of now: the first message, and again after the client
    /// fell behind (it then replaces what it had). Sent in parts of at most [`PART`]
    /// objects: part 0 starts a snapshot, `more` says another part follows.
    Snapshot {
        objects: Vec<ObjectRow>,
        #[serde(default, skip_serializing_if = "is_zero")]
        part: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// Objects whose view changed since the last message (the newest view of each), the
    /// decisions they recorded, oldest first, objects that are gone, and what else changed
    /// (`jobs`, `sources`, `clusters`: the pages showing it read it again; at most once a
    /// second).
    Update {
        objects: Vec<ObjectRow>,
        decisions: Vec<LiveDecision>,
        removed: Vec<i32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        touched: Vec<String>,
    },
}

/// A message as read: one flat struct with the tag as a field. An internally tagged enum is
/// read through serde's buffered `Content`, which made the browser build carry a second
/// deserializer of every row type; the JSON is the same.
#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "type")]
    kind: WireKind,
    #[serde(default)]
    objects: Vec<ObjectRow>,
    #[serde(default)]
    part: u32,
    #[serde(default)]
    more: bool,
    #[serde(default)]
    decisions: Vec<LiveDecision>,
    #[serde(default)]
    removed: Vec<i32>,
    #[serde(default)]
    touched: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireKind {
    Snapshot,
    Update,
}

impl From<Wire> for LiveMessage {
    fn from(w: Wire) -> Self {
        match w.kind {
            WireKind::Snapshot => LiveMessage::Snapshot { objects: w.objects, part: w.part, more: w.more },
            WireKind::Update => LiveMessage::Update { objects: w.objects, decisions: w.decisions, removed: w.removed, touched: w.touched },
        }
    }
}

/// A decision recorded by one object, as its decision log shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveDecision {
    pub object_id: i32,
    pub decision: DecisionRow,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Objects (and decisions) per message at most: a client's send buffer keeps the capacity
/// of the largest message it was sent, so no message carries a whole tenant.
pub const PART: usize = 16;

impl LiveMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A snapshot of `objects`, in parts (one, empty, when there are none).
    pub fn snapshot(objects: Vec<ObjectRow>) -> Vec<LiveMessage> {
        let parts = objects.len().div_ceil(PART).max(1);
        let mut objects = objects.into_iter();
        (0..parts)
            .map(|i| LiveMessage::Snapshot { objects: objects.by_ref().take(PART).collect(), part: i as u32, more: i + 1 < parts })
            .collect()
    }

    /// An update in parts of at most [`PART`] objects and [`PART`] decisions each, applied
    /// in order; what was removed and touched goes in the last.
    pub fn update(objects: Vec<ObjectRow>, decisions: Vec<LiveDecision>, removed: Vec<i32>, touched: Vec<String>) -> Vec<LiveMessage> {
        let parts = objects.len().div_ceil(PART).max(decisions.len().div_ceil(PART)).max(1);
        let (mut objects, mut decisions) = (objects.into_iter(), decisions.into_iter());
        let mut last = Some((removed, touched));
        (0..parts)
            .map(|i| {
                let (removed, touched) = if i + 1 == parts { last.take().unwrap_or_default() } else { Default::default() };
                LiveMessage::Update { objects: objects.by_ref().take(PART).collect(), decisions: decisions.by_ref().take(PART).collect(), removed, touched }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i32) -> ObjectRow {
        ObjectRow {
            id,
            namespace: "ns".into(),
            name: format!("o{id}"),
            target: "Deployment/d".into(),
            min_replicas: 0,
            max_replicas: 1,
            current_replicas: None,
            ready_replicas: None,
            desired_replicas: None,
            phase: "Idle".into(),
            metrics: Vec::new(),
            last_decision: None,
            error: None,
            override_: None,
            polled_at_ms: None,
            triggers: Vec::new(),
            forecast: None,
            model_status: None,
            anomaly: None,
            origin: "swell".into(),
            cluster: "c".into(),
        }
    }

    #[test]
    fn a_snapshot_comes_in_numbered_parts_the_last_without_more() {
        let parts = LiveMessage::snapshot((0..(PART as i32 * 2 + 1)).map(row).collect());
        assert_eq!(parts.len(), 3);
        let mut ids = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let LiveMessage::Snapshot { objects, part, more } = p else { panic!("not a snapshot: {p:?}") };
            assert_eq!((*part as usize, *more), (i, i < 2));
            assert!(objects.len() <= PART);
            ids.extend(objects.iter().map(|o| o.id));
        }
        assert_eq!(ids, (0..(PART as i32 * 2 + 1)).collect::<Vec<_>>());
        // Round trip, and an empty tenant is one empty part.
        let back: LiveMessage = serde_json::from_str(&parts[1].to_json()).unwrap();
        assert_eq!(back, parts[1]);
        assert_eq!(LiveMessage::snapshot(Vec::new()), vec![LiveMessage::Snapshot { objects: Vec::new(), part: 0, more: false }]);
        // What older clients sent (no part, no more) reads as a whole snapshot.
        let old: LiveMessage = serde_json::from_str(r#"{"type":"snapshot","objects":[]}"#).unwrap();
        assert_eq!(old, LiveMessage::Snapshot { objects: Vec::new(), part: 0, more: false });
        // The tag need not come first.
        let late: LiveMessage = serde_json::from_str(r#"{"objects":[],"decisions":[],"removed":[4],"type":"update"}"#).unwrap();
        assert_eq!(late, LiveMessage::Update { objects: Vec::new(), decisions: Vec::new(), removed: vec![4], touched: Vec::new() });
    }

    #[test]
    fn an_update_is_split_with_removals_and_touches_last() {
        let decision = |i: i32| LiveDecision {
            object_id: i,
            decision: crate::api::DecisionRow { at: String::new(), at_ms: i as i64, state: String::new(), rule: String::new(), prev_replicas: 0, new_replicas: 1, explanation: String::new() },
        };
        let parts = LiveMessage::update(vec![row(1)], (0..(PART as i32 * 3)).map(decision).collect(), vec![7], vec!["jobs".into()]);
        assert_eq!(parts.len(), 3);
        let mut order = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let LiveMessage::Update { objects, decisions, removed, touched } = p else { panic!("not an update") };
            assert_eq!(objects.len(), if i == 0 { 1 } else { 0 });
            assert_eq!(decisions.len(), PART);
            assert_eq!(!removed.is_empty() && !touched.is_empty(), i == 2, "part {i}");
            order.extend(decisions.iter().map(|d| d.decision.at_ms));
        }
        assert_eq!(order, (0..(PART as i64 * 3)).collect::<Vec<_>>());
        assert_eq!(LiveMessage::update(Vec::new(), Vec::new(), vec![3], Vec::new()).len(), 1);
    }
}
