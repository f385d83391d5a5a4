//! ScaledJob actuation: count the Jobs a ScaledJob runs (and which are still pending, as
//! KEDA counts them), create new ones from its template, prune finished ones past the
//! history limits.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::{Resource, ResourceExt};

use super::KubeCluster;
use super::kubernetes::short;
use crate::crd::ScaledJob;
use crate::{Error, Result};

/// The label on every Job (and its pods) a ScaledJob created.
pub const LABEL_SCALED_JOB: &str = "scaledjob.swell.dev/name";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Jobs not finished (KEDA's running count includes the pending ones).
    pub running: i64,
    /// Unfinished Jobs none of whose pods runs yet (or, with `pendingPodConditions`, whose
    /// pods do not have all those conditions True).
    pub pending: i64,
    /// Finished Jobs still kept (before this poll's pruning to the history limits).
    pub succeeded: i64,
    pub failed: i64,
}

fn finished(job: &Job, kind: &str) -> bool {
    job.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
}

fn is_finished(job: &Job) -> bool {
    finished(job, "Complete") || finished(job, "Failed")
}

impl KubeCluster {
    fn jobs_api(&self, namespace: &str) -> Api<Job> {
        Api::namespaced(self.client().clone(), namespace)
    }

    fn job_error(&self, namespace: &str, name: &str, e: &kube::Error) -> Error {
        Error::Actuation { target: format!("{}/{namespace}/ScaledJob/{name}", self.name), message: short(e) }
    }

    pub async fn job_counts(&self, namespace: &str, scaled_job: &str, pending_conditions: &[String]) -> Result<JobCounts> {
        let selector = ListParams::default().labels(&format!("{LABEL_SCALED_JOB}={scaled_job}"));
        let jobs = self.jobs_api(namespace).list(&selector).await.map_err(|e| self.job_error(namespace, scaled_job, &e))?;
        let pods: Api<Pod> = Api::namespaced(self.client().clone(), namespace);
        let pods = pods.list(&selector).await.map_err(|e| self.job_error(namespace, scaled_job, &e))?;
        let mut by_job: HashMap<String, Vec<&Pod>> = HashMap::new();
        for pod in &pods.items {
            if let Some(job) = pod.labels().get("job-name") {
                by_job.entry(job.clone()).or_default().push(pod);
            }
        }
        let started = |pod: &&Pod| -> bool {
            let status = pod.status.as_ref();
            if pending_conditions.is_empty() {
                matches!(status.and_then(|s| s.phase.as_deref()), Some("Running" | "Succeeded"))
            } else {
                let conditions = status.and_then(|s| s.conditions.as_ref());
                pending_conditions.iter().all(|want| conditions.is_some_and(|cs| cs.iter().any(|c| &c.type_ == want && c.status == "True")))
            }
        };
        let mut counts = JobCounts::default();
        counts.succeeded = jobs.items.iter().filter(|j| finished(j, "Complete")).count() as i64;
        counts.failed = jobs.items.iter().filter(|j| finished(j, "Failed")).count() as i64;
        for job in jobs.items.iter().filter(|j| !is_finished(j)) {
            counts.running += 1;
            let pods = by_job.get(&job.name_any()).map(Vec::as_slice).unwrap_or_default();
            if !pods.iter().any(started) {
                counts.pending += 1;
            }
        }
        Ok(counts)
    }

    /// Creates `count` Jobs from the ScaledJob's template, owned by it (`owner_api_version`:
    /// Swell's group, or KEDA's for a keda.sh ScaledJob in compatibility mode).
    pub async fn create_jobs(&self, sj: &ScaledJob, owner_api_version: &str, count: i64) -> Result<()> {
        let (namespace, name) = (sj.namespace().unwrap_or_default(), sj.name_any());
        self.fenced(&format!("{}/{namespace}/ScaledJob/{name}", self.name))?;
        let mut spec = sj.spec.job_target_ref.clone();
        // The label goes on the pods too, so their phase can be read per ScaledJob.
        let labels = &mut spec["template"]["metadata"]["labels"];
        if !labels.is_object() {
            *labels = serde_json::json!({});
        }
        labels[LABEL_SCALED_JOB] = name.clone().into();
        let owner = sj.controller_owner_ref(&()).map(|mut o| {
            o.api_version = owner_api_version.into();
            o
        });
        let labels: BTreeMap<String, String> =
            [(LABEL_SCALED_JOB.to_string(), name.clone()), ("app.kubernetes.io/managed-by".to_string(), "swell".to_string())].into();
        let api = self.jobs_api(&namespace);
        for _ in 0..count {
            let job: Job = serde_json::from_value(serde_json::json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"generateName": format!("{name}-"), "namespace": namespace, "labels": labels, "ownerReferences": owner.iter().collect::<Vec<_>>()},
                "spec": spec,
            }))
            .map_err(|e| Error::invalid("spec.jobTargetRef", format!("is not a batch/v1 JobSpec: {e}")))?;
            api.create(&PostParams::default(), &job).await.map_err(|e| self.job_error(&namespace, &name, &e))?;
        }
        Ok(())
    }

    /// Deletes finished Jobs beyond the history limits, oldest first. Returns how many.
    pub async fn prune_jobs(&self, namespace: &str, scaled_job: &str, successful_limit: i32, failed_limit: i32) -> Result<usize> {
        self.fenced(&format!("{}/{namespace}/ScaledJob/{scaled_job}", self.name))?;
        let api = self.jobs_api(namespace);
        let jobs = api
            .list(&ListParams::default().labels(&format!("{LABEL_SCALED_JOB}={scaled_job}")))
            .await
            .map_err(|e| self.job_error(namespace, scaled_job, &e))?;
        let mut deleted = 0;
        for (kind, limit) in [("Complete", successful_limit), ("Failed", failed_limit)] {
            let mut done: Vec<&Job> = jobs.items.iter().filter(|j| finished(j, kind)).collect();
            // Oldest finish first (KEDA sorts by completion time); names break ties within
            // the timestamps' one-second resolution.
            done.sort_by_key(|j| (finished_at(j, kind), j.name_any()));
            let excess = done.len().saturating_sub(limit.max(0) as usize);
            for job in &done[..excess] {
                let params = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
                match api.delete(&job.name_any(), &params).await {
                    Ok(_) => deleted += 1,
                    Err(e) if super::kubernetes::is_not_found(&e) => {}
                    Err(e) => return Err(self.job_error(namespace, scaled_job, &e)),
                }
            }
        }
        Ok(deleted)
    }
}

/// When a finished Job finished: its completionTime (set for Complete), else the time its
/// finishing condition turned true (Failed has no completionTime), else its creation.
fn finished_at(job: &Job, kind: &str) -> Option<k8s_openapi::jiff::Timestamp> {
    let status = job.status.as_ref();
    status
        .and_then(|s| s.completion_time.as_ref().map(|t| t.0))
        .or_else(|| {
            status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == "True"))
                .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
        })
        .or_else(|| job.meta().creation_timestamp.as_ref().map(|t| t.0))
}
