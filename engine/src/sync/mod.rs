//! Cluster sync: a watcher per registered cluster mirrors `swell.dev/v1alpha1` ScaledObjects
//! into SQL (`origin = cluster`) and the engine, keeps a finalizer on them so that deleting
//! one removes Swell's HPA and stops actuation first, and writes Swell's status, conditions
//! and events back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;

mod auth_watch;
mod jobs;

use crate::actuate::KubeCluster;
use crate::crd::{Condition, ScaledObjectStatus};
use crate::decide::Pause;
use crate::spec::ScaledObject;
use crate::{Engine, Error, ObjectExtras, ObjectView, Result, store};

/// The finalizer Swell keeps on every ScaledObject it manages.
pub const FINALIZER: &str = "swell.dev/finalizer";

/// A kube client from a kubeconfig's text (its current context).
pub async fn client_from_kubeconfig(yaml: &str) -> Result<Client> {
    crate::init_tls();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| Error::invalid("kubeconfig", format!("does not parse: {e}")))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| Error::invalid("kubeconfig", format!("cannot be used: {e}")))?;
    if config.accept_invalid_certs {
        tracing::warn!(server = %config.cluster_url, "the kubeconfig skips verifying the API server's certificate (insecure-skip-tls-verify)");
    }
    Client::try_from(config).map_err(|e| Error::invalid("kubeconfig", format!("no client: {e}")))
}

type Key = (String, String);

/// What the sync of one cluster shares between its watcher and status writer.
struct Shared {
    engine: Engine,
    cluster: Arc<KubeCluster>,
    tenant: String,
    /// Objects whose spec Swell rejected, with the reason (their status says so).
    rejected: Mutex<HashMap<Key, String>>,
    /// UIDs of the objects seen, for events.
    uids: Mutex<HashMap<Key, String>>,
    /// One recorder per cluster: it keeps the cache that turns repeats into counts.
    recorder: Recorder,
    /// Per object, the desired state last reconciled (generation and the annotations Swell
    /// reads) and when: an event that changes neither (a status patch) is not a change.
    reconciled: Mutex<HashMap<Key, (Desired, std::time::Instant)>>,
    /// The last version of each object seen, to reconcile it again when its credentials change.
    latest: Mutex<HashMap<Key, ScaledObject>>,
    /// What each object's credentials were read from, watched.
    auth: auth_watch::AuthWatch,
    /// Deletions being finished (forgotten, finalizer off) at once.
    deletions: tokio::sync::Semaphore,
}

/// Deletions finished at once per cluster.
const CONCURRENT_DELETIONS: usize = 16;

/// What a reconcile acts on: the spec's generation and the annotations that steer Swell.
#[derive(Clone, Debug, PartialEq)]
struct Desired {
    generation: Option<i64>,
    annotations: BTreeMap<String, String>,
}

impl Desired {
    fn of(so: &ScaledObject) -> Self {
        let steering = |k: &str| k.starts_with("autoscaling.keda.sh/") || k.starts_with("scaledobject.keda.sh/") || k.starts_with("swell.dev/");
        Desired {
            generation: so.meta().generation,
            annotations: so.annotations().iter().filter(|(k, _)| steering(k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// A rejected object is tried again on an event at most this often even when its spec did
/// not change (what it refers to, a Secret or a target, may have appeared).
const RETRY_REJECTED: Duration = Duration::from_secs(30);

/// Registers `cluster` with the engine and keeps it in sync until `shutdown`: the watcher
/// and the status writer (every `status_every`).
pub async fn run(engine: Engine, cluster: Arc<KubeCluster>, tenant: String, status_every: Duration, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    store::ensure_tenant(engine.db(), &tenant, &tenant).await?;
    store::ensure_cluster(engine.db(), &cluster.name, "kubeconfig").await?;
    engine.add_cluster(cluster.clone());
    let recorder = Recorder::new(cluster.client().clone(), Reporter { controller: "swell".into(), instance: None });
    let (auth, mut auth_changes) = auth_watch::AuthWatch::start(cluster.client().clone());
    let shared = Arc::new(Shared {
        engine,
        cluster,
        tenant,
        rejected: Mutex::default(),
        uids: Mutex::default(),
        recorder,
        reconciled: Mutex::default(),
        latest: Mutex::default(),
        auth,
        deletions: tokio::sync::Semaphore::new(CONCURRENT_DELETIONS),
    });
    let writer = tokio::spawn(write_status(shared.clone(), status_every, shutdown.clone()));
    let jobs = tokio::spawn(jobs::watch_scaled_jobs(shared.clone(), shutdown.clone()));
    let api: Api<ScaledObject> = Api::all(shared.cluster.client().clone());
    let mut events = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut seen: HashSet<Key> = HashSet::new();
    loop {
        let event = tokio::select! {
            e = events.try_next() => e,
            Some(source) = auth_changes.recv() => {
                // Credentials changed: reconcile exactly the objects that read them.
                for k in shared.auth.readers(&source) {
                    let so = shared.latest.lock().expect("latest lock").get(&k).cloned();
                    if let Some(so) = so {
                        tracing::info!(cluster = %shared.cluster.name, object = %k.1, "credentials changed; rebuilding its scalers");
                        shared.reconciled.lock().expect("reconciled lock").remove(&k);
                        shared.applied(so).await;
                    }
                }
                continue;
            }
            _ = shutdown.changed() => break,
        };
        match event {
            Ok(Some(Event::Init)) => seen.clear(),
            Ok(Some(Event::InitApply(so))) => {
                seen.insert(key(&so));
                shared.applied(so).await;
            }
            Ok(Some(Event::InitDone)) => shared.forget_missing(&seen).await,
            Ok(Some(Event::Apply(so))) => {
                shared.engine.sync_error(&shared.cluster.name, None);
                shared.applied(so).await
            }
            Ok(Some(Event::Delete(so))) => {
                shared.reconciled.lock().expect("reconciled lock").remove(&key(&so));
                shared.gone(&key(&so)).await
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(cluster = %shared.cluster.name, error = %e, "ScaledObject watch failed; retrying");
                shared.engine.sync_error(&shared.cluster.name, Some(format!("watching ScaledObjects: {e}")));
            }
        }
    }
    writer.abort();
    jobs.abort();
    Ok(())
}

fn key(so: &ScaledObject) -> Key {
    (so.namespace().unwrap_or_default(), so.name_any())
}

impl Shared {
    fn actor(&self) -> String {
        format!("cluster:{}", self.cluster.name)
    }

    async fn applied(self: &Arc<Self>, so: ScaledObject) {
        let k = key(&so);
        if let Some(uid) = so.uid() {
            self.uids.lock().expect("uids lock").insert(k.clone(), uid);
        }
        let api: Api<ScaledObject> = Api::namespaced(self.cluster.client().clone(), &k.0);
        let has_finalizer = so.finalizers().iter().any(|f| f == FINALIZER);
        if so.meta().deletion_timestamp.is_some() {
            // Stop polling and actuating at once, leader or not. Forgetting the object and
            // (the leader) taking the finalizer off run beside the watch, a few at a time, so
            // a thousand deletions at once do not queue behind each other's requests.
            self.reconciled.lock().expect("reconciled lock").remove(&k);
            if let Some(view) = self.engine.find(&self.cluster.name, &k.0, &k.1) {
                self.engine.stop_polling(view.id);
            }
            let (this, uid) = (self.clone(), so.uid());
            tokio::spawn(async move {
                let _permit = this.deletions.acquire().await;
                // Re-created under the same name meanwhile: the new object is not to go.
                if uid.is_some() && this.uids.lock().expect("uids lock").get(&k) != uid.as_ref() {
                    return;
                }
                this.gone(&k).await;
                if has_finalizer && this.cluster.fence().holds() {
                    this.remove_finalizer(&api, &k.1).await;
                }
            });
            return;
        }
        let desired = Desired::of(&so);
        let unchanged = {
            let reconciled = self.reconciled.lock().expect("reconciled lock");
            let rejected = self.rejected.lock().expect("rejected lock").contains_key(&k);
            reconciled.get(&k).is_some_and(|(d, at)| *d == desired && (!rejected || at.elapsed() < RETRY_REJECTED))
        };
        if unchanged && (has_finalizer || !self.cluster.fence().holds()) && self.engine.find(&self.cluster.name, &k.0, &k.1).is_some() {
            return; // a status patch or another field Swell does not act on
        }
        self.reconciled.lock().expect("reconciled lock").insert(k.clone(), (desired, std::time::Instant::now()));
        if !has_finalizer && self.cluster.fence().holds() {
            let mut finalizers = so.finalizers().to_vec();
            finalizers.push(FINALIZER.into());
            let patch = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": so.resource_version()}});
            if let Err(e) = api.patch(&k.1, &PatchParams::default(), &Patch::Merge(&patch)).await {
                tracing::warn!(object = %k.1, error = %e, "adding the finalizer failed");
            }
        }
        self.latest.lock().expect("latest lock").insert(k.clone(), so.clone());
        let annotations: BTreeMap<String, String> = so.annotations().clone();
        let mut sources = std::collections::BTreeSet::new();
        let env = crate::auth::EnvFrom::Target(&so.spec);
        let auth = crate::auth::resolve_tracked(self.cluster.client(), &k.0, self.cluster.namespace(), &so.spec.triggers, env, &mut sources).await;
        self.auth.read_from(&k, sources);
        let result = match (Pause::from_annotations(&annotations), auth) {
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(pause), Ok(auth_params)) => {
                let owner = so.uid().map(|uid| OwnerReference {
                    api_version: ScaledObject::api_version(&()).into(),
                    kind: ScaledObject::kind(&()).into(),
                    name: k.1.clone(),
                    uid,
                    controller: Some(true),
                    block_owner_deletion: None,
                });
                let last_active = so
                    .status
                    .as_ref()
                    .and_then(|s| s.last_active_time.as_deref())
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&chrono::Utc));
                let tenant = self.tenant_for(&k.0).await;
                self.engine
                    .apply_with(&tenant, &self.cluster.name, &k.0, &k.1, "cluster", so.spec.clone(), &self.actor(), ObjectExtras { pause, owner, auth_params, last_active })
                    .await
            }
        };
        match result {
            Ok(_) => {
                self.rejected.lock().expect("rejected lock").remove(&k);
            }
            Err(e) => {
                tracing::warn!(cluster = %self.cluster.name, object = %k.1, error = %e, "ScaledObject rejected");
                self.engine.sync_error(&self.cluster.name, Some(format!("ScaledObject {}/{} rejected: {e}", k.0, k.1)));
                let message = e.to_string();
                let newly = self.rejected.lock().expect("rejected lock").insert(k.clone(), message.clone()) != Some(message.clone());
                if newly {
                    let status = ScaledObjectStatus {
                        target: Some(format!("{}/{}", so.spec.scale_target_ref.kind, so.spec.scale_target_ref.name)),
                        conditions: vec![Condition::new("Ready", false, "InvalidSpec", message.clone())],
                        observed_generation: so.meta().generation,
                        ..Default::default()
                    };
                    self.patch_status(&k, &status).await;
                    self.event(&k, EventType::Warning, "ScaledObjectCheckFailed", &message).await;
                }
            }
        }
    }

    /// Takes Swell's finalizer off a deleted object, re-reading it after a conflict (a
    /// thousand deletions at once race their own status writes) until it is off or gone.
    async fn remove_finalizer(&self, api: &Api<ScaledObject>, name: &str) {
        for attempt in 1..=8u32 {
            let so = match api.get_opt(name).await {
                Ok(Some(so)) => so,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(object = %name, error = %e, "reading a deleted ScaledObject failed");
                    tokio::time::sleep(crate::backoff(attempt, Duration::from_millis(50), Duration::from_secs(2))).await;
                    continue;
                }
            };
            let rest: Vec<&String> = so.finalizers().iter().filter(|f| *f != FINALIZER).collect();
            if rest.len() == so.finalizers().len() {
                return;
            }
            let patch = serde_json::json!({"metadata": {"finalizers": rest, "resourceVersion": so.resource_version()}});
            match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => return,
                Err(kube::Error::Api(e)) if e.code == 404 => return,
                Err(e) => {
                    tracing::debug!(object = %name, error = %e, attempt, "removing the finalizer failed; reading again");
                    tokio::time::sleep(crate::backoff(attempt, Duration::from_millis(50), Duration::from_secs(2))).await;
                }
            }
        }
        tracing::warn!(object = %name, "the finalizer is still on after 8 attempts; the next event retries");
    }

    /// The tenant that owns a namespace's objects: the one it is mapped to (`swell tenant
    /// add-namespace`), else the cluster's.
    async fn tenant_for(&self, namespace: &str) -> String {
        match store::tenancy::namespace_tenant(self.engine.db(), &self.cluster.name, namespace).await {
            Ok(Some(t)) => t.slug,
            Ok(None) => self.tenant.clone(),
            Err(e) => {
                tracing::warn!(namespace, error = %e, "cannot read the namespace's tenant; using the cluster's");
                self.tenant.clone()
            }
        }
    }

    /// The object is gone from the cluster (or being deleted): stop actuating and forget it.
    async fn gone(&self, k: &Key) {
        self.rejected.lock().expect("rejected lock").remove(k);
        self.latest.lock().expect("latest lock").remove(k);
        self.auth.forget(k);
        if let Some(view) = self.engine.find(&self.cluster.name, &k.0, &k.1) {
            if let Err(e) = self.engine.remove(&view.tenant, view.id, &self.actor()).await {
                tracing::warn!(object = %k.1, error = %e, "removing the ScaledObject failed");
            }
        }
    }

    /// After a (re)list: objects Swell had from this cluster that no longer exist there.
    async fn forget_missing(&self, seen: &HashSet<Key>) {
        match store::cluster_origin_objects(self.engine.db(), &self.cluster.name).await {
            Ok(rows) => {
                for (id, tenant, ns, name) in rows {
                    if !seen.contains(&(ns.clone(), name.clone())) {
                        if let Err(e) = self.engine.remove(&tenant, id, &self.actor()).await {
                            tracing::warn!(object = %name, error = %e, "removing a vanished ScaledObject failed");
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing synced objects failed"),
        }
    }

    async fn patch_status(&self, k: &Key, status: &ScaledObjectStatus) -> bool {
        if !self.cluster.fence().holds() {
            return false;
        }
        let api: Api<ScaledObject> = Api::namespaced(self.cluster.client().clone(), &k.0);
        let patch = serde_json::json!({ "status": status });
        match api.patch_status(&k.1, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => true,
            // Deleted meanwhile (its finalizer just came off): nothing left to write to.
            Err(kube::Error::Api(e)) if e.code == 404 => false,
            Err(e) => {
                tracing::warn!(object = %k.1, error = %e, "status write failed");
                self.engine.metrics().write_failed("status");
                false
            }
        }
    }

    async fn event(&self, k: &Key, type_: EventType, reason: &str, note: &str) {
        if !self.cluster.fence().holds() {
            return;
        }
        let uid = self.uids.lock().expect("uids lock").get(k).cloned();
        let reference = ObjectReference {
            api_version: Some(ScaledObject::api_version(&()).into()),
            kind: Some(ScaledObject::kind(&()).into()),
            name: Some(k.1.clone()),
            namespace: Some(k.0.clone()),
            uid,
            ..Default::default()
        };
        self.publish(reference, type_, reason, note).await;
    }

    /// Records an event on any object (a ScaledObject, a ScaledJob), leader only.
    async fn publish(&self, reference: ObjectReference, type_: EventType, reason: &str, note: &str) {
        if !self.cluster.fence().holds() {
            return;
        }
        let event = KubeEvent { type_, reason: reason.into(), note: Some(note.chars().take(1000).collect()), action: "Scale".into(), secondary: None };
        if let Err(e) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(object = ?reference.name, error = %e, "event not recorded");
            self.engine.metrics().write_failed("event");
        }
    }
}

/// The status Swell reports for an object the engine runs: KEDA's fields, and conditions
/// that each say what is true with a reason and a message.
pub fn status_of(view: &ObjectView) -> ScaledObjectStatus {
    let spec = view.spec.as_deref();
    let rule = view.last_rule.as_deref().unwrap_or("");
    let ready = match (&view.error, view.phase.as_str()) {
        (None, _) if view.warnings.is_empty() => Condition::new("Ready", true, "ScaledObjectReady", "ScaledObject is defined correctly and is ready for scaling"),
        (None, _) => Condition::new("Ready", true, "ScaledObjectReady", view.warnings.join("; ")),
        (Some(e), "Active") => Condition { status: "Unknown".into(), ..Condition::new("Ready", false, "PartialTriggerError", format!("Some triggers are not working correctly: {e}")) },
        (Some(e), _) if rule == "scaler_error_hold" || rule == "fallback" => Condition::new("Ready", false, "TriggerError", format!("Triggers are not working correctly: {e}")),
        (Some(e), _) => Condition::new("Ready", false, "ScaledObjectCheckFailed", e.clone()),
    };
    let active = match view.phase.as_str() {
        "Active" => Condition::new("Active", true, "ScalerActive", "Scaling is performed because triggers are active"),
        "CoolingDown" => Condition::new("Active", false, "ScalerCooldown", "Scaler cooling down because triggers are not active"),
        _ => Condition::new("Active", false, "ScalerNotActive", "Scaling is not performed because triggers are not active"),
    };
    let fallback = if rule == "fallback" {
        Condition::new("Fallback", true, "FallbackExists", "At least one trigger is falling back on this scaled object")
    } else if spec.is_some_and(|s| s.fallback.is_some()) {
        Condition::new("Fallback", false, "NoFallbackFound", "No fallbacks are active on this scaled object")
    } else {
        Condition::new("Fallback", false, "FallbackNotConfigured", "spec.fallback is not set: a failing trigger holds the replicas")
    };
    let paused = if view.phase == "Paused" {
        Condition::new("Paused", true, "ScaledObjectPaused", view.override_.clone().or_else(|| view.last_decision.clone()).unwrap_or_else(|| "ScaledObject is paused".into()))
    } else {
        Condition::new("Paused", false, "ScaledObjectUnpaused", "ScaledObject is not paused")
    };
    let health = view
        .health
        .iter()
        .map(|(metric, n)| (metric.clone(), crate::crd::HealthStatus { number_of_failures: *n as i32, status: if *n > 0 { "Failing" } else { "Happy" }.into() }))
        .collect();
    let join = |items: Vec<String>| (!items.is_empty()).then(|| items.join(","));
    ScaledObjectStatus {
        target: Some(view.target.clone()),
        scale_target_kind: view.target.split('/').next().map(str::to_string),
        current_replicas: view.current_replicas,
        desired_replicas: view.desired_replicas,
        last_decision: view.last_decision.clone(),
        last_active_time: view.last_active.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        health,
        original_replica_count: view.original_replicas,
        external_metric_names: view.external.keys().cloned().collect(),
        hpa_name: spec.filter(|s| s.actuation == crate::spec::Actuation::Hpa).map(|s| crate::actuate::hpa_name(&view.name, s)),
        triggers_types: spec.and_then(|s| join(s.triggers.iter().map(|t| t.trigger_type.clone()).collect())),
        authentications_types: spec.and_then(|s| join(s.triggers.iter().filter_map(|t| t.authentication_ref.as_ref().map(|r| r.name.clone())).collect())),
        conditions: vec![ready, active, fallback, paused],
        ..Default::default()
    }
}

/// Writes each object's status when it changes, with an event when it turns active,
/// inactive or starts failing.
async fn write_status(shared: Arc<Shared>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut written: HashMap<Key, ScaledObjectStatus> = HashMap::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let views = shared.engine.cluster_objects(&shared.cluster.name);
        let live: HashSet<Key> = views.iter().map(|v| (v.namespace.clone(), v.name.clone())).collect();
        written.retain(|k, _| live.contains(k));
        for view in views {
            if view.last_decision_at.is_none() && view.error.is_none() {
                continue; // not polled yet
            }
            let k = (view.namespace.clone(), view.name.clone());
            if shared.rejected.lock().expect("rejected lock").contains_key(&k) {
                continue;
            }
            let mut status = status_of(&view);
            let before = written.get(&k);
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            for c in &mut status.conditions {
                let prev = before.and_then(|b| b.conditions.iter().find(|p| p.type_ == c.type_));
                c.last_transition_time = match prev {
                    Some(p) if p.status == c.status => p.last_transition_time.clone(),
                    _ => Some(now.clone()),
                };
            }
            if before == Some(&status) {
                continue;
            }
            let was_active = before.and_then(|b| b.conditions.iter().find(|c| c.type_ == "Active")).map(|c| c.status == "True");
            let is_active = view.phase == "Active";
            let was_error = before.and_then(|b| b.conditions.iter().find(|c| c.type_ == "Ready")).is_some_and(|c| c.status == "False");
            // KEDA: Deactivated when the target is taken to zero (or idle), not when cooldown starts.
            // Idle is the phase of a target at zero (or its idle count); the status writer may
            // run less often than polls, so the drop is read from the last written status.
            let deactivated = view.phase == "Idle" && before.and_then(|b| b.desired_replicas).zip(view.desired_replicas).is_some_and(|(was, now)| now < was);
            if shared.patch_status(&k, &status).await {
                if was_active != Some(true) && is_active {
                    shared.event(&k, EventType::Normal, "ScaleTargetActivated", view.last_decision.as_deref().unwrap_or("")).await;
                }
                if deactivated {
                    shared.event(&k, EventType::Normal, "ScaleTargetDeactivated", view.last_decision.as_deref().unwrap_or("")).await;
                }
                if let (Some(e), false) = (&view.error, was_error) {
                    shared.event(&k, EventType::Warning, "ScaledObjectCheckFailed", e).await;
                }
                written.insert(k, status);
            }
        }
    }
}
