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
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveMessage {
    /// Every object of the tenant as of now: the first message, and again after the client
    /// fell behind (it then replaces what it had).
    Snapshot { objects: Vec<ObjectRow> },
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

/// A decision recorded by one object, as its decision log shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveDecision {
    pub object_id: i32,
    pub decision: DecisionRow,
}

impl LiveMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
