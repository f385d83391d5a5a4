//! Moving a target to a decision: the scale subresource, and Swell's HPA in `hpa` mode.

use super::object::ObjectRuntime;
use super::Engine;
use crate::actuate::ClusterHandle;
use crate::decide::{Decision, Phase};
use crate::spec::Actuation;
use crate::store::StoredObject;
use crate::{Error, Result};

impl Engine {
    /// (spec replicas, ready replicas) of the object's target.
    pub(super) async fn replicas(&self, cluster: &ClusterHandle, obj: &StoredObject) -> Result<(i32, i32)> {
        match cluster {
            ClusterHandle::Simulated(sim) => {
                let sim = sim.lock().expect("sim lock");
                let d = sim
                    .deployment(&obj.spec.scale_target_ref.name)
                    .map_err(|e| Error::Actuation { target: obj.spec.scale_target_ref.name.clone(), message: e.to_string() })?;
                Ok((d.replicas(), d.ready_replicas(sim.now())))
            }
            ClusterHandle::Kube(k) => k.replicas(&obj.namespace, &obj.spec.scale_target_ref).await,
        }
    }

    /// The target's replicas as the API server has them right now (after a write, when a
    /// watch cache may not have seen it yet).
    pub(super) async fn replicas_fresh(&self, cluster: &ClusterHandle, obj: &StoredObject) -> Result<(i32, i32)> {
        match cluster {
            ClusterHandle::Kube(k) => k.read_scale(&obj.namespace, &obj.spec.scale_target_ref).await,
            sim => self.replicas(sim, obj).await,
        }
    }

    pub(super) async fn scale(&self, cluster: &ClusterHandle, obj: &StoredObject, replicas: i32) -> Result<()> {
        match cluster {
            ClusterHandle::Simulated(sim) => {
                let mut sim = sim.lock().expect("sim lock");
                sim.scale(&obj.spec.scale_target_ref.name, replicas)
                    .map_err(|e| Error::Actuation { target: obj.spec.scale_target_ref.name.clone(), message: e.to_string() })
            }
            ClusterHandle::Kube(k) => {
                k.scale(&obj.namespace, &obj.spec.scale_target_ref, replicas).await?;
                self.inner.metrics.scale_writes.inc();
                Ok(())
            }
        }
    }

    /// Moves the target to the decision; returns whether it wrote the target's replicas.
    /// `direct` (and the simulated cluster): Swell sets the replicas. `hpa`: Swell owns
    /// 0 <-> max(min, 1) and keeps an HPA for the range above, except while paused or
    /// overridden, when it removes the HPA and sets replicas itself.
    pub(super) async fn actuate(&self, cluster: &ClusterHandle, obj: &mut ObjectRuntime, decision: &Decision, current: i32) -> Result<bool> {
        let kube = match cluster {
            ClusterHandle::Kube(k) if obj.stored.spec.actuation == Actuation::Hpa => k.clone(),
            _ => {
                if decision.replicas != current {
                    self.scale(cluster, &obj.stored, decision.replicas).await?;
                    return Ok(true);
                }
                return Ok(false);
            }
        };
        let spec = &obj.stored.spec;
        if matches!(decision.state.phase, Phase::Paused | Phase::Overridden) {
            if obj.hpa_applied {
                kube.delete_hpa(&obj.stored.namespace, &obj.stored.name, spec).await?;
                obj.hpa_applied = false;
            }
            if decision.replicas != current {
                self.scale(cluster, &obj.stored, decision.replicas).await?;
                return Ok(true);
            }
            return Ok(false);
        }
        if !obj.hpa_applied {
            // Never take over an HPA someone else made unless told to (KEDA's validation and
            // its transfer-hpa-ownership annotation).
            let hpa = crate::actuate::hpa_name(&obj.stored.name, spec);
            if let Some(other) = kube.foreign_hpa(&obj.stored.namespace, &spec.scale_target_ref, &hpa, obj.extras.owner.as_ref().map(|o| o.uid.as_str())).await? {
                let transferable = other == hpa && obj.extras.pause.transfer_hpa_ownership;
                if !transferable {
                    return Err(Error::invalid(
                        "spec.scaleTargetRef",
                        format!(
                            "{}/{} is already scaled by HorizontalPodAutoscaler {}/{other}, which this ScaledObject did not create; delete it, or take it over with the annotation {}: \"true\" and spec.advanced.horizontalPodAutoscalerConfig.name: {other}",
                            spec.scale_target_ref.kind,
                            spec.scale_target_ref.name,
                            obj.stored.namespace,
                            crate::decide::ANNOTATION_TRANSFER_HPA_OWNERSHIP,
                        ),
                    ));
                }
            }
            let metrics: Vec<_> = obj.scalers.iter().map(|s| s.metric_spec()).collect();
            let metrics = crate::external::hpa_metrics(spec, &metrics);
            let paused = (obj.extras.pause.scale_in, obj.extras.pause.scale_out);
            kube.apply_hpa(&obj.stored.namespace, &obj.stored.name, spec, &metrics, obj.extras.owner.clone(), paused).await?;
            obj.hpa_applied = true;
        }
        let floor = spec.min_replica_count.max(1);
        if current == 0 && decision.replicas > 0 {
            // Activation: KEDA scales to max(minReplicaCount, 1) and lets the HPA go on.
            self.scale(cluster, &obj.stored, floor).await?;
            return Ok(true);
        } else if decision.replicas < floor && current != decision.replicas {
            // Deactivation after cooldown (to zero or the idle count): below the HPA's range.
            self.scale(cluster, &obj.stored, decision.replicas).await?;
            return Ok(true);
        }
        Ok(false)
    }
}
