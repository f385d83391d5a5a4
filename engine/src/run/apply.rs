//! Objects in and out of the engine: apply (validated, stored, live at once), remove, and their scalers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::object::{ObjectExtras, ObjectRuntime, Slot};
use super::{Engine, ObjectView};
use crate::actuate::ClusterHandle;
use crate::scalers::{self, Scaler, ScalerContext};
use crate::spec::{Actuation, ScaledObjectSpec};
use crate::store::{self, StoredObject};
use crate::{Error, Result};

impl Engine {
    /// Creates or replaces a ScaledObject: validated, stored in SQL, and live at once (a new
    /// pollingInterval applies from the next poll, without a restart).
    #[allow(clippy::too_many_arguments)]
    pub async fn apply(
        &self,
        tenant: &str,
        cluster: &str,
        namespace: &str,
        name: &str,
        origin: &str,
        spec: ScaledObjectSpec,
        actor: &str,
    ) -> Result<i32> {
        self.apply_with(tenant, cluster, namespace, name, origin, spec, actor, ObjectExtras::default()).await
    }

    /// [`Engine::apply`] for an object synced from a cluster, with its pause annotations
    /// and owner.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_with(
        &self,
        tenant: &str,
        cluster: &str,
        namespace: &str,
        name: &str,
        origin: &str,
        spec: ScaledObjectSpec,
        actor: &str,
        mut extras: ObjectExtras,
    ) -> Result<i32> {
        spec.validate()?;
        // Credentials written inline never reach SQL, the audit log or the views in clear:
        // they are split off here. A Swell-made object's are sealed on their own (a restart
        // reads them back); a cluster's object keeps them in memory only (they stay in the
        // ScaledObject, which the sync reads again after a restart).
        let (spec, inline) = crate::inline_secrets::split(&spec);
        if origin != "cluster" && !inline.is_empty() && self.inner.opts.sealer.is_none() {
            let (i, keys) = inline.iter().next().expect("not empty");
            let key = keys.keys().next().cloned().unwrap_or_default();
            return Err(Error::invalid(
                format!("spec.triggers[{i}].metadata.{key}"),
                "is a credential: set secret_key (SWELL_SECRET_KEY) so Swell can seal it, or put it in a trigger authentication (`swell auth add`)",
            ));
        }
        if origin != "cluster" && extras.auth_params.is_empty() {
            extras.auth_params = resolve_sql_refs(&self.inner.db, self.inner.opts.sealer.as_deref(), tenant, namespace, &spec).await?;
        }
        merge(&mut extras.auth_params, &inline);
        // Secret parameters fill the triggers' metadata for their scalers only; the spec
        // stored in SQL never holds them.
        let owner = StoredObject {
            id: 0,
            tenant: tenant.into(),
            cluster: cluster.into(),
            cluster_kind: String::new(),
            namespace: namespace.into(),
            name: name.into(),
            origin: origin.into(),
            spec: spec.clone(),
        };
        let scalers = build_scalers(&owner, &self.inner.ctx, &extras.auth_params)?;
        // KEDA's validation: one ScaledObject per workload (after the spec's own errors, so an
        // object with a bad field says so whatever else exists).
        let other = {
            let views = self.inner.views.read().expect("views lock");
            let target = format!("{}/{}", spec.scale_target_ref.kind, spec.scale_target_ref.name);
            views.values().find(|v| v.cluster == cluster && v.namespace == namespace && v.name != name && v.target == target).map(|v| v.name.clone())
        };
        if let Some(other) = other {
            return Err(Error::invalid(
                "spec.scaleTargetRef",
                format!(
                    "{} {namespace}/{} is already scaled by ScaledObject {other}; one ScaledObject per workload (delete or retarget {other})",
                    spec.scale_target_ref.kind, spec.scale_target_ref.name
                ),
            ));
        }
        let tenant_row = store::find_tenant(&self.inner.db, tenant).await?.ok_or_else(|| Error::NotFound(format!("tenant {tenant}")))?;
        let cluster_row = store::find_cluster(&self.inner.db, cluster).await?.ok_or_else(|| Error::NotFound(format!("cluster {cluster}")))?;
        if origin != "cluster" {
            let inline_name = crate::inline_secrets::auth_name(name);
            match self.inner.opts.sealer.as_deref().filter(|_| !inline.is_empty()) {
                Some(sealer) => {
                    let flat = crate::inline_secrets::flatten(&inline);
                    let plain = serde_json::to_vec(&flat).expect("maps serialize");
                    let sealed = sealer.seal(&store::trigger_auth_purpose(tenant, namespace, &inline_name), &plain)?;
                    let keys: Vec<String> = flat.keys().cloned().collect();
                    store::put_trigger_auth(&self.inner.db, tenant_row.id, namespace, &inline_name, &keys, sealed, actor).await?;
                }
                None => store::delete_trigger_auth(&self.inner.db, tenant_row.id, namespace, &inline_name).await?,
            }
        }
        let id = store::upsert_scaled_object(&self.inner.db, tenant_row.id, cluster_row.id, namespace, name, origin, &spec).await?;
        store::audit(&self.inner.db, Some(tenant_row.id), actor, "scaled_object.apply", &format!("{namespace}/{name}"), serde_json::to_value(&spec).unwrap_or_default()).await?;
        let stored = StoredObject {
            id,
            tenant: tenant.into(),
            cluster: cluster.into(),
            cluster_kind: cluster_row.kind.clone(),
            namespace: namespace.into(),
            name: name.into(),
            origin: origin.into(),
            spec: spec.clone(),
        };
        // The view first: a poll that starts right after scheduling must find it to update.
        self.inner
            .views
            .write()
            .expect("views lock")
            .entry(id)
            .and_modify(|v| {
                v.target = format!("{}/{}", spec.scale_target_ref.kind, spec.scale_target_ref.name);
                v.min_replicas = spec.min_replica_count;
                v.max_replicas = spec.max_replica_count;
                v.error = None;
                v.spec = Some(Arc::new(spec.clone()));
            })
            .or_insert_with(|| ObjectView::of(&stored));
        self.changed(id, None);
        let existing = self.inner.objects.read().expect("objects lock").get(&id).cloned();
        match existing {
            Some(slot) => {
                let mut obj = slot.runtime.lock().await;
                slot.polling_secs.store(spec.polling_interval, Ordering::Relaxed);
                if slot.stopped.swap(false, Ordering::Relaxed) {
                    // Applied again after a deletion began (a new object of the same name).
                    let due = Instant::now();
                    *slot.next_due.lock().expect("due lock") = due;
                    self.inner.schedule.lock().expect("schedule lock").push(due, id);
                }
                // The HPA follows the pause annotations too (KEDA disables a paused direction).
                if obj.extras.pause != extras.pause {
                    obj.hpa_applied = false;
                }
                if obj.stored.spec != stored.spec {
                    obj.hpa_applied = false;
                    // What the old mode made goes in the same change: an HPA left behind by a
                    // switch to direct (or a renamed HPA) would scale the target beside Swell.
                    let old = &obj.stored.spec;
                    let leaves_hpa = old.actuation == Actuation::Hpa
                        && (spec.actuation != Actuation::Hpa || crate::actuate::hpa_name(name, old) != crate::actuate::hpa_name(name, &spec));
                    if leaves_hpa {
                        if let Ok(ClusterHandle::Kube(k)) = self.cluster_of(&obj.stored) {
                            k.delete_hpa(namespace, name, old).await?;
                        }
                    }
                }
                let tasks = self.watch_pushes(id, &scalers);
                for old in std::mem::replace(&mut *slot.push_tasks.lock().expect("push tasks lock"), tasks) {
                    old.abort();
                }
                // A new predictive spec starts a new predictor: the history comes again from
                // SQL, the champion is used only if it is the kind and horizon the spec asks.
                if obj.stored.spec.predictive != stored.spec.predictive || obj.stored.spec.polling_interval != stored.spec.polling_interval {
                    obj.predictor = super::object::predictor_for(&stored, &self.inner.db);
                }
                if obj.stored.spec.anomaly != stored.spec.anomaly {
                    obj.anomaly = stored.spec.anomaly.clone().map(crate::predict::guard::AnomalyGuard::new);
                }
                obj.stored = stored;
                for old in std::mem::replace(&mut obj.scalers, scalers) {
                    old.close().await;
                }
                obj.extras = extras;
            }
            None => {
                let due = Instant::now();
                let tasks = self.watch_pushes(id, &scalers);
                let mut runtime = ObjectRuntime::new(stored, scalers, None, Utc::now(), &self.inner.db);
                // Seen again (a restart, a re-list): what SQL has, else the CRD's status.
                match store::state::load(&self.inner.db, id).await? {
                    Some(state) => runtime.restore(state),
                    None => runtime.state.last_active = extras.last_active,
                }
                runtime.extras = extras;
                let slot = Slot::new(runtime, due);
                *slot.push_tasks.lock().expect("push tasks lock") = tasks;
                self.inner.objects.write().expect("objects lock").insert(id, Arc::new(slot));
                self.inner.schedule.lock().expect("schedule lock").push(due, id);
                self.inner.wake.notify_one();
            }
        }
        Ok(id)
    }

    /// Removes an object: stops polling it, deletes it and its history from SQL, and removes
    /// the HPA Swell made for it. Returns whether it existed.
    pub async fn remove(&self, tenant: &str, object_id: i32, actor: &str) -> Result<bool> {
        let Some(view) = self.object(tenant, object_id) else { return Ok(false) };
        let slot = self.inner.objects.read().expect("objects lock").get(&object_id).cloned();
        let mut leads = true;
        if let Some(slot) = &slot {
            // Holding the object's lock: no poll runs (or starts) while it goes away.
            let obj = slot.runtime.lock().await;
            if let Ok(ClusterHandle::Kube(k)) = self.cluster_of(&obj.stored) {
                leads = k.fence().holds();
                let spec = &obj.stored.spec;
                // The HPA goes before the object is forgotten: if it cannot be deleted, the
                // object stays (and is removed again on the next event), never an orphan HPA.
                if leads && spec.actuation == Actuation::Hpa {
                    k.delete_hpa(&obj.stored.namespace, &obj.stored.name, spec).await?;
                }
                // KEDA advanced.restoreToOriginalReplicaCount: back to what it had before Swell.
                let restore = spec.advanced.as_ref().is_some_and(|a| a.restore_to_original_replica_count);
                if let (true, true, Some(n)) = (leads, restore, obj.persisted.original_replicas) {
                    if let Err(e) = k.scale(&obj.stored.namespace, &spec.scale_target_ref, n).await {
                        tracing::warn!(object = %obj.stored.name, error = %e, "restoring the original replica count failed");
                    }
                }
            }
            self.inner.objects.write().expect("objects lock").remove(&object_id);
            let triggers: Vec<_> = obj.scalers.iter().enumerate().map(|(i, s)| super::scaler_labels(&obj.stored, i, &s.metric_spec().name)).collect();
            self.inner.metrics.forget(&super::object_labels(&obj.stored), &triggers);
            for scaler in &obj.scalers {
                scaler.close().await;
            }
        }
        self.inner.views.write().expect("views lock").remove(&object_id);
        self.removed(tenant, object_id);
        // A follower forgets the object; the leader removes it from SQL (shared by both).
        if leads {
            store::delete_scaled_object(&self.inner.db, object_id, actor, &format!("{}/{}", view.namespace, view.name)).await?;
        }
        Ok(true)
    }
}

pub(super) fn build_scalers(stored: &StoredObject, ctx: &ScalerContext, auth: &[BTreeMap<String, String>]) -> Result<Vec<Arc<dyn Scaler>>> {
    stored.spec.validate()?;
    let owner = scalers::Owner { tenant: &stored.tenant, namespace: &stored.namespace, name: &stored.name };
    stored
        .spec
        .triggers
        .iter()
        .enumerate()
        .map(|(i, t)| scalers::build_for(&scalers::with_auth(t, auth.get(i)), i, ctx, owner).map(Arc::from))
        .collect()
}

/// For objects made in Swell: each trigger's `authenticationRef` names a trigger
/// authentication stored sealed in SQL (`swell auth add`), in the object's namespace; and
/// the object's own inline credentials, sealed apart from its spec, are merged back.
pub(super) async fn resolve_sql_auth(
    db: &DatabaseConnection,
    sealer: Option<&crate::crypto::Sealer>,
    tenant: &str,
    namespace: &str,
    object: &str,
    spec: &ScaledObjectSpec,
) -> Result<Vec<BTreeMap<String, String>>> {
    let mut out = resolve_sql_refs(db, sealer, tenant, namespace, spec).await?;
    let name = crate::inline_secrets::auth_name(object);
    if let Some(sealed) = store::trigger_auth_sealed(db, tenant, namespace, &name).await? {
        let field = format!("scaled object {namespace}/{object}");
        let sealer = sealer.ok_or_else(|| Error::invalid(&field, "has sealed inline credentials: needs secret_key to open them"))?;
        let plain = sealer.open(&store::trigger_auth_purpose(tenant, namespace, &name), &sealed)?;
        let flat: BTreeMap<String, String> = serde_json::from_slice(&plain).map_err(|_| Error::invalid(&field, "its sealed inline credentials are damaged"))?;
        merge(&mut out, &crate::inline_secrets::unflatten(&flat));
    }
    Ok(out)
}

/// Adds per-trigger parameters to the resolved ones (inline credentials win over nothing,
/// never over a trigger authentication's value).
fn merge(auth: &mut Vec<BTreeMap<String, String>>, inline: &BTreeMap<usize, BTreeMap<String, String>>) {
    for (i, params) in inline {
        if auth.len() <= *i {
            auth.resize_with(i + 1, BTreeMap::new);
        }
        for (k, v) in params {
            auth[*i].entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// The parameters of each trigger's `authenticationRef`, from SQL.
async fn resolve_sql_refs(
    db: &DatabaseConnection,
    sealer: Option<&crate::crypto::Sealer>,
    tenant: &str,
    namespace: &str,
    spec: &ScaledObjectSpec,
) -> Result<Vec<BTreeMap<String, String>>> {
    let mut out = Vec::with_capacity(spec.triggers.len());
    for (i, t) in spec.triggers.iter().enumerate() {
        let Some(r) = &t.authentication_ref else {
            out.push(BTreeMap::new());
            continue;
        };
        let field = format!("spec.triggers[{i}].authenticationRef.name");
        let sealed = store::trigger_auth_sealed(db, tenant, namespace, &r.name)
            .await?
            .ok_or_else(|| Error::invalid(&field, format!("no trigger authentication {namespace}/{} in tenant {tenant} (add it with `swell auth add`)", r.name)))?;
        let sealer = sealer.ok_or_else(|| Error::invalid(&field, "needs secret_key to open stored trigger authentications"))?;
        let plain = sealer.open(&store::trigger_auth_purpose(tenant, namespace, &r.name), &sealed)?;
        let params: BTreeMap<String, String> =
            serde_json::from_slice(&plain).map_err(|_| Error::invalid(&field, format!("stored trigger authentication {namespace}/{} is damaged", r.name)))?;
        out.push(params);
    }
    Ok(out)
}

