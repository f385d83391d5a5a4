//! Helpers for tests against the control plane: waiting, CRDs, namespaces, workloads,
//! applying YAML, and a metric endpoint the `metrics-api` scaler reads.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::Client;

/// Polls `check` every 100 ms until it returns Some, or panics after `limit` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if started.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Installs CRDs (Swell's: `engine::crd::all()`) and waits until the API server serves them.
pub async fn install_crds(client: &Client, crds: Vec<CustomResourceDefinition>) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in &crds {
        api.create(&PostParams::default(), crd).await.expect("CRD is accepted by the API server");
    }
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap();
        eventually(&format!("CRD {name} established"), Duration::from_secs(30), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
            }
        })
        .await;
    }
}

pub async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.expect("namespace created");
}

pub async fn deployment(client: &Client, ns: &str, name: &str, replicas: i32) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &d).await.expect("deployment created");
}

pub async fn replicas(client: &Client, ns: &str, name: &str) -> i32 {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    api.get(name).await.expect("deployment exists").spec.and_then(|s| s.replicas).unwrap_or(-1)
}

/// An HTTP endpoint on 127.0.0.1 answering `{"value": N}`; tests set N.
pub struct MetricEndpoint {
    pub url: String,
    value: Arc<AtomicI64>,
}

impl MetricEndpoint {
    pub async fn start(initial: i64) -> Self {
        let value = Arc::new(AtomicI64::new(initial));
        let v = value.clone();
        let app = axum::Router::new().route(
            "/metric",
            axum::routing::get(move || {
                let v = v.clone();
                async move { axum::Json(serde_json::json!({ "value": v.load(Ordering::SeqCst) })) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metric", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        MetricEndpoint { url, value }
    }

    pub fn set(&self, v: i64) {
        self.value.store(v, Ordering::SeqCst);
    }
}

/// The API of `doc`'s kind (found by discovery) in its namespace, and `doc` as an object.
pub async fn dynamic_api(client: &Client, doc: &serde_json::Value) -> (Api<kube::api::DynamicObject>, kube::api::DynamicObject) {
    use kube::api::DynamicObject;
    use kube::core::GroupVersionKind;
    let (api_version, kind) = (doc["apiVersion"].as_str().unwrap().to_string(), doc["kind"].as_str().unwrap().to_string());
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let (ar, caps) = kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, &kind))
        .await
        .unwrap_or_else(|e| panic!("kind {api_version} {kind} is not served: {e}"));
    let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
    let api = match (caps.scope, obj.metadata.namespace.as_deref()) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    };
    (api, obj)
}

/// Creates every object in a multi-document YAML text (what `kubectl create -f` does).
pub async fn create_yaml(client: &Client, text: &str) {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).expect("YAML parses");
    for doc in docs.into_iter().filter(|d| d.is_object()) {
        let (api, obj) = dynamic_api(client, &doc).await;
        api.create(&PostParams::default(), &obj).await.unwrap_or_else(|e| panic!("create {}: {e}", doc["kind"]));
    }
}

/// Applies objects server-side as `manager` (what `kubectl apply --server-side` does); a
/// CustomResourceDefinition is waited on until the API server serves it.
pub async fn apply_all(client: &Client, docs: &[serde_json::Value], manager: &str) {
    use kube::api::{Patch, PatchParams};
    for doc in docs {
        let (api, obj) = dynamic_api(client, doc).await;
        let name = obj.metadata.name.clone().expect("every object has a name");
        api.patch(&name, &PatchParams::apply(manager).force(), &Patch::Apply(&obj))
            .await
            .unwrap_or_else(|e| panic!("apply {} {name}: {e}", doc["kind"]));
        if doc["kind"] == "CustomResourceDefinition" {
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            eventually(&format!("CRD {name} established"), Duration::from_secs(30), || async {
                let crd = crds.get(&name).await.ok()?;
                crd.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
            })
            .await;
        }
    }
}
