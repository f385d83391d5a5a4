//! Refusals in the audit log: every denied call is written under the tenant it aimed at
//! (so that tenant's admins see it), naming the caller or `anonymous`.

use super::Engine;
use crate::access::Principal;
use crate::store;

impl Engine {
    /// Audits a refused call; a failure to write is logged, never turned into a grant.
    pub async fn audit_refusal(&self, caller: Option<&Principal>, tenant: Option<&str>, action: &str, reason: &str) {
        let db = &self.inner.db;
        let target = match tenant {
            Some(slug) => store::find_tenant(db, slug).await.ok().flatten().map(|t| t.id),
            None => None,
        };
        let tenant_id = target.or(caller.map(|p| p.tenant_id));
        let actor = caller.map(|p| p.actor.as_str()).unwrap_or("anonymous");
        let detail = serde_json::json!({"reason": reason, "tenant": tenant});
        if let Err(e) = store::audit(db, tenant_id, actor, "access.refused", action, detail).await {
            tracing::warn!(error = %e, action, "could not audit a refused call");
        }
        self.inner.metrics.refusals.inc();
        tracing::info!(actor, action, reason, "refused");
    }
}

/// One entry of a tenant's audit log, as pages show it.
#[derive(Clone, Debug)]
pub struct AuditView {
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// The reason, when the entry has one (overrides, refusals).
    pub reason: Option<String>,
}

impl Engine {
    /// The tenant's newest `limit` audit entries whose action starts with `action`.
    pub async fn audit_log(&self, tenant: &str, action: &str, limit: u64) -> crate::Result<Vec<AuditView>> {
        let Some(t) = store::find_tenant(&self.inner.db, tenant).await? else { return Err(crate::Error::NotFound(format!("tenant {tenant:?}"))) };
        let rows = store::audit_entries_matching(&self.inner.db, t.id, action, limit).await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditView {
                reason: r.detail.get("reason").and_then(|v| v.as_str()).map(String::from),
                at: r.at,
                actor: r.actor,
                action: r.action,
                target: r.target,
            })
            .collect())
    }
}
