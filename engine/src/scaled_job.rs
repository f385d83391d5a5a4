//! The ScaledJob loop: every `pollingInterval`, read the triggers, combine them
//! (`multipleScalersCalculation`), count running and pending Jobs, create as many new Jobs
//! as KEDA's strategy gives (`decide::jobs_to_create`), and prune finished Jobs past the
//! history limits.

use std::time::Duration;

use kube::ResourceExt;

use crate::actuate::{JobCounts, KubeCluster};
use crate::crd::{ScaledJob, ScaledJobSpec};
use crate::decide::{self, JobScalerReading};
use crate::scalers::{self, Scaler, ScalerContext};
use crate::{Error, Result};

/// What one poll of a ScaledJob saw and did.
#[derive(Clone, Debug, PartialEq)]
pub struct JobPoll {
    pub active: bool,
    /// Combined queue length (ceil).
    pub queue: i64,
    /// Combined jobs the scalers ask for, capped at maxReplicaCount.
    pub max_scale: i64,
    pub counts: JobCounts,
    pub created: i64,
    pub pruned: usize,
    pub explanation: String,
}

pub fn build_scalers(spec: &ScaledJobSpec, ctx: &ScalerContext, tenant: &str) -> Result<Vec<Box<dyn Scaler>>> {
    build_scalers_with(spec, ctx, tenant, &[])
}

/// [`build_scalers`] with each trigger's resolved `authenticationRef` parameters merged into
/// its metadata (in memory only).
pub fn build_scalers_with(spec: &ScaledJobSpec, ctx: &ScalerContext, tenant: &str, auth: &[std::collections::BTreeMap<String, String>]) -> Result<Vec<Box<dyn Scaler>>> {
    spec.validate()?;
    spec.triggers
        .iter()
        .enumerate()
        .map(|(i, t)| scalers::build(&scalers::with_auth(t, auth.get(i)), i, ctx, tenant))
        .collect()
}

/// The containers of a ScaledJob's Job template (for `env` references of its triggers).
pub fn template_containers(spec: &ScaledJobSpec) -> Vec<k8s_openapi::api::core::v1::Container> {
    spec.job_target_ref
        .pointer("/template/spec/containers")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default()
}

pub async fn poll_once(cluster: &KubeCluster, sj: &ScaledJob, owner_api_version: &str, scalers: &[Box<dyn Scaler>], timeout: Duration) -> Result<JobPoll> {
    let spec = &sj.spec;
    let strategy = spec.strategy()?;
    let (namespace, name) = (sj.namespace().unwrap_or_default(), sj.name_any());
    let mut readings = Vec::with_capacity(scalers.len());
    let mut errors = Vec::new();
    for scaler in scalers {
        let target = scaler.metric_spec().target;
        match tokio::time::timeout(timeout, scaler.metrics_and_activity()).await {
            Ok(Ok((values, active))) => readings.push(JobScalerReading { queue_length: values.iter().map(|v| v.value).sum(), target, active }),
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(_) => errors.push(format!("{} timed out after {} ms", scaler.metric_spec().name, timeout.as_millis())),
        }
    }
    // KEDA skips a failing scaler and goes on with the rest; with none left there is nothing to act on.
    if readings.is_empty() {
        return Err(Error::Scaler { scaler: name.clone(), message: errors.join("; ") });
    }
    let (min, max) = (spec.min_replica_count as i64, spec.max_replica_count as i64);
    let (active, queue, max_scale) = decide::combine_job_scalers(&readings, spec.scaling_strategy.multiple_scalers_calculation, min, max);
    let counts = cluster.job_counts(&namespace, &name, &spec.scaling_strategy.pending_pod_conditions).await?;
    let created = decide::jobs_to_create(strategy, active, queue, max_scale, counts.running, counts.pending, min, max);
    if created > 0 {
        cluster.create_jobs(sj, owner_api_version, created).await?;
    }
    let pruned = cluster.prune_jobs(&namespace, &name, spec.successful_jobs_history_limit, spec.failed_jobs_history_limit).await?;
    let explanation = format!(
        "created {created} Job(s): queue {queue}, wants {max_scale}, {} running ({} pending), strategy {}, max {max}{}",
        counts.running,
        counts.pending,
        spec.scaling_strategy.strategy.as_deref().unwrap_or("default"),
        if errors.is_empty() { String::new() } else { format!("; skipped failing triggers: {}", errors.join("; ")) }
    );
    Ok(JobPoll { active, queue, max_scale, counts, created, pruned, explanation })
}
