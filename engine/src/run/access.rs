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
