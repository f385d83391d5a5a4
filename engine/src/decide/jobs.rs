//! ScaledJob decisions, pure: keda `pkg/scaling/scaledjob/metrics.go`
//! (`multipleScalersCalculation`) and `pkg/scaling/executor/scale_jobs.go` (the four scaling
//! strategies).

use serde::{Deserialize, Serialize};

/// KEDA `scalingStrategy.multipleScalersCalculation`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MultipleScalersCalculation {
    #[default]
    Max,
    Min,
    Avg,
    Sum,
}

/// KEDA `scalingStrategy.strategy`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum JobStrategy {
    Default,
    Custom { queue_length_deduction: i64, running_job_percentage: f64 },
    Accurate,
    Eager,
}

/// One ScaledJob scaler's reading: the queue length and the jobs it asks for
/// (`ceil(queue / target)` capped at maxReplicaCount), and whether it is active.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobScalerReading {
    pub queue_length: f64,
    pub target: f64,
    pub active: bool,
}

/// KEDA `IsScaledJobActive`: combines the scalers into (active, queue length, max scale).
pub fn combine_job_scalers(
    readings: &[JobScalerReading],
    how: MultipleScalersCalculation,
    min_replicas: i64,
    max_replicas: i64,
) -> (bool, i64, i64) {
    let per = |r: &JobScalerReading| -> (f64, f64) {
        let max_value = if r.target > 0.0 { (r.queue_length / r.target).min(max_replicas as f64) } else { 0.0 };
        (r.queue_length, max_value)
    };
    let (mut queue, mut max_value, mut active) = (0.0f64, 0.0f64, false);
    match how {
        MultipleScalersCalculation::Min => {
            for r in readings.iter().filter(|r| r.active) {
                let (q, m) = per(r);
                if queue == 0.0 || q < queue {
                    (queue, max_value, active) = (q, m, true);
                }
            }
        }
        MultipleScalersCalculation::Avg => {
            let active_ones: Vec<_> = readings.iter().filter(|r| r.active).map(per).collect();
            if !active_ones.is_empty() {
                let n = active_ones.len() as f64;
                queue = active_ones.iter().map(|(q, _)| q).sum::<f64>() / n;
                max_value = active_ones.iter().map(|(_, m)| m).sum::<f64>() / n;
                active = true;
            }
        }
        MultipleScalersCalculation::Sum => {
            for r in readings.iter().filter(|r| r.active) {
                let (q, m) = per(r);
                queue += q;
                max_value += m;
                active = true;
            }
        }
        MultipleScalersCalculation::Max => {
            for r in readings.iter().filter(|r| r.active) {
                let (q, m) = per(r);
                if q > queue {
                    (queue, max_value, active) = (q, m, true);
                }
            }
        }
    }
    if min_replicas > 0 {
        active = true;
    }
    let max_value = max_value.min(max_replicas as f64);
    (active, queue.ceil() as i64, max_value.ceil() as i64)
}

/// KEDA `RequestJobScale` / `getScalingDecision`: how many new Jobs to create this poll.
/// `scale_to` and `max_scale` come from [`combine_job_scalers`].
#[allow(clippy::too_many_arguments)]
pub fn jobs_to_create(
    strategy: JobStrategy,
    active: bool,
    scale_to: i64,
    max_scale: i64,
    running: i64,
    pending: i64,
    min_replicas: i64,
    max_replicas: i64,
) -> i64 {
    let (effective_max, scale_to) = if running < min_replicas {
        (min_replicas - running, min_replicas - running)
    } else {
        let running = running - min_replicas;
        match strategy {
            JobStrategy::Default => (max_scale - running, scale_to),
            JobStrategy::Custom { queue_length_deduction, running_job_percentage } => (
                (max_scale - queue_length_deduction - (running as f64 * running_job_percentage) as i64).min(max_replicas),
                scale_to,
            ),
            // keda #7417: pending Jobs are already counted in the queue, so the max check
            // subtracts them too.
            JobStrategy::Accurate => {
                if max_scale + running - pending > max_replicas {
                    (max_replicas - running, scale_to)
                } else {
                    (max_scale - pending, scale_to)
                }
            }
            // Eager fills every free slot up to maxReplicaCount.
            JobStrategy::Eager => ((max_replicas - running - pending).min(max_scale), max_replicas),
        }
    };
    if !active || effective_max <= 0 {
        return 0;
    }
    scale_to.min(effective_max).max(0)
}

