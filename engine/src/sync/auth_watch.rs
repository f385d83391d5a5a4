//! Rotation without a restart: watches the TriggerAuthentications, ClusterTriggerAuthentications
//! and Secrets that objects' credentials came from, and asks the sync to rebuild exactly the
//! objects that read a changed one. Secrets are watched per namespace (Swell may read
//! Secrets only where it is granted, see the Helm chart's rbac.secretNamespaces), starting with the
//! first object that reads one there.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::mpsc;

use super::Key;
use crate::auth::AuthSource;
use crate::crd::{ClusterTriggerAuthentication, TriggerAuthentication};

/// Which object read what, and the watches that report changes to it.
pub(super) struct AuthWatch {
    client: Client,
    sources: Mutex<HashMap<Key, BTreeSet<AuthSource>>>,
    secret_namespaces: Mutex<HashSet<String>>,
    changed: mpsc::UnboundedSender<AuthSource>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl AuthWatch {
    /// Starts the (cluster-wide) TriggerAuthentication and ClusterTriggerAuthentication
    /// watches, KEDA's too with `keda` (compatibility mode reads them by the same names);
    /// changes arrive on the returned receiver.
    pub(super) fn start(client: Client, keda: bool) -> (AuthWatch, mpsc::UnboundedReceiver<AuthSource>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tasks = vec![
            tokio::spawn(watch(Api::<TriggerAuthentication>::all(client.clone()), tx.clone(), |ta: &TriggerAuthentication| {
                AuthSource::TriggerAuthentication { namespace: ta.namespace().unwrap_or_default(), name: ta.name_any() }
            })),
            tokio::spawn(watch(Api::<ClusterTriggerAuthentication>::all(client.clone()), tx.clone(), |cta: &ClusterTriggerAuthentication| {
                AuthSource::ClusterTriggerAuthentication { name: cta.name_any() }
            })),
        ];
        if keda {
            let ta = crate::keda::resource(crate::keda::Kind::TriggerAuthentication);
            let cta = crate::keda::resource(crate::keda::Kind::ClusterTriggerAuthentication);
            tasks.push(tokio::spawn(watch(Api::<DynamicObject>::all_with(client.clone(), &ta), tx.clone(), |o: &DynamicObject| {
                AuthSource::TriggerAuthentication { namespace: o.namespace().unwrap_or_default(), name: o.name_any() }
            })));
            tasks.push(tokio::spawn(watch(Api::<DynamicObject>::all_with(client.clone(), &cta), tx.clone(), |o: &DynamicObject| {
                AuthSource::ClusterTriggerAuthentication { name: o.name_any() }
            })));
        }
        let w = AuthWatch { client, sources: Mutex::default(), secret_namespaces: Mutex::default(), changed: tx, tasks: Mutex::new(tasks) };
        (w, rx)
    }

    /// Records what an object's credentials were read from, watching new Secret namespaces.
    pub(super) fn read_from(&self, key: &Key, sources: BTreeSet<AuthSource>) {
        for s in &sources {
            if let AuthSource::Secret { namespace, .. } = s {
                if self.secret_namespaces.lock().expect("namespaces lock").insert(namespace.clone()) {
                    let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
                    let task = tokio::spawn(watch(api, self.changed.clone(), |s: &Secret| AuthSource::Secret {
                        namespace: s.namespace().unwrap_or_default(),
                        name: s.name_any(),
                    }));
                    self.tasks.lock().expect("tasks lock").push(task);
                }
            }
        }
        let mut all = self.sources.lock().expect("sources lock");
        if sources.is_empty() {
            all.remove(key);
        } else {
            all.insert(key.clone(), sources);
        }
    }

    pub(super) fn forget(&self, key: &Key) {
        self.sources.lock().expect("sources lock").remove(key);
    }

    /// The objects that read `source`.
    pub(super) fn readers(&self, source: &AuthSource) -> Vec<Key> {
        self.sources.lock().expect("sources lock").iter().filter(|(_, s)| s.contains(source)).map(|(k, _)| k.clone()).collect()
    }
}

impl Drop for AuthWatch {
    fn drop(&mut self) {
        for t in self.tasks.get_mut().expect("tasks lock").drain(..) {
            t.abort();
        }
    }
}

/// Sends `source_of(object)` for every change after the first list (the state at start is
/// what the objects were resolved against).
async fn watch<K>(api: Api<K>, tx: mpsc::UnboundedSender<AuthSource>, source_of: fn(&K) -> AuthSource)
where
    K: Resource + Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned + 'static,
{
    let mut events = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut listed = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => {}
            Ok(Event::InitApply(_)) => {}
            Ok(Event::InitDone) => listed = true,
            Ok(Event::Apply(o) | Event::Delete(o)) if listed => {
                if tx.send(source_of(&o)).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "credentials watch failed; retrying"),
        }
    }
}
