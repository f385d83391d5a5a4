//! The engine against a real Kubernetes control plane (etcd, kube-apiserver,
//! kube-controller-manager built from source; see end2end/controlplane): CRD sync into SQL,
//! direct actuation 0 → N → 0, deletion through the finalizer, bad input, two clusters.

mod common;

use std::time::Duration;

use common::cluster::{MetricEndpoint, Running, deployment, eventually, install_swell_crds, namespace, replicas};
use engine::actuate::Fence;
use engine::spec::ScaledObject;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use testenv::ControlPlane;

fn scaled_object(name: &str, spec: serde_json::Value) -> ScaledObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name}, "spec": spec
    }))
    .expect("a ScaledObject")
}

fn direct_spec(target: &str, url: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = serde_json::json!({
        "scaleTargetRef": {"name": target},
        "actuation": "direct",
        "pollingInterval": 1,
        "cooldownPeriod": 4,
        "minReplicaCount": 0,
        "maxReplicaCount": 5,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}},
        "triggers": [{"type": "metrics-api", "metadata": {"url": url, "valueLocation": "value", "targetValue": "10"}}]
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    spec
}

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_scales_a_deployment_0_to_n_to_0_and_stops_when_deleted() {
    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    install_swell_crds(&client).await;
    namespace(&client, "shop").await;
    deployment(&client, "shop", "web", 0).await;
    let metric = MetricEndpoint::start(0).await;
    let running = Running::start(vec![("east", client.clone(), Fence::always())]).await;

    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    api.create(&PostParams::default(), &scaled_object("web", direct_spec("web", &metric.url, serde_json::json!({})))).await.unwrap();

    // The object reaches SQL (origin = cluster) and the dashboard's overview.
    eventually("the ScaledObject in the engine", WAIT, || async { running.engine.find("east", "shop", "web") }).await;
    assert_eq!(running.engine.overview("team").iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), vec!["web"]);
    let rows = engine::store::cluster_origin_objects(running.engine.db(), "east").await.unwrap();
    assert_eq!(rows.iter().map(|r| (r.2.as_str(), r.3.as_str())).collect::<Vec<_>>(), vec![("shop", "web")]);
    // Swell put its finalizer on it.
    let so = eventually("the finalizer", WAIT, || async { api.get("web").await.ok().filter(|s| s.metadata.finalizers.as_ref().is_some_and(|f| f.iter().any(|f| f == "swell.dev/finalizer"))) }).await;
    assert!(so.metadata.finalizers.is_some());

    // 0 → 4: ceil(35 / 10).
    metric.set(35);
    eventually("web scaled to 4", WAIT, || async { (replicas(&client, "shop", "web").await == 4).then_some(()) }).await;
    // The real deployment controller acted on it.
    let rs: Api<ReplicaSet> = Api::namespaced(client.clone(), "shop");
    eventually("a ReplicaSet with 4 replicas", WAIT, || async {
        rs.list(&ListParams::default()).await.ok()?.items.iter().any(|r| r.spec.as_ref().and_then(|s| s.replicas) == Some(4)).then_some(())
    })
    .await;
    // Capped at maxReplicaCount.
    metric.set(1000);
    eventually("web capped at 5", WAIT, || async { (replicas(&client, "shop", "web").await == 5).then_some(()) }).await;
    // Status written back.
    eventually("status with 5 desired and Ready=True", WAIT, || async {
        let s = api.get("web").await.ok()?.status?;
        (s.desired_replicas == Some(5) && s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")).then_some(())
    })
    .await;

    // One reconcile per change: Swell's own status writes (many by now) and a field it does
    // not act on re-apply nothing; a spec change does, once.
    let applies = || async {
        let tenant = engine::store::find_tenant(running.engine.db(), "team").await.unwrap().unwrap();
        let rows = engine::store::audit_entries(running.engine.db(), tenant.id, 1000).await.unwrap();
        rows.iter().filter(|r| r.action == "scaled_object.apply" && r.target == "shop/web").count()
    };
    assert_eq!(applies().await, 1, "status patches re-ran the reconcile");
    api.patch("web", &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"labels": {"team": "shop"}, "annotations": {"note": "unrelated"}}})))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(applies().await, 1, "a label or an unrelated annotation re-ran the reconcile");
    api.patch("web", &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"maxReplicaCount": 6}}))).await.unwrap();
    eventually("the spec change reconciled once", WAIT, || async { (applies().await == 2).then_some(()) }).await;

    // Inactive: first down to 1 (the HPA floor while cooling down), then 0 after cooldownPeriod.
    metric.set(0);
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "shop");
    let deactivated = || async { events.list(&ListParams::default()).await.unwrap().items.iter().filter(|e| e.reason.as_deref() == Some("ScaleTargetDeactivated")).count() };
    let (mut seen_one, started) = (false, std::time::Instant::now());
    loop {
        match replicas(&client, "shop", "web").await {
            1 if !seen_one => {
                seen_one = true;
                // KEDA: Deactivated when the target reaches zero, not when cooldown starts.
                tokio::time::sleep(Duration::from_millis(800)).await;
                if replicas(&client, "shop", "web").await == 1 {
                    assert_eq!(deactivated().await, 0, "ScaleTargetDeactivated while still cooling down");
                }
            }
            0 => break,
            _ => {}
        }
        assert!(started.elapsed() < WAIT, "web did not go back to 0 after the cooldown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen_one, "web went to 0 without holding 1 replica through the cooldown");
    eventually("ScaleTargetDeactivated once at zero", WAIT, || async { (deactivated().await == 1).then_some(()) }).await;

    // Deleting the ScaledObject removes it from the engine and SQL and stops actuation.
    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the ScaledObject gone from the cluster", WAIT, || async { api.get_opt("web").await.ok()?.is_none().then_some(()) }).await;
    // The engine hears of the delete through its watch, a moment after the apiserver.
    eventually("web gone from the engine and SQL", WAIT, || async {
        let gone = running.engine.find("east", "shop", "web").is_none()
            && engine::store::cluster_origin_objects(running.engine.db(), "east").await.unwrap().is_empty();
        gone.then_some(())
    })
    .await;
    metric.set(50);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(replicas(&client, "shop", "web").await, 0, "a deleted ScaledObject still scaled its target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_or_reported_by_field_and_others_keep_scaling() {
    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    install_swell_crds(&client).await;
    namespace(&client, "shop").await;
    deployment(&client, "shop", "good", 0).await;
    let metric = MetricEndpoint::start(25).await;
    let _running = Running::start(vec![("east", client.clone(), Fence::always())]).await;
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    let pp = PostParams::default();

    // min > max: the CRD's CEL rule rejects it at the API server.
    let err = api
        .create(&pp, &scaled_object("minmax", direct_spec("good", &metric.url, serde_json::json!({"minReplicaCount": 6, "maxReplicaCount": 2}))))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("minReplicaCount"), "{err}");

    // Accepted by the schema but wrong: a Ready=False condition naming the field.
    let unknown = {
        let mut s = direct_spec("good", &metric.url, serde_json::json!({}));
        s["triggers"][0]["type"] = "kafkaa".into();
        s
    };
    let cases = [
        ("unknown-trigger", unknown, "spec.triggers[0].type"),
        ("missing-target", direct_spec("nope", &metric.url, serde_json::json!({})), "spec.scaleTargetRef.name"),
        (
            "not-scalable",
            direct_spec("good", &metric.url, serde_json::json!({"scaleTargetRef": {"name": "cfg", "kind": "ConfigMap", "apiVersion": "v1"}})),
            "spec.scaleTargetRef.kind",
        ),
    ];
    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "shop");
    cm.create(&pp, &serde_json::from_value(serde_json::json!({"metadata": {"name": "cfg"}})).unwrap()).await.unwrap();
    for (name, spec, _) in &cases {
        api.create(&pp, &scaled_object(name, spec.clone())).await.unwrap();
    }
    // A boolean annotation that is no boolean: KEDA takes it as true; Swell does too and
    // says so, naming the annotation.
    deployment(&client, "shop", "quiet", 0).await;
    let mut so = scaled_object("bad-annotation", direct_spec("quiet", &metric.url, serde_json::json!({})));
    so.metadata.annotations = Some([("autoscaling.keda.sh/paused".to_string(), "perhaps".to_string())].into());
    api.create(&pp, &so).await.unwrap();
    // A second ScaledObject on a workload that already has one: refused by name.
    api.create(&pp, &scaled_object("twin", direct_spec("quiet", &metric.url, serde_json::json!({})))).await.unwrap();
    api.create(&pp, &scaled_object("good", direct_spec("good", &metric.url, serde_json::json!({})))).await.unwrap();

    for (name, _, field) in &cases {
        let message = eventually(&format!("{name}: Ready=False"), WAIT, || async {
            let s = api.get(name).await.ok()?.status?;
            s.conditions.iter().find(|c| c.type_ == "Ready" && c.status == "False").map(|c| c.message.clone())
        })
        .await;
        assert!(message.contains(field), "{name}: {message:?} does not name {field}");
    }
    let status = eventually("bad-annotation paused with a warning", WAIT, || async {
        let s = api.get("bad-annotation").await.ok()?.status?;
        s.conditions.iter().any(|c| c.type_ == "Paused" && c.status == "True").then_some(s)
    })
    .await;
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert!(ready.message.contains("metadata.annotations[autoscaling.keda.sh/paused]") && ready.message.contains("taken as true"), "{ready:?}");
    let message = eventually("twin: Ready=False", WAIT, || async {
        let s = api.get("twin").await.ok()?.status?;
        s.conditions.iter().find(|c| c.type_ == "Ready" && c.status == "False").map(|c| c.message.clone())
    })
    .await;
    assert!(message.contains("bad-annotation") && message.contains("spec.scaleTargetRef"), "{message}");
    assert_eq!(replicas(&client, "shop", "quiet").await, 0, "a paused object's target was scaled");
    // The good object is unaffected: ceil(25 / 10) = 3.
    eventually("good scaled to 3", WAIT, || async { (replicas(&client, "shop", "good").await == 3).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_swell_scales_deployments_on_two_control_planes() {
    let (east, west) = (ControlPlane::start().expect("east starts"), ControlPlane::start().expect("west starts"));
    let (ce, cw) = (east.client().await, west.client().await);
    for c in [&ce, &cw] {
        install_swell_crds(c).await;
        namespace(c, "shop").await;
        deployment(c, "shop", "web", 0).await;
    }
    let (me, mw) = (MetricEndpoint::start(15).await, MetricEndpoint::start(42).await);
    let _running = Running::start(vec![("east", ce.clone(), Fence::always()), ("west", cw.clone(), Fence::always())]).await;
    for (c, m) in [(&ce, &me), (&cw, &mw)] {
        let api: Api<ScaledObject> = Api::namespaced(c.clone(), "shop");
        api.create(&PostParams::default(), &scaled_object("web", direct_spec("web", &m.url, serde_json::json!({})))).await.unwrap();
    }
    eventually("east web at 2 and west web at 5", WAIT, || async {
        (replicas(&ce, "shop", "web").await == 2 && replicas(&cw, "shop", "web").await == 5).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_statefulsets_and_custom_resources_and_honours_pause_annotations() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{DynamicObject, Patch, PatchParams};
    use kube::core::{ApiResource, GroupVersionKind};

    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    install_swell_crds(&client).await;
    namespace(&client, "shop").await;
    // A custom resource with a scale subresource.
    let widget: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                         "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                         "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}},
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}}}]}
    }))
    .unwrap();
    testenv::k8s::install_crds(&client, vec![widget]).await;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"));
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "shop", &ar);
    let w: DynamicObject = serde_json::from_value(serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"replicas": 0}})).unwrap();
    widgets.create(&PostParams::default(), &w).await.unwrap();
    // A StatefulSet.
    common::cluster::create_yaml(
        &client,
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, namespace: shop}\nspec:\n  replicas: 0\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: db, image: registry.invalid/db:1}]}\n",
    )
    .await;
    deployment(&client, "shop", "paused", 0).await;

    let metric = MetricEndpoint::start(25).await;
    let _running = Running::start(vec![("east", client.clone(), Fence::always())]).await;
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    let pp = PostParams::default();
    let target = |name: &str, kind: &str, api_version: &str| serde_json::json!({"scaleTargetRef": {"name": name, "kind": kind, "apiVersion": api_version}});
    api.create(&pp, &scaled_object("widget", direct_spec("w", &metric.url, target("w", "Widget", "example.com/v1")))).await.unwrap();
    api.create(&pp, &scaled_object("db", direct_spec("db", &metric.url, target("db", "StatefulSet", "apps/v1")))).await.unwrap();
    let mut paused = scaled_object("paused", direct_spec("paused", &metric.url, serde_json::json!({})));
    paused.metadata.annotations = Some([("autoscaling.keda.sh/paused-replicas".to_string(), "2".to_string())].into());
    api.create(&pp, &paused).await.unwrap();

    // ceil(25 / 10) = 3 for the Widget and the StatefulSet; the paused one held at 2.
    eventually("Widget w at 3", WAIT, || async {
        widgets.get("w").await.ok()?.data["spec"]["replicas"].as_i64().filter(|r| *r == 3).map(|_| ())
    })
    .await;
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), "shop");
    eventually("StatefulSet db at 3", WAIT, || async { (sts.get("db").await.ok()?.spec?.replicas == Some(3)).then_some(()) }).await;
    eventually("paused held at 2, Paused=True", WAIT, || async {
        let s = api.get("paused").await.ok()?.status?;
        (s.conditions.iter().any(|c| c.type_ == "Paused" && c.status == "True")).then_some(())
    })
    .await;
    assert_eq!(replicas(&client, "shop", "paused").await, 2);
    // Removing the annotation resumes scaling from the metric.
    api.patch("paused", &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": null}}})))
        .await
        .unwrap();
    eventually("paused resumed to 3", WAIT, || async { (replicas(&client, "shop", "paused").await == 3).then_some(()) }).await;
}
