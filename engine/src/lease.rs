//! Leader election on a Kubernetes Lease (kube-lease-manager: server-side apply, tolerates
//! clock skew up to `grace`), with fencing: the [`Fence`] of every cluster this instance
//! actuates holds only until `renewTime + duration − grace` of the lease as last read, so an
//! instance that can no longer renew (partitioned, stalled) stops writing `grace` seconds
//! before anyone else may take the lease. Shutting down releases the lease at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

use crate::actuate::Fence;
use crate::metrics::Metrics;
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// Namespace of the Lease (Swell's own; it must exist).
    pub namespace: String,
    pub name: String,
    /// This instance's name in `holderIdentity`; unique per instance.
    pub identity: String,
    /// Seconds a lease is valid after its last renewal.
    pub duration: u64,
    /// Seconds before expiry the holder renews, and stops writing if it could not.
    pub grace: u64,
}

impl LeaseSettings {
    pub fn validate(&self) -> Result<()> {
        if self.grace == 0 || self.grace >= self.duration {
            return Err(Error::invalid("lease_grace_secs", format!("{} must be at least 1 and below lease_duration_secs {}", self.grace, self.duration)));
        }
        Ok(())
    }
}

/// Campaigns for the lease until `shutdown`, keeping `fences` (one per cluster this instance
/// actuates) and the `swell_leader` gauge in step with it.
pub async fn run(client: Client, settings: LeaseSettings, fences: Vec<Fence>, metrics: &Metrics, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    settings.validate()?;
    let manager = LeaseManagerBuilder::new(client.clone(), &settings.name)
        .with_namespace(&settings.namespace)
        .with_identity(&settings.identity)
        .with_duration(settings.duration)
        .with_grace(settings.grace)
        .build()
        .await
        .map_err(|e| Error::Actuation { target: format!("lease {}/{}", settings.namespace, settings.name), message: e.to_string() })?;
    let (mut leader, task) = manager.watch().await;
    let leases: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let revoke = |why: &str| {
        if fences.iter().any(Fence::holds) {
            tracing::info!(identity = %settings.identity, "leadership ended: {why}");
        }
        fences.iter().for_each(Fence::revoke);
        metrics.leader.set(0);
    };
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            changed = leader.changed() => if changed.is_err() { break },
            _ = tick.tick() => {}
        }
        if !*leader.borrow() {
            revoke("another instance holds the lease");
            continue;
        }
        match leases.get(&settings.name).await {
            Ok(lease) => {
                let spec = lease.spec.unwrap_or_default();
                let renewed = spec.renew_time.map(|t| t.0);
                match (spec.holder_identity.as_deref() == Some(settings.identity.as_str()), renewed) {
                    (true, Some(renewed)) => {
                        let until_ms = renewed.as_millisecond() + ((settings.duration - settings.grace) * 1000) as i64;
                        let left_ms = until_ms - now_ms();
                        if left_ms > 0 {
                            if !fences.iter().any(Fence::holds) {
                                tracing::info!(identity = %settings.identity, "leadership acquired");
                            }
                            let deadline = Instant::now() + Duration::from_millis(left_ms as u64);
                            fences.iter().for_each(|f| f.hold_until(deadline));
                            metrics.leader.set(1);
                        } else {
                            revoke("the lease was not renewed in time");
                        }
                    }
                    _ => revoke("the lease names another holder"),
                }
            }
            // Cannot read the lease: keep the deadline already set; it runs out by itself.
            Err(e) => tracing::debug!(error = %e, "reading the lease failed"),
        }
    }
    revoke("shutting down");
    // Closing the channel makes the manager release the lease.
    drop(leader);
    let _ = task.await;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
