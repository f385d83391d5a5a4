//! Watch caches of the common scale targets (Deployments and StatefulSets) of one cluster:
//! a poll reads the target's replicas from memory, so in steady state the API server sees a
//! request only when Swell writes. Other kinds (and a cache not yet listed) are read through
//! their scale subresource.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};

use crate::spec::ScaleTargetRef;

/// One kind's cache: the store, whether its first list is in, and the task that feeds it.
struct KindCache<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    ready: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl<K> KindCache<K>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
{
    fn start(client: &Client) -> Self {
        let (store, writer) = reflector::store::<K>();
        let ready = Arc::new(AtomicBool::new(false));
        let flag = ready.clone();
        let api: Api<K> = Api::all(client.clone());
        let task = tokio::spawn(async move {
            // Only replicas are read: drop what makes the objects big.
            let events = watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(|o| {
                    o.meta_mut().managed_fields = None;
                    o.meta_mut().annotations = None;
                })
                .reflect(writer);
            futures::pin_mut!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => flag.store(true, Ordering::Release),
                    Ok(_) => {}
                    // Forbidden or unreachable: polls read through /scale meanwhile.
                    Err(e) => tracing::debug!(error = %e, "scale target watch failed; retrying"),
                }
            }
        });
        KindCache { store, ready, task }
    }

    fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        self.store.get(&ObjectRef::new(name).within(namespace))
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Drop for KindCache<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The caches of one cluster, started on first use (a cluster that only scales custom
/// resources never watches Deployments).
#[derive(Default)]
pub struct TargetCache {
    deployments: std::sync::OnceLock<KindCache<Deployment>>,
    statefulsets: std::sync::OnceLock<KindCache<StatefulSet>>,
}

impl TargetCache {
    /// (spec replicas, status replicas) from the cache, or None when it cannot answer (another
    /// kind, not listed yet, or not there: then the caller asks the API server).
    pub fn replicas(&self, client: &Client, namespace: &str, target: &ScaleTargetRef) -> Option<(i32, i32)> {
        if target.api_version != "apps/v1" {
            return None;
        }
        match target.kind.as_str() {
            "Deployment" => {
                let d = self.deployments.get_or_init(|| KindCache::start(client)).get(namespace, &target.name)?;
                Some((d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1), d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0)))
            }
            "StatefulSet" => {
                let s = self.statefulsets.get_or_init(|| KindCache::start(client)).get(namespace, &target.name)?;
                Some((s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1), s.status.as_ref().map(|s| s.replicas).unwrap_or(0)))
            }
            _ => None,
        }
    }
}
