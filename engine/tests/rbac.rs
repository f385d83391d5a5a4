//! The Helm chart's RBAC (deploy/helm/swell) on a real control plane: acting as `system:serviceaccount:swell:swell`
//! (impersonation), Swell's sync, direct and hpa actuation, finalizer, status, events and
//! leader election all succeed; Secrets outside the granted namespaces are denied.

mod common;

use std::time::Duration;

use common::cluster::{MetricEndpoint, Running, deployment, eventually, install_swell_crds, namespace, replicas};
use engine::actuate::Fence;
use engine::lease::{self, LeaseSettings};
use engine::spec::ScaledObject;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use testenv::ControlPlane;

const SA: &str = "system:serviceaccount:swell:swell";
const WAIT: Duration = Duration::from_secs(30);

fn so(name: &str, mode: &str, url: &str) -> ScaledObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"name": name}, "actuation": mode, "pollingInterval": 1, "minReplicaCount": 0, "maxReplicaCount": 10,
                 "triggers": [{"type": "metrics-api", "metadata": {"url": url, "valueLocation": "value", "targetValue": "10"}}]}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swell_service_account_can_do_its_job_and_no_more() {
    let cp = ControlPlane::start().expect("control plane starts");
    let admin = cp.client().await;
    install_swell_crds(&admin).await;
    namespace(&admin, "swell").await;
    namespace(&admin, "shop").await;
    namespace(&admin, "other").await;
    // The chart's ServiceAccount and RBAC, Secrets granted in `shop` only (rbac.secretNamespaces).
    let rendered = testenv::helm::template("swell", "swell", &["rbac.secretNamespaces={shop}"]).expect("the chart renders");
    let rbac: Vec<_> = rendered
        .into_iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding")))
        .collect();
    testenv::k8s::apply_all(&admin, &rbac, "rbac-test").await;
    for ns in ["shop", "other"] {
        let api: Api<Secret> = Api::namespaced(admin.clone(), ns);
        api.create(&PostParams::default(), &serde_json::from_value(serde_json::json!({"metadata": {"name": "broker"}, "stringData": {"password": "hunter2"}})).unwrap())
            .await
            .unwrap();
    }
    deployment(&admin, "shop", "direct", 0).await;
    deployment(&admin, "shop", "hpa", 0).await;

    let sa = cp.client_as(Some(SA)).await;
    let metric = MetricEndpoint::start(25).await;
    let fence = Fence::elected();
    let running = Running::start(vec![("east", sa.clone(), fence.clone())]).await;
    {
        let (sa, fence, engine) = (sa.clone(), fence.clone(), running.engine.clone());
        let settings = LeaseSettings { namespace: "swell".into(), name: "swell-leader".into(), identity: "only".into(), duration: 6, grace: 2 };
        let (_tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _keep = _tx;
            lease::run(sa, settings, vec![fence], engine.metrics(), rx).await.expect("leader election allowed")
        });
    }
    eventually("the lease acquired as the service account", WAIT, || async { fence.holds().then_some(()) }).await;

    let api: Api<ScaledObject> = Api::namespaced(admin.clone(), "shop");
    api.create(&PostParams::default(), &so("direct", "direct", &metric.url)).await.unwrap();
    api.create(&PostParams::default(), &so("hpa", "hpa", &metric.url)).await.unwrap();
    // direct: scaled to ceil(25/10) = 3 through /scale; status written; finalizer set.
    eventually("direct scaled to 3", WAIT, || async { (replicas(&admin, "shop", "direct").await == 3).then_some(()) }).await;
    eventually("status Ready=True", WAIT, || async {
        api.get("direct").await.ok()?.status?.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await;
    // hpa: Swell activates 0 → 1 and creates its HPA.
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(admin.clone(), "shop");
    eventually("swell-hpa-hpa created", WAIT, || async { hpas.get_opt("swell-hpa-hpa").await.ok()? }).await;
    eventually("hpa activated to 1", WAIT, || async { (replicas(&admin, "shop", "hpa").await >= 1).then_some(()) }).await;
    // Events recorded as the service account.
    let events: Api<Event> = Api::namespaced(admin.clone(), "shop");
    eventually("an activation event", WAIT, || async {
        events.list(&ListParams::default()).await.ok()?.items.iter().any(|e| e.reason.as_deref() == Some("ScaleTargetActivated")).then_some(())
    })
    .await;
    // Deleting: the HPA goes, the finalizer is removed (both as the service account).
    api.delete("hpa", &DeleteParams::default()).await.unwrap();
    eventually("ScaledObject hpa gone", WAIT, || async { api.get_opt("hpa").await.ok()?.is_none().then_some(()) }).await;
    assert!(hpas.get_opt("swell-hpa-hpa").await.unwrap().is_none(), "Swell's HPA outlived its ScaledObject");
    // No call of Swell's was refused along the way.
    let views = running.engine.cluster_objects("east");
    assert!(views.iter().all(|v| v.error.is_none()), "{views:#?}");
    let metrics = running.engine.metrics().encode();
    assert!(!metrics.lines().any(|l| l.starts_with("swell_actuation_errors_total{") && !l.ends_with(" 0")), "an actuation failed: {metrics}");

    // Secrets: readable where granted (get, and list/watch so a rotated Secret rebuilds its
    // readers' scalers), denied elsewhere and cluster-wide.
    let granted: Api<Secret> = Api::namespaced(sa.clone(), "shop");
    assert!(granted.get("broker").await.is_ok());
    assert!(granted.list(&ListParams::default()).await.is_ok(), "the rotation watch needs list in a granted namespace");
    for (what, result) in [
        ("get in other", Api::<Secret>::namespaced(sa.clone(), "other").get("broker").await.map(|_| ())),
        ("list in other", Api::<Secret>::namespaced(sa.clone(), "other").list(&ListParams::default()).await.map(|_| ())),
        ("list everywhere", Api::<Secret>::all(sa.clone()).list(&ListParams::default()).await.map(|_| ())),
    ] {
        match result {
            Err(kube::Error::Api(s)) if s.code == 403 => {}
            other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
        }
    }
}
