//! Manual overrides (fixed replicas, pause): set, cleared, stored in SQL, in force until they expire.

use chrono::{DateTime, Utc};

use super::Engine;
use crate::decide::OverrideInput;
use crate::store;
use crate::{Error, Result};

/// A sanity bound on manual replica overrides.
pub const MAX_OVERRIDE_REPLICAS: i32 = 10_000;

/// A manual override: fixed replicas or a pause, until cleared or expired.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveOverride {
    pub input: OverrideInput,
    pub reason: String,
    pub by: String,
    pub expires_at: Option<DateTime<Utc>>,
}

impl ActiveOverride {
    pub(super) fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }

    pub(super) fn describe(&self) -> String {
        let what = match self.input {
            OverrideInput::Replicas(n) => format!("replicas fixed at {n}"),
            OverrideInput::Pause => "paused".to_string(),
        };
        let until = self.expires_at.map(|e| format!(" until {}", e.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default();
        format!("{what} by {}{until}: {}", self.by, self.reason)
    }

    pub(super) fn from_row(row: &crate::store::entities::overrides::Model) -> Option<Self> {
        let input = match (row.kind.as_str(), row.replicas) {
            ("replicas", Some(n)) => OverrideInput::Replicas(n),
            ("pause", _) => OverrideInput::Pause,
            _ => return None,
        };
        Some(ActiveOverride { input, reason: row.reason.clone(), by: row.created_by.clone(), expires_at: row.expires_at })
    }
}

impl Engine {
    /// Fixes an object's replicas, or pauses it, until cleared or `expires_at`. Stored in SQL
    /// (so it survives a restart) with an audit entry naming `actor` and `reason`.
    pub async fn set_override(
        &self,
        tenant: &str,
        object_id: i32,
        input: OverrideInput,
        reason: &str,
        actor: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.require_object(tenant, object_id)?;
        if reason.trim().is_empty() {
            return Err(Error::invalid("reason", "is required: say why the override is needed"));
        }
        if let OverrideInput::Replicas(n) = input {
            if !(0..=MAX_OVERRIDE_REPLICAS).contains(&n) {
                return Err(Error::invalid("replicas", format!("{n} is outside 0..={MAX_OVERRIDE_REPLICAS}")));
            }
        }
        if expires_at.is_some_and(|e| e <= Utc::now()) {
            return Err(Error::invalid("expires_at", "is in the past; give a future time or none"));
        }
        let slot = self.slot(object_id)?;
        let mut obj = slot.runtime.lock().await;
        let kind = match input {
            OverrideInput::Replicas(_) => "replicas",
            OverrideInput::Pause => "pause",
        };
        let replicas = match input {
            OverrideInput::Replicas(n) => Some(n),
            OverrideInput::Pause => None,
        };
        store::set_override(&self.inner.db, object_id, kind, replicas, reason.trim(), actor, expires_at).await?;
        let active = ActiveOverride { input, reason: reason.trim().into(), by: actor.into(), expires_at };
        obj.override_ = Some(active.clone());
        if let Some(v) = self.inner.views.write().expect("views lock").get_mut(&object_id) {
            v.override_ = Some(active.describe());
        }
        self.changed(object_id, None);
        Ok(())
    }

    /// Clears an object's override (resume); the next poll decides from its metrics again.
    pub async fn clear_override(&self, tenant: &str, object_id: i32, reason: &str, actor: &str) -> Result<bool> {
        self.require_object(tenant, object_id)?;
        let slot = self.slot(object_id)?;
        let mut obj = slot.runtime.lock().await;
        let cleared = store::clear_override(&self.inner.db, object_id, reason.trim(), actor).await?;
        obj.override_ = None;
        if let Some(v) = self.inner.views.write().expect("views lock").get_mut(&object_id) {
            v.override_ = None;
        }
        self.changed(object_id, None);
        Ok(cleared)
    }

    /// Takes up overrides set through other instances: SQL is the truth, so the leader acts
    /// on a pause or a fixed count within a second of any instance storing it. An object busy
    /// polling is left for the next round.
    pub(super) async fn refresh_overrides(&self) -> Result<()> {
        let now = Utc::now();
        let rows = store::active_overrides(&self.inner.db, now).await?;
        let wanted: std::collections::HashMap<i32, ActiveOverride> =
            rows.iter().filter_map(|row| Some((row.scaled_object_id, ActiveOverride::from_row(row)?))).collect();
        let slots: Vec<(i32, std::sync::Arc<super::object::Slot>)> =
            self.inner.objects.read().expect("objects lock").iter().map(|(id, s)| (*id, s.clone())).collect();
        for (id, slot) in slots {
            let want = wanted.get(&id).cloned();
            let Ok(mut obj) = slot.runtime.try_lock() else { continue };
            if obj.override_ != want {
                obj.override_ = want;
                if let Some(v) = self.inner.views.write().expect("views lock").get_mut(&id) {
                    v.override_ = obj.override_.as_ref().map(ActiveOverride::describe);
                }
                self.changed(id, None);
            }
        }
        Ok(())
    }
}
