//! Cluster sync: a watcher per registered cluster mirrors `swell.dev/v1alpha1` ScaledObjects
//! (and, with `keda_compat`, KEDA's `keda.sh/v1alpha1` ones) into SQL (`origin = cluster`) and
//! the engine, keeps a finalizer on them so that deleting one removes Swell's HPA and stops
//! actuation first, and writes the status, conditions and events back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ObjectMeta;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use tokio::sync::watch;

mod auth_watch;
mod group;
mod jobs;
mod status;

pub use group::Group;
pub use status::status_of;

use crate::actuate::KubeCluster;
use crate::crd::{Condition, ScaledObjectStatus};
use crate::decide::Pause;
use crate::spec::ScaledObjectSpec;
use crate::{Engine, Error, ObjectExtras, Result, store};

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
    latest: Mutex<HashMap<Key, (Group, DynamicObject)>>,
    /// Which API group each object name belongs to (one name, one object per namespace).
    groups: Mutex<HashMap<Key, Group>>,
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
    fn of(meta: &ObjectMeta) -> Self {
        let steering = |k: &str| k.starts_with("autoscaling.keda.sh/") || k.starts_with("scaledobject.keda.sh/") || k.starts_with("swell.dev/");
        Desired {
            generation: meta.generation,
            annotations: meta.annotations.iter().flatten().filter(|(k, _)| steering(k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// How a cluster's sync runs.
#[derive(Clone, Copy, Debug)]
pub struct SyncOptions {
    /// How often changed statuses are written.
    pub status_every: Duration,
    /// Also manage KEDA's `keda.sh/v1alpha1` ScaledObjects (KEDA's own operator stopped).
    pub keda_compat: bool,
}

/// A rejected object is tried again on an event at most this often even when its spec did
/// not change (what it refers to, a Secret or a target, may have appeared).
const RETRY_REJECTED: Duration = Duration::from_secs(30);

/// Registers `cluster` with the engine and keeps it in sync until `shutdown`: the watcher
/// and the status writer (every `status_every`).
pub async fn run(engine: Engine, cluster: Arc<KubeCluster>, tenant: String, status_every: Duration, shutdown: watch::Receiver<bool>) -> Result<()> {
    run_with(engine, cluster, tenant, SyncOptions { status_every, keda_compat: false }, shutdown).await
}

/// [`run`] with every option.
pub async fn run_with(engine: Engine, cluster: Arc<KubeCluster>, tenant: String, options: SyncOptions, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    store::ensure_tenant(engine.db(), &tenant, &tenant).await?;
    store::ensure_cluster(engine.db(), &cluster.name, "kubeconfig").await?;
    engine.add_cluster(cluster.clone());
    let recorder = Recorder::new(cluster.client().clone(), Reporter { controller: "swell".into(), instance: None });
    let (auth, mut auth_changes) = auth_watch::AuthWatch::start(cluster.client().clone(), options.keda_compat);
    let shared = Arc::new(Shared {
        engine,
        cluster,
        tenant,
        rejected: Mutex::default(),
        uids: Mutex::default(),
        recorder,
        reconciled: Mutex::default(),
        latest: Mutex::default(),
        groups: Mutex::default(),
        auth,
        deletions: tokio::sync::Semaphore::new(CONCURRENT_DELETIONS),
    });
    let writer = tokio::spawn(status::write_status(shared.clone(), options.status_every, shutdown.clone()));
    let groups: Vec<Group> = if options.keda_compat { vec![Group::Swell, Group::Keda] } else { vec![Group::Swell] };
    let jobs = tokio::spawn(jobs::watch_scaled_jobs(shared.clone(), groups.clone(), shutdown.clone()));
    let streams = groups.iter().map(|&g| {
        let api: Api<DynamicObject> = Api::all_with(shared.cluster.client().clone(), &g.resource());
        watcher::watcher(api, watcher::Config::default()).default_backoff().map(move |e| (g, e)).boxed()
    });
    let mut events = futures::stream::select_all(streams);
    // Per group, the objects the cluster has; vanished ones are forgotten once every group
    // has listed (a group that has not yet listed must not make the other's objects vanish).
    let mut seen: HashMap<Group, HashSet<Key>> = HashMap::new();
    let mut listed: HashSet<Group> = HashSet::new();
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            Some(source) = auth_changes.recv() => {
                // Credentials changed: reconcile exactly the objects that read them.
                for k in shared.auth.readers(&source) {
                    let latest = shared.latest.lock().expect("latest lock").get(&k).cloned();
                    if let Some((g, obj)) = latest {
                        tracing::info!(cluster = %shared.cluster.name, object = %k.1, "credentials changed; rebuilding its scalers");
                        shared.reconciled.lock().expect("reconciled lock").remove(&k);
                        shared.applied(g, obj).await;
                    }
                }
                continue;
            }
            _ = shutdown.changed() => break,
        };
        let Some((g, event)) = event else { break };
        // A group whose CRD is not installed counts as listed, empty (see `not_installed`).
        let event = match event {
            Err(e) if group::not_installed(&e) && !listed.contains(&g) => {
                tracing::warn!(cluster = %shared.cluster.name, group = g.label(), error = %e, "ScaledObject watch failed; retrying");
                shared.engine.sync_error(&shared.cluster.name, Some(format!("watching {} ScaledObjects: {e}", g.label())));
                seen.entry(g).or_default().clear();
                Ok(Event::InitDone)
            }
            other => other,
        };
        match event {
            Ok(Event::Init) => seen.entry(g).or_default().clear(),
            Ok(Event::InitApply(obj)) => {
                seen.entry(g).or_default().insert(group::key_of(&obj.metadata));
                shared.applied(g, obj).await;
            }
            Ok(Event::InitDone) => {
                listed.insert(g);
                if listed.len() == groups.len() {
                    let all: HashSet<Key> = seen.values().flatten().cloned().collect();
                    shared.forget_missing(&all).await;
                }
            }
            Ok(Event::Apply(obj)) => {
                shared.engine.sync_error(&shared.cluster.name, None);
                seen.entry(g).or_default().insert(group::key_of(&obj.metadata));
                shared.applied(g, obj).await
            }
            Ok(Event::Delete(obj)) => {
                let k = group::key_of(&obj.metadata);
                seen.entry(g).or_default().remove(&k);
                // The other group's object of that name (refused as a duplicate) stays.
                if shared.group_of(&k) == g {
                    shared.reconciled.lock().expect("reconciled lock").remove(&k);
                    shared.gone(&k).await
                }
            }
            Err(e) => {
                tracing::warn!(cluster = %shared.cluster.name, group = g.label(), error = %e, "ScaledObject watch failed; retrying");
                shared.engine.sync_error(&shared.cluster.name, Some(format!("watching {} ScaledObjects: {e}", g.label())));
            }
        }
    }
    writer.abort();
    jobs.abort();
    Ok(())
}

impl Shared {
    fn actor(&self) -> String {
        format!("cluster:{}", self.cluster.name)
    }

    fn api(&self, group: Group, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.cluster.client().clone(), namespace, &group.resource())
    }

    /// The group an object name was last seen in (Swell's when unknown).
    fn group_of(&self, k: &Key) -> Group {
        self.groups.lock().expect("groups lock").get(k).copied().unwrap_or(Group::Swell)
    }

    async fn applied(self: &Arc<Self>, group: Group, obj: DynamicObject) {
        let k = group::key_of(&obj.metadata);
        let meta = obj.metadata.clone();
        // One name, one object: the second of a swell.dev and a keda.sh twin is refused.
        let twin = {
            let mut groups = self.groups.lock().expect("groups lock");
            match groups.get(&k) {
                Some(&other) if other != group && self.latest.lock().expect("latest lock").contains_key(&k) => Some(other),
                _ => {
                    groups.insert(k.clone(), group);
                    None
                }
            }
        };
        if let Some(other) = twin {
            let message = format!("a {} ScaledObject {}/{} is already managed by Swell; remove one of the two", other.label(), k.0, k.1);
            tracing::warn!(cluster = %self.cluster.name, object = %k.1, "{message}");
            let api = self.api(group, &k.0);
            let status = ScaledObjectStatus { conditions: vec![Condition::new("Ready", false, "DuplicateName", message)], ..Default::default() };
            if self.cluster.fence().holds() {
                let _ = api.patch_status(&k.1, &PatchParams::default(), &Patch::Merge(&group.status_patch(&status, None, None))).await;
            }
            return;
        }
        if let Some(uid) = &meta.uid {
            self.uids.lock().expect("uids lock").insert(k.clone(), uid.clone());
        }
        let api = self.api(group, &k.0);
        let has_finalizer = meta.finalizers.iter().flatten().any(|f| f == FINALIZER);
        if meta.deletion_timestamp.is_some() {
            let has_finalizer = meta.finalizers.iter().flatten().any(|f| group.finalizers().contains(&f.as_str()));
            // Stop polling and actuating at once, leader or not. Forgetting the object and
            // (the leader) taking the finalizer off run beside the watch, a few at a time, so
            // a thousand deletions at once do not queue behind each other's requests.
            self.reconciled.lock().expect("reconciled lock").remove(&k);
            if let Some(view) = self.engine.find(&self.cluster.name, &k.0, &k.1) {
                self.engine.stop_polling(view.id);
            }
            let (this, uid) = (self.clone(), meta.uid.clone());
            tokio::spawn(async move {
                let _permit = this.deletions.acquire().await;
                // Re-created under the same name meanwhile: the new object is not to go.
                if uid.is_some() && this.uids.lock().expect("uids lock").get(&k) != uid.as_ref() {
                    return;
                }
                this.gone(&k).await;
                if has_finalizer && this.cluster.fence().holds() {
                    this.remove_finalizer(group, &api, &k.1).await;
                }
            });
            return;
        }
        let desired = Desired::of(&meta);
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
            let mut finalizers = meta.finalizers.clone().unwrap_or_default();
            finalizers.push(FINALIZER.into());
            let patch = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": meta.resource_version}});
            if let Err(e) = api.patch(&k.1, &PatchParams::default(), &Patch::Merge(&patch)).await {
                tracing::warn!(object = %k.1, error = %e, "adding the finalizer failed");
            }
        }
        self.latest.lock().expect("latest lock").insert(k.clone(), (group, obj.clone()));
        let read = group.read(obj);
        let result = match read.object {
            Err(message) => Err((Error::invalid(format!("{} ScaledObject", group.label()), message), None)),
            Ok(so) => {
                let annotations: BTreeMap<String, String> = meta.annotations.clone().unwrap_or_default();
                let mut sources = std::collections::BTreeSet::new();
                let env = crate::auth::EnvFrom::Target(&so.spec);
                let auth = crate::auth::resolve_tracked(self.cluster.client(), &k.0, self.cluster.namespace(), &so.spec.triggers, env, &mut sources).await;
                self.auth.read_from(&k, sources);
                match (Pause::from_annotations(&annotations), auth) {
                    (Err(e), _) | (_, Err(e)) => Err((e, Some(so.spec))),
                    (Ok(pause), Ok(auth_params)) => {
                        let owner = meta.uid.clone().map(|uid| OwnerReference {
                            api_version: group.api_version().into(),
                            kind: "ScaledObject".into(),
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
                        let spec = so.spec.clone();
                        self.engine
                            .apply_with(&tenant, &self.cluster.name, &k.0, &k.1, "cluster", so.spec, &self.actor(), ObjectExtras { pause, owner, auth_params, last_active })
                            .await
                            .map_err(|e| (e, Some(spec)))
                    }
                }
            }
        };
        match result {
            Ok(_) => {
                self.rejected.lock().expect("rejected lock").remove(&k);
            }
            Err((e, spec)) => {
                tracing::warn!(cluster = %self.cluster.name, object = %k.1, error = %e, "ScaledObject rejected");
                self.engine.sync_error(&self.cluster.name, Some(format!("ScaledObject {}/{} rejected: {e}", k.0, k.1)));
                let message = e.to_string();
                let newly = self.rejected.lock().expect("rejected lock").insert(k.clone(), message.clone()) != Some(message.clone());
                if newly {
                    let status = ScaledObjectStatus {
                        target: spec.as_ref().map(|s| format!("{}/{}", s.scale_target_ref.kind, s.scale_target_ref.name)),
                        conditions: vec![Condition::new("Ready", false, "InvalidSpec", message.clone())],
                        observed_generation: meta.generation,
                        ..Default::default()
                    };
                    self.patch_status(&k, &status, spec.as_ref()).await;
                    self.event(&k, EventType::Warning, "ScaledObjectCheckFailed", &message).await;
                }
            }
        }
    }

    /// Takes Swell's finalizer off a deleted object, re-reading it after a conflict (a
    /// thousand deletions at once race their own status writes) until it is off or gone.
    async fn remove_finalizer(&self, group: Group, api: &Api<DynamicObject>, name: &str) {
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
            let rest: Vec<&String> = so.finalizers().iter().filter(|f| !group.finalizers().contains(&f.as_str())).collect();
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
        self.groups.lock().expect("groups lock").remove(k);
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

    async fn patch_status(&self, k: &Key, status: &ScaledObjectStatus, spec: Option<&ScaledObjectSpec>) -> bool {
        if !self.cluster.fence().holds() {
            return false;
        }
        let group = self.group_of(k);
        let plural = match (group, spec) {
            (Group::Keda, Some(spec)) => self.cluster.plural(&spec.scale_target_ref).await,
            _ => None,
        };
        let patch = group.status_patch(status, spec, plural);
        match self.api(group, &k.0).patch_status(&k.1, &PatchParams::default(), &Patch::Merge(&patch)).await {
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
            api_version: Some(self.group_of(k).api_version().into()),
            kind: Some("ScaledObject".into()),
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

