//! `swell serve` against a real control plane in `hpa` mode: the cluster is registered with
//! `swell cluster add` (kubeconfig sealed in SQL), Swell serves external.metrics.k8s.io over
//! HTTPS behind an APIService, owns 0 ↔ 1, and the HPA controller in kube-controller-manager
//! scales 1 → N from Swell's numbers. Deleting the ScaledObject removes Swell's HPA.

mod common;

use std::time::Duration;

use common::{control_plane, curl, free_port, run, serve_against, swell};
use engine::spec::ScaledObject;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, DeleteParams, PostParams};
use testenv::k8s::{MetricEndpoint, create_yaml, deployment, eventually, replicas};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_controller_scales_from_swells_external_metric() {
    let (cp, client) = control_plane().await;
    deployment(&client, "shop", "web", 0).await;
    let metric = MetricEndpoint::start(35).await;

    let served = serve_against(&cp, &client, "warn").await;
    let (port, dir, db) = (served.port, served.dir.path(), served.db.clone());
    // The kubeconfig's token is sealed: not in the database file.
    let stored = std::fs::read(dir.join("swell.db")).unwrap();
    assert!(!stored.windows(cp.token.len()).any(|w| w == cp.token.as_bytes()), "the kubeconfig token is in the database in clear");
    // Without the key, serve refuses to start and says which setting is missing.
    let (code, err) = run(swell(dir).args(["serve", "--bind", &format!("127.0.0.1:{}", free_port()), "--database-url", &db]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("secret_key") && !err.contains(&cp.token), "{err}");

    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    let so: ScaledObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"name": "web"}, "pollingInterval": 1, "cooldownPeriod": 3, "minReplicaCount": 0, "maxReplicaCount": 10,
                 "triggers": [{"type": "metrics-api", "metadata": {"url": metric.url, "valueLocation": "value", "targetValue": "10"}}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &so).await.unwrap();

    // Swell activates 0 → 1; the HPA controller reads 35 from Swell and goes to ceil(35/10) = 4.
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "shop");
    let status = eventually("the HPA wants 4 replicas from the external metric", WAIT, || async {
        let status = hpas.get_opt("swell-hpa-web").await.ok()??.status?;
        (status.desired_replicas == 4).then_some(status)
    })
    .await;
    let metric_status = status.current_metrics.unwrap_or_default();
    let external = metric_status.first().and_then(|m| m.external.as_ref()).expect("an external metric in the HPA status");
    assert_eq!(external.metric.name, "s0-metrics-api-0");
    eventually("the HPA controller scaled web to 4", WAIT, || async { (replicas(&client, "shop", "web").await == 4).then_some(()) }).await;

    // The dashboard shows the synced object in its tenant.
    let (code, page) = common::get_as(port, "/t/team", &served.token).expect("dashboard answers");
    assert_eq!(code, 200);
    assert!(page.contains("web") && page.contains("Deployment/web"), "the dashboard does not list web");

    // Inactive past the cooldown: Swell takes it below the HPA's floor, to 0.
    metric.set(0);
    eventually("web back to 0", WAIT, || async { (replicas(&client, "shop", "web").await == 0).then_some(()) }).await;

    // Deleting the ScaledObject removes Swell's HPA (finalizer).
    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("swell-hpa-web deleted", WAIT, || async { hpas.get_opt("swell-hpa-web").await.ok()?.is_none().then_some(()) }).await;
}

fn so(name: &str, spec: serde_json::Value) -> ScaledObject {
    serde_json::from_value(serde_json::json!({"apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name}, "spec": spec})).unwrap()
}

/// KEDA's hpa path: metrics by name past a failing trigger, fallback served to the real HPA
/// controller, metricType Value, one composite metric for scalingModifiers, a foreign HPA
/// refused, and a switch to direct mode removing the HPA in the same change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_mode_does_what_keda_does() {
    let (cp, client) = control_plane().await;
    for d in ["api", "mods", "legacy", "typed"] {
        deployment(&client, "shop", d, 0).await;
    }
    let low = MetricEndpoint::start(5).await;
    let twenty = MetricEndpoint::start(20).await;
    let fifteen = MetricEndpoint::start(15).await;
    let _served = serve_against(&cp, &client, "warn").await;
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "shop");
    let metric = |url: &str, loc: &str, target: &str| serde_json::json!({"type": "metrics-api", "metadata": {"url": url, "valueLocation": loc, "targetValue": target}});

    // A foreign HPA on `legacy`, made before Swell sees it.
    create_yaml(&client, "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: legacy-hpa, namespace: shop}\nspec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: legacy}, minReplicas: 1, maxReplicas: 3, metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}]}\n").await;

    // api: trigger 0 always fails (no such value), trigger 1 reads 5 (1 replica); fallback 3.
    let base = |triggers: serde_json::Value, extra: serde_json::Value| {
        let mut s = serde_json::json!({"scaleTargetRef": {"name": "x"}, "pollingInterval": 1, "cooldownPeriod": 300, "minReplicaCount": 0, "maxReplicaCount": 10, "triggers": triggers});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    };
    let mut spec = base(
        serde_json::json!([metric(&low.url, "missing.field", "10"), metric(&low.url, "value", "10")]),
        serde_json::json!({"fallback": {"failureThreshold": 2, "replicas": 3}}),
    );
    spec["scaleTargetRef"]["name"] = "api".into();
    api.create(&PostParams::default(), &so("api", spec)).await.unwrap();
    let mut spec = base(
        serde_json::json!([{"name": "a", "type": "metrics-api", "metadata": {"url": twenty.url, "valueLocation": "value", "targetValue": "1"}},
                           {"name": "b", "type": "metrics-api", "metadata": {"url": fifteen.url, "valueLocation": "value", "targetValue": "1"}}]),
        serde_json::json!({"advanced": {"scalingModifiers": {"formula": "a + b", "target": "10", "metricType": "AverageValue"}}}),
    );
    spec["scaleTargetRef"]["name"] = "mods".into();
    api.create(&PostParams::default(), &so("mods", spec)).await.unwrap();
    let mut spec = base(serde_json::json!([{"type": "metrics-api", "metricType": "Value", "metadata": {"url": twenty.url, "valueLocation": "value", "targetValue": "10"}}]), serde_json::json!({}));
    spec["scaleTargetRef"]["name"] = "typed".into();
    api.create(&PostParams::default(), &so("typed", spec)).await.unwrap();
    let mut spec = base(serde_json::json!([metric(&twenty.url, "value", "10")]), serde_json::json!({}));
    spec["scaleTargetRef"]["name"] = "legacy".into();
    api.create(&PostParams::default(), &so("legacy", spec)).await.unwrap();

    // The failing trigger 0 does not hide trigger 1, and past failureThreshold its fallback
    // value (3 × 10) takes the real HPA controller to the fallback's 3 replicas.
    let status = eventually("the HPA of api reads both metrics and wants 3", WAIT, || async {
        let status = hpas.get_opt("swell-hpa-api").await.ok()??.status?;
        (status.desired_replicas == 3).then_some(status)
    })
    .await;
    let names: Vec<String> = status.current_metrics.unwrap_or_default().iter().filter_map(|m| m.external.as_ref().map(|e| e.metric.name.clone())).collect();
    assert!(names.iter().any(|n| n.starts_with("s1-")), "trigger 1's metric is served: {names:?}");
    eventually("api at the fallback's 3 replicas", WAIT, || async { (replicas(&client, "shop", "api").await == 3).then_some(()) }).await;
    // The status (written every 2 s) says so, with KEDA's health counts.
    let s = eventually("Fallback=True in the status of api", WAIT, || async {
        let s = api.get("api").await.ok()?.status?;
        s.conditions.iter().any(|c| c.type_ == "Fallback" && c.status == "True" && c.reason == "FallbackExists").then_some(s)
    })
    .await;
    assert!(s.health.values().any(|h| h.status == "Failing" && h.number_of_failures > 2), "{:?}", s.health);

    // scalingModifiers: one composite metric, 20 + 15 = 35 over target 10 → 4.
    let hpa = eventually("swell-hpa-mods", WAIT, || async { hpas.get_opt("swell-hpa-mods").await.ok()? }).await;
    let metrics = hpa.spec.metrics.unwrap();
    assert_eq!(metrics.len(), 1, "one composite metric");
    assert_eq!(metrics[0].external.as_ref().unwrap().metric.name, "composite-metric");
    eventually("mods at 4 from the composite metric", WAIT, || async { (replicas(&client, "shop", "mods").await == 4).then_some(()) }).await;

    // metricType Value reaches the HPA as a Value target.
    let hpa = eventually("swell-hpa-typed", WAIT, || async { hpas.get_opt("swell-hpa-typed").await.ok()? }).await;
    let metrics = hpa.spec.metrics.unwrap();
    let target = &metrics[0].external.as_ref().unwrap().target;
    assert_eq!((target.type_.as_str(), target.value.as_ref().map(|q| q.0.as_str())), ("Value", Some("10")));
    // No behaviour given: none on the HPA (KEDA's), so the controller takes its default path.
    assert!(hpa.spec.behavior.is_none(), "{:?}", hpa.spec.behavior);
    // paused-scale-in disables scale-down on the HPA itself.
    let patch = serde_json::json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused-scale-in": "true"}}});
    api.patch("typed", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    eventually("scale-down disabled on swell-hpa-typed", WAIT, || async {
        let b = hpas.get("swell-hpa-typed").await.ok()?.spec.behavior?;
        (b.scale_down?.select_policy.as_deref() == Some("Disabled")).then_some(())
    })
    .await;

    // The foreign HPA is refused by name and left alone.
    let message = eventually("legacy refused", WAIT, || async {
        let s = api.get("legacy").await.ok()?.status?;
        s.conditions.into_iter().find(|c| c.type_ == "Ready" && c.status == "False").map(|c| c.message)
    })
    .await;
    assert!(message.contains("legacy-hpa") && message.contains("transfer-hpa-ownership"), "{message}");
    let legacy = hpas.get("legacy-hpa").await.unwrap();
    assert_eq!(legacy.spec.max_replicas, 3, "Swell changed someone else's HPA");
    assert!(hpas.get_opt("swell-hpa-legacy").await.unwrap().is_none(), "a second HPA on the same target");

    // hpa → direct removes Swell's HPA in the same change; Swell then scales mods itself.
    let mut mods = api.get("mods").await.unwrap();
    mods.spec.actuation = engine::spec::Actuation::Direct;
    mods.metadata.managed_fields = None;
    api.replace("mods", &PostParams::default(), &mods).await.unwrap();
    eventually("swell-hpa-mods removed after the switch to direct", Duration::from_secs(10), || async {
        hpas.get_opt("swell-hpa-mods").await.ok()?.is_none().then_some(())
    })
    .await;
}

/// The external metrics API serves only the aggregator (client certificate from the
/// requestheader CA, CN among the allowed names) and callers the API server vouches for and
/// authorizes; the real HPA controller still reads through the aggregator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_api_admits_only_the_aggregator_and_authorized_callers() {
    let (cp, client) = control_plane().await;
    deployment(&client, "shop", "web", 0).await;
    let metric = MetricEndpoint::start(35).await;
    let served = serve_against(&cp, &client, "warn").await;
    let path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/s0-metrics-api-0?labelSelector=scaledobject.swell.dev%2Fname%3Dweb";
    let port = served.api_port;
    eventually("the metrics API listens", WAIT, || async { (curl(port, "/healthz", &[]) == 200).then_some(()) }).await;

    // Nobody: 401. A token nobody issued: 401.
    assert_eq!(curl(port, path, &[]), 401, "anonymous");
    assert_eq!(curl(port, path, &["-H", "Authorization: Bearer made-up"]), 401, "unknown token");
    // A ServiceAccount the API server knows but has granted nothing: 403.
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), "shop");
    sas.create(&PostParams::default(), &serde_json::from_value(serde_json::json!({"metadata": {"name": "nosy"}})).unwrap()).await.unwrap();
    let tr = sas.create_token_request("nosy", &PostParams::default(), &Default::default()).await.unwrap();
    let token: String = tr.status.and_then(|s| s.token).unwrap_or_default();
    assert_eq!(curl(port, path, &["-H", &format!("Authorization: Bearer {token}")]), 403, "an authenticated caller without the right");
    // The admin (system:masters) may: past authentication (404 until the object exists).
    assert_eq!(curl(port, path, &["-H", &format!("Authorization: Bearer {}", cp.token)]), 404, "admin");
    // The aggregator's own client certificate: admitted.
    let (crt, key) = (cp.cert_path("front-proxy-client.crt"), cp.cert_path("front-proxy-client.key"));
    let cert_args = ["--cert", crt.to_str().unwrap(), "--key", key.to_str().unwrap()];
    assert_eq!(curl(port, path, &cert_args), 404, "the aggregator's certificate");
    // A certificate with the right name from another CA: the handshake fails.
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("openssl")
        .current_dir(dir.path())
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "k.pem", "-out", "c.pem", "-days", "1", "-subj", "/CN=front-proxy-client"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    assert_eq!(curl(port, path, &["--cert", c.to_str().unwrap(), "--key", k.to_str().unwrap()]), 0, "a forged aggregator certificate");

    // And the real path works: the HPA controller reads 35 through the aggregator → 4.
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    api.create(
        &PostParams::default(),
        &so("web", serde_json::json!({"scaleTargetRef": {"name": "web"}, "pollingInterval": 1, "minReplicaCount": 0, "maxReplicaCount": 10,
            "triggers": [{"type": "metrics-api", "metadata": {"url": metric.url, "valueLocation": "value", "targetValue": "10"}}]})),
    )
    .await
    .unwrap();
    eventually("the HPA controller scaled web to 4 through the aggregator", WAIT, || async { (replicas(&client, "shop", "web").await == 4).then_some(()) }).await;
    assert_eq!(curl(port, path, &cert_args), 200, "the aggregator reads the value");
}

/// KEDA's transfer-hpa-ownership: with the annotation and the HPA's name in
/// `advanced.horizontalPodAutoscalerConfig.name`, Swell takes over an HPA it did not make
/// (its metrics and bounds become Swell's); with `restoreToOriginalReplicaCount`, deleting
/// the ScaledObject deletes that HPA and puts the target back at the replicas it had before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_taken_over_on_purpose_and_the_original_replicas_restored() {
    let (cp, client) = control_plane().await;
    deployment(&client, "shop", "old", 2).await;
    create_yaml(&client, "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: old-hpa, namespace: shop}\nspec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: old}, minReplicas: 2, maxReplicas: 3, metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}]}\n").await;
    let metric = MetricEndpoint::start(35).await;
    let _served = serve_against(&cp, &client, "warn").await;
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    let mut old = so(
        "old",
        serde_json::json!({"scaleTargetRef": {"name": "old"}, "pollingInterval": 1, "minReplicaCount": 1, "maxReplicaCount": 10,
            "advanced": {"restoreToOriginalReplicaCount": true, "horizontalPodAutoscalerConfig": {"name": "old-hpa"}},
            "triggers": [{"type": "metrics-api", "metadata": {"url": metric.url, "valueLocation": "value", "targetValue": "10"}}]}),
    );
    old.metadata.annotations = Some([("swell.dev/transfer-hpa-ownership".to_string(), "true".to_string())].into());
    api.create(&PostParams::default(), &old).await.unwrap();

    // The HPA is Swell's now: its metric, its bounds; the HPA controller takes old to 35/10 → 4.
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "shop");
    let hpa = eventually("old-hpa taken over", WAIT, || async { hpas.get("old-hpa").await.ok().filter(|h| h.spec.max_replicas == 10) }).await;
    let metrics = hpa.spec.metrics.unwrap_or_default();
    assert_eq!(metrics.len(), 1, "the CPU metric is gone: {metrics:?}");
    assert_eq!(metrics[0].external.as_ref().map(|e| e.metric.name.as_str()), Some("s0-metrics-api-0"));
    assert!(hpas.get_opt("swell-hpa-old").await.unwrap().is_none(), "a second HPA beside the taken one");
    // The HPA controller reads Swell's metric through the aggregator; once it has, old goes
    // to 4. (Flaked once in four runs waiting 60 s for 4; on a timeout the HPA's status says why.)
    let started = std::time::Instant::now();
    while replicas(&client, "shop", "old").await != 4 {
        if started.elapsed() > Duration::from_secs(120) {
            let status = hpas.get("old-hpa").await.ok().and_then(|h| h.status);
            panic!("old not at 4 after 120 s (at {}); old-hpa status: {status:?}", replicas(&client, "shop", "old").await);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let status = eventually("originalReplicaCount in the status", WAIT, || async { api.get("old").await.ok()?.status?.original_replica_count }).await;
    assert_eq!(status, 2);

    // Deleted: the HPA goes, and old is back at its original 2 (and stays there).
    api.delete("old", &DeleteParams::default()).await.unwrap();
    eventually("old-hpa deleted with its ScaledObject", WAIT, || async { hpas.get_opt("old-hpa").await.ok()?.is_none().then_some(()) }).await;
    eventually("old restored to 2", WAIT, || async { (replicas(&client, "shop", "old").await == 2).then_some(()) }).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(replicas(&client, "shop", "old").await, 2, "something scaled old after its ScaledObject went");
}
