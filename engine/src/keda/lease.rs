//! Whether KEDA's operator is running: it holds the Lease `operator.keda.sh` (controller-
//! runtime leader election, keda `cmd/operator/main.go`) in its own namespace. Compatibility
//! mode must not manage `keda.sh` objects beside it.

use k8s_openapi::jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};
use kube::Client;

use crate::{Error, Result};

/// KEDA's default `--leader-election-id`.
pub const KEDA_LEASE: &str = "operator.keda.sh";

/// Who holds KEDA's lease, in any namespace, if anybody holds it now.
pub async fn holder(client: &Client) -> Result<Option<String>> {
    let leases: Api<Lease> = Api::all(client.clone());
    let list = leases
        .list(&ListParams::default().fields(&format!("metadata.name={KEDA_LEASE}")))
        .await
        .map_err(|e| Error::invalid("keda_compat", format!("listing Leases {KEDA_LEASE}: {e}")))?;
    Ok(list.items.iter().find_map(|l| held(l, Timestamp::now())))
}

/// A description of the lease's holder when it is held at `now`: a holder whose renewal is
/// older than the lease's duration has stopped.
pub fn held(lease: &Lease, now: Timestamp) -> Option<String> {
    let spec = lease.spec.as_ref()?;
    let who = spec.holder_identity.as_deref().filter(|h| !h.is_empty())?;
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let age = now.duration_since(renewed).as_secs();
    (age < duration).then(|| {
        let ns = lease.metadata.namespace.as_deref().unwrap_or("");
        format!("KEDA's operator holds its leader lease {ns}/{KEDA_LEASE} (holder {who}, renewed {age}s ago, for {duration}s)")
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    use super::*;

    fn lease(holder: &str, renewed_secs_ago: i64, now: Timestamp) -> Lease {
        Lease {
            metadata: kube::core::ObjectMeta { name: Some(KEDA_LEASE.into()), namespace: Some("keda".into()), ..Default::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(now - k8s_openapi::jiff::SignedDuration::from_secs(renewed_secs_ago))),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_lease_renewed_within_its_duration_is_held_and_an_older_or_released_one_is_not() {
        let now = Timestamp::now();
        let held_now = held(&lease("keda-operator-7f9_abc", 3, now), now).expect("held");
        assert!(held_now.contains("keda/operator.keda.sh") && held_now.contains("keda-operator-7f9_abc"), "{held_now}");
        assert_eq!(held(&lease("keda-operator-7f9_abc", 40, now), now), None);
        assert_eq!(held(&lease("", 1, now), now), None);
    }
}
