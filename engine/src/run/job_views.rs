//! What the ScaledJobs page shows: each ScaledJob's last poll (queue, Jobs running, pending,
//! succeeded and failed, what was created and why), kept by the ScaledJob loops.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Engine;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobView {
    pub tenant: String,
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// `default`, `custom` or `accurate` (KEDA's scalingStrategy.strategy).
    pub strategy: String,
    pub max_replicas: i64,
    pub queue: i64,
    pub max_scale: i64,
    pub running: i64,
    pub pending: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub created: i64,
    pub paused: bool,
    /// The last poll in words, or why it failed.
    pub explanation: String,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

type Key = (String, String, String);

impl Engine {
    /// Records a ScaledJob's newest poll.
    pub fn job_seen(&self, view: JobView) {
        let key: Key = (view.cluster.clone(), view.namespace.clone(), view.name.clone());
        let tenant = view.tenant.clone();
        let old = self.inner.jobs.write().expect("jobs lock").insert(key, view.clone());
        // A poll that saw the same as the last one is not news.
        if old.is_none_or(|o| JobView { at: view.at, ..o } != view) {
            self.touched(Some(&tenant), super::Topic::Jobs);
        }
    }

    /// Forgets a deleted ScaledJob.
    pub fn job_gone(&self, cluster: &str, namespace: &str, name: &str) {
        let gone = self.inner.jobs.write().expect("jobs lock").remove(&(cluster.to_string(), namespace.to_string(), name.to_string()));
        if let Some(j) = gone {
            self.touched(Some(&j.tenant), super::Topic::Jobs);
        }
    }

    /// The tenant's ScaledJobs as of their last polls, by cluster, namespace and name.
    pub fn jobs(&self, tenant: &str) -> Vec<JobView> {
        self.inner.jobs.read().expect("jobs lock").values().filter(|j| j.tenant == tenant).cloned().collect()
    }
}
