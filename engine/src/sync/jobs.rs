//! ScaledJobs of one cluster (`swell.dev`, and `keda.sh` in compatibility mode): mirrored into SQL, one polling loop each (KEDA's strategies in
//! `scaled_job`), with pause annotations, trigger authentication, status, events and metrics
//! as for ScaledObjects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;
use tokio::sync::watch;

use super::{Group, Key, Shared};
use crate::crd::{Condition, ScaledJob, ScaledJobStatus};
use crate::decide::Pause;
use crate::{Error, store};

/// The annotations a ScaledJob loop acts on.
fn steering_annotations(sj: &ScaledJob) -> BTreeMap<String, String> {
    sj.annotations().iter().filter(|(k, _)| k.starts_with("autoscaling.keda.sh/") || k.starts_with("swell.dev/")).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The ScaledJobs of the cluster (Swell's, and KEDA's in compatibility mode): mirrored into
/// SQL, one polling task each.
pub(super) async fn watch_scaled_jobs(shared: Arc<Shared>, groups: Vec<Group>, mut shutdown: watch::Receiver<bool>) {
    let streams = groups.iter().map(|&g| {
        let api: Api<DynamicObject> = Api::all_with(shared.cluster.client().clone(), &g.job_resource());
        watcher::watcher(api, watcher::Config::default()).default_backoff().map(move |e| (g, e)).boxed()
    });
    let mut events = futures::stream::select_all(streams);
    let mut loops: HashMap<Key, (Desired, tokio::task::JoinHandle<()>)> = HashMap::new();
    // Per group, the ScaledJobs the cluster has (cleaned up in SQL once every group listed),
    // and which group each name belongs to (a twin in the other group is refused).
    let mut seen: HashMap<Group, HashSet<Key>> = HashMap::new();
    let mut listed: HashSet<Group> = HashSet::new();
    let mut owners: HashMap<Key, Group> = HashMap::new();
    let db = shared.engine.db().clone();
    let ids = async {
        let tenant = store::ensure_tenant(&db, &shared.tenant, &shared.tenant).await?;
        let cluster = store::ensure_cluster(&db, &shared.cluster.name, "kubeconfig").await?;
        Ok::<_, Error>((tenant.id, cluster.id))
    };
    let (tenant_id, cluster_id) = match ids.await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(error = %e, "ScaledJob sync cannot start");
            return;
        }
    };
    let forget = |k: &Key, loops: &mut HashMap<Key, (Desired, tokio::task::JoinHandle<()>)>| {
        if let Some((_, task)) = loops.remove(k) {
            task.abort();
        }
        shared.engine.job_gone(&shared.cluster.name, &k.0, &k.1);
    };
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            _ = shutdown.changed() => break,
        };
        let Some((g, event)) = event else { break };
        // A group whose CRD is not installed counts as listed, empty (see `not_installed`).
        let event = match event {
            Err(e) if super::group::not_installed(&e) && !listed.contains(&g) => {
                tracing::warn!(cluster = %shared.cluster.name, group = g.label(), error = %e, "ScaledJob watch failed; retrying");
                seen.entry(g).or_default().clear();
                Ok(Event::InitDone)
            }
            other => other,
        };
        let obj = match event {
            Ok(Event::Init) => {
                seen.entry(g).or_default().clear();
                continue;
            }
            Ok(Event::InitApply(obj)) => {
                seen.entry(g).or_default().insert(super::group::key_of(&obj.metadata));
                obj
            }
            Ok(Event::Apply(obj)) => obj,
            Ok(Event::InitDone) => {
                listed.insert(g);
                if listed.len() == groups.len() {
                    let all: HashSet<&Key> = seen.values().flatten().collect();
                    for k in store::scaled_jobs_of(&db, cluster_id).await.unwrap_or_default() {
                        if !all.contains(&k) {
                            forget(&k, &mut loops);
                            owners.remove(&k);
                            let _ = store::delete_scaled_job(&db, cluster_id, &k.0, &k.1).await;
                        }
                    }
                }
                continue;
            }
            Ok(Event::Delete(obj)) => {
                let k = super::group::key_of(&obj.metadata);
                seen.entry(g).or_default().remove(&k);
                if owners.get(&k) == Some(&g) {
                    owners.remove(&k);
                    forget(&k, &mut loops);
                    if let Err(e) = store::delete_scaled_job(&db, cluster_id, &k.0, &k.1).await {
                        tracing::warn!(error = %e, "removing a ScaledJob from SQL failed");
                    }
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(cluster = %shared.cluster.name, group = g.label(), error = %e, "ScaledJob watch failed; retrying");
                continue;
            }
        };
        let k = super::group::key_of(&obj.metadata);
        let api: Api<DynamicObject> = Api::namespaced_with(shared.cluster.client().clone(), &k.0, &g.job_resource());
        if let Some(&other) = owners.get(&k).filter(|&&o| o != g) {
            let message = format!("a {} ScaledJob {}/{} is already managed by Swell; remove one of the two", other.label(), k.0, k.1);
            write_status(&shared, &api, &k.1, &ScaledJobStatus { conditions: vec![Condition::new("Ready", false, "DuplicateName", message)], ..Default::default() }).await;
            continue;
        }
        owners.insert(k.clone(), g);
        let sj = match g.read_job(obj) {
            Ok(sj) => sj,
            Err(e) => {
                forget(&k, &mut loops);
                let message = format!("{} ScaledJob: {e}", g.label());
                write_status(&shared, &api, &k.1, &ScaledJobStatus { conditions: vec![Condition::new("Ready", false, "InvalidSpec", message)], ..Default::default() }).await;
                continue;
            }
        };
        let spec_json = crate::inline_secrets::scrubbed_job_spec(&sj.spec);
        let status_json = sj.status.as_ref().and_then(|s| serde_json::to_value(s).ok());
        let (owner, owner_slug) = match store::tenancy::namespace_tenant(&db, &shared.cluster.name, &k.0).await {
            Ok(Some(t)) => (t.id, t.slug),
            _ => (tenant_id, shared.tenant.clone()),
        };
        if let Err(e) = store::upsert_scaled_job(&db, owner, cluster_id, &k.0, &k.1, spec_json, status_json).await {
            tracing::warn!(error = %e, "storing a ScaledJob failed");
        }
        // A loop runs per desired state: its spec and the annotations that steer it.
        let desired = (sj.spec.clone(), steering_annotations(&sj));
        if loops.get(&k).is_some_and(|(d, task)| *d == desired && !task.is_finished()) {
            continue;
        }
        if let Some((_, task)) = loops.remove(&k) {
            task.abort();
        }
        let task = tokio::spawn(run_scaled_job(shared.clone(), g, sj.clone(), owner_slug));
        loops.insert(k, (desired, task));
    }
    for (_, (_, task)) in loops {
        task.abort();
    }
}

/// What a ScaledJob's loop runs for: its spec and the annotations that steer it.
type Desired = (crate::crd::ScaledJobSpec, BTreeMap<String, String>);

/// Writes a ScaledJob's status (the leader only).
async fn write_status(shared: &Shared, api: &Api<DynamicObject>, name: &str, status: &ScaledJobStatus) {
    if !shared.cluster.fence().holds() {
        return;
    }
    let patch = serde_json::json!({ "status": status });
    if let Err(e) = api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        tracing::warn!(object = %name, error = %e, "ScaledJob status write failed");
        shared.engine.metrics().write_failed("scaledjob_status");
    }
}

/// One ScaledJob's loop; its status carries Ready (with the error naming the field) and Active.
async fn run_scaled_job(shared: Arc<Shared>, group: Group, sj: ScaledJob, tenant: String) {
    let k = (sj.namespace().unwrap_or_default(), sj.name_any());
    let api: Api<DynamicObject> = Api::namespaced_with(shared.cluster.client().clone(), &k.0, &group.job_resource());
    let mut last: Option<ScaledJobStatus> = None;
    let view = |poll: Option<&crate::scaled_job::JobPoll>, paused: bool, error: Option<String>, explanation: String| {
        let counts = poll.map(|p| p.counts).unwrap_or_default();
        shared.engine.job_seen(crate::run::JobView {
            tenant: tenant.clone(),
            cluster: shared.cluster.name.clone(),
            namespace: k.0.clone(),
            name: k.1.clone(),
            strategy: sj.spec.scaling_strategy.strategy.clone().unwrap_or_else(|| "default".into()),
            max_replicas: sj.spec.max_replica_count as i64,
            queue: poll.map_or(0, |p| p.queue),
            max_scale: poll.map_or(0, |p| p.max_scale),
            running: counts.running,
            pending: counts.pending,
            succeeded: counts.succeeded,
            failed: counts.failed,
            created: poll.map_or(0, |p| p.created),
            paused,
            explanation,
            error,
            at: chrono::Utc::now(),
        });
    };
    let write = |status: ScaledJobStatus, last: &mut Option<ScaledJobStatus>| {
        let changed = last.as_ref() != Some(&status);
        *last = Some(status.clone());
        let (shared, api, name) = (shared.clone(), api.clone(), k.1.clone());
        async move {
            if changed {
                write_status(&shared, &api, &name, &status).await;
            }
        }
    };
    // KEDA ScaledJob: the paused annotation (Go ParseBool) stops new Jobs; triggers'
    // authenticationRef resolve as a ScaledObject's do, env from the Job template.
    let pause = match Pause::from_annotations(sj.annotations()) {
        Ok(p) => p,
        Err(e) => {
            view(None, false, Some(e.to_string()), String::new());
            write(ScaledJobStatus { conditions: vec![Condition::new("Ready", false, "InvalidSpec", e.to_string())], ..Default::default() }, &mut last).await;
            return;
        }
    };
    let env = crate::auth::EnvFrom::Containers(crate::scaled_job::template_containers(&sj.spec));
    let mut sources = std::collections::BTreeSet::new();
    let built = match crate::auth::resolve_tracked(shared.cluster.client(), &k.0, shared.cluster.namespace(), &sj.spec.triggers, env, &mut sources).await {
        Ok(auth) => crate::scaled_job::build_scalers_with(&sj.spec, &shared.engine.scaler_context(), &shared.tenant, &auth),
        Err(e) => Err(e),
    };
    let scalers = match built {
        Ok(s) => s,
        Err(e) => {
            view(None, false, Some(e.to_string()), String::new());
            write(ScaledJobStatus { conditions: vec![Condition::new("Ready", false, "InvalidSpec", e.to_string())], ..Default::default() }, &mut last).await;
            return;
        }
    };
    let labels = crate::metrics::ObjectLabels { cluster: shared.cluster.name.clone(), namespace: k.0.clone(), scaled_object: k.1.clone(), r#type: "scaledjob".into() };
    let mut tick = tokio::time::interval(Duration::from_secs(sj.spec.polling_interval.max(1) as u64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_active: Option<String> = sj.status.as_ref().and_then(|s| s.last_active_time.clone());
    loop {
        tick.tick().await;
        if !shared.cluster.fence().holds() {
            continue;
        }
        if pause.paused || pause.scale_out {
            let why = if pause.warnings.is_empty() { "paused by annotation".to_string() } else { pause.warnings.join("; ") };
            shared.engine.metrics().paused.get_or_create(&labels).set(1);
            view(None, true, None, why.clone());
            let status = ScaledJobStatus {
                last_active_time: last_active.clone(),
                conditions: vec![Condition::new("Ready", true, "ScaledJobReady", why.clone()), Condition::new("Paused", true, "ScaledJobPaused", why)],
            };
            write(status, &mut last).await;
            continue;
        }
        shared.engine.metrics().paused.get_or_create(&labels).set(0);
        let started = std::time::Instant::now();
        let result = crate::scaled_job::poll_once(&shared.cluster, &sj, group.api_version(), &scalers, shared.engine.scaler_timeout()).await;
        shared.engine.metrics().loop_latency.observe(started.elapsed().as_secs_f64());
        let status = match result {
            Ok(poll) => {
                view(Some(&poll), false, None, poll.explanation.clone());
                if poll.created > 0 || poll.pruned > 0 {
                    tracing::info!(scaled_job = %k.1, created = poll.created, pruned = poll.pruned, "{}", poll.explanation);
                }
                shared.engine.metrics().desired_replicas.get_or_create(&labels).set(poll.counts.running + poll.created);
                if poll.created > 0 {
                    let reference = k8s_openapi::api::core::v1::ObjectReference {
                        api_version: Some(group.api_version().into()),
                        kind: Some("ScaledJob".into()),
                        name: Some(k.1.clone()),
                        namespace: Some(k.0.clone()),
                        uid: sj.uid(),
                        ..Default::default()
                    };
                    shared.publish(reference, EventType::Normal, "ScaledJobScaled", &poll.explanation).await;
                }
                if poll.active {
                    last_active = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                }
                ScaledJobStatus {
                    last_active_time: last_active.clone(),
                    conditions: vec![
                        Condition::new("Ready", true, "ScaledJobReady", poll.explanation.clone()),
                        Condition::new("Active", poll.active, if poll.active { "ScalerActive" } else { "ScalerNotActive" }, ""),
                    ],
                }
            }
            Err(e) => {
                view(None, false, Some(e.to_string()), String::new());
                shared.engine.metrics().actuation_errors.get_or_create(&labels).inc();
                ScaledJobStatus { last_active_time: last_active.clone(), conditions: vec![Condition::new("Ready", false, "ScaledJobCheckFailed", e.to_string())] }
            }
        };
        write(status, &mut last).await;
    }
}

