//! `keda_compat = true` on a real control plane: a cluster moves from KEDA to Swell by
//! stopping KEDA, with no manifest edited. Swell refuses to start while KEDA's operator holds
//! its lease; then it manages a `keda.sh` ScaledObject as its own (taking over the HPA KEDA
//! made), scales its Deployment 0 → N → 0 in `hpa` and in `direct` mode, writes KEDA's status
//! shape, and on deletion takes off KEDA's finalizer with its own; a `keda.sh` ScaledJob runs
//! its Jobs with credentials from a `keda.sh` TriggerAuthentication.

mod common;

use std::time::Duration;

use common::{KEY, control_plane, free_port, register_cluster, run, serve_registered, swell};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};
use testenv::k8s::{MetricEndpoint, create_yaml, deployment, eventually, install_crds, replicas};

const WAIT: Duration = Duration::from_secs(60);

fn keda_api(client: &kube::Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("keda.sh", "v1alpha1", kind), plural);
    Api::namespaced_with(client.clone(), "shop", &ar)
}

fn condition(status: &Value, type_: &str) -> Option<String> {
    status["conditions"].as_array()?.iter().find(|c| c["type"] == type_).and_then(|c| c["status"].as_str()).map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_objects_are_managed_as_swells_own_once_keda_is_stopped() {
    let (cp, client) = control_plane().await;
    // A cluster without KEDA installed: `swell crdgen --keda` CRDs from Swell's types.
    install_crds(&client, engine::crd::keda_all()).await;
    testenv::k8s::namespace(&client, "keda").await;
    deployment(&client, "shop", "web", 0).await;
    let metric = MetricEndpoint::start(0).await;

    // What KEDA left behind: its ScaledObject (with its finalizer) and its HPA.
    create_yaml(
        &client,
        &format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: web, namespace: shop, finalizers: [finalizer.keda.sh]}}\n\
             spec:\n  scaleTargetRef: {{name: web}}\n  pollingInterval: 1\n  cooldownPeriod: 3\n  minReplicaCount: 0\n  maxReplicaCount: 10\n\
             \x20 triggers:\n  - type: metrics-api\n    metadata: {{url: \"{}\", valueLocation: value, targetValue: \"10\"}}\n",
            metric.url
        ),
    )
    .await;
    let scaled_objects = keda_api(&client, "ScaledObject", "scaledobjects");
    let uid = scaled_objects.get("web").await.unwrap().metadata.uid.unwrap();
    create_yaml(
        &client,
        &format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: keda-hpa-web\n  namespace: shop\n  labels: {{app.kubernetes.io/managed-by: keda-operator}}\n\
             \x20 ownerReferences: [{{apiVersion: keda.sh/v1alpha1, kind: ScaledObject, name: web, uid: {uid}, controller: true}}]\n\
             spec: {{scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}, minReplicas: 1, maxReplicas: 10, metrics: [{{type: External, external: {{metric: {{name: s0-metric-api-value}}, target: {{type: AverageValue, averageValue: \"10\"}}}}}}]}}\n"
        ),
    )
    .await;

    // KEDA's operator still holds its lease: Swell will not start beside it.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "keda");
    let held: Lease = serde_json::from_value(json!({"metadata": {"name": "operator.keda.sh"}, "spec": {"holderIdentity": "keda-operator-5d9c_1", "leaseDurationSeconds": 15}})).unwrap();
    let mut held = held;
    held.spec.as_mut().unwrap().renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(k8s_openapi::jiff::Timestamp::now()));
    leases.create(&Default::default(), &held).await.unwrap();
    let (dir, db) = register_cluster(&cp);
    let (code, err) = run(swell(dir.path())
        .args(["serve", "--bind", &format!("127.0.0.1:{}", free_port()), "--database-url", &db])
        .env("SWELL_SECRET_KEY", KEY)
        .env("SWELL_KEDA_COMPAT", "true"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("keda/operator.keda.sh") && err.contains("keda-operator-5d9c_1") && err.contains("stop KEDA"), "{err}");

    // KEDA stopped (its lease released): Swell starts and takes the object over.
    leases.patch("operator.keda.sh", &PatchParams::default(), &Patch::Merge(json!({"spec": {"holderIdentity": null}}))).await.unwrap();
    let served = serve_registered(dir, db, &client, "warn", &[("SWELL_KEDA_COMPAT", "true")]).await;

    // hpa mode (the default): Swell activates 0 → 1, KEDA's HPA (taken over) goes to 4.
    metric.set(35);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "shop");
    eventually("keda-hpa-web reads Swell's metric and wants 4", WAIT, || async {
        let hpa = hpas.get_opt("keda-hpa-web").await.ok()??;
        let name = hpa.spec.metrics.as_ref()?.first()?.external.as_ref()?.metric.name.clone();
        (name == "s0-metrics-api-0" && hpa.status?.desired_replicas == 4).then_some(())
    })
    .await;
    eventually("web scaled to 4 through the HPA", WAIT, || async { (replicas(&client, "shop", "web").await == 4).then_some(()) }).await;
    let status = eventually("KEDA's status shape, active", WAIT, || async {
        let status = scaled_objects.get("web").await.ok()?.data.get("status").cloned()?;
        (condition(&status, "Active").as_deref() == Some("True")).then_some(status)
    })
    .await;
    assert_eq!(status["scaleTargetKind"], "apps/v1.Deployment", "{status:#}");
    assert_eq!(status["scaleTargetGVKR"], json!({"group": "apps", "version": "v1", "kind": "Deployment", "resource": "deployments"}), "{status:#}");
    assert_eq!(status["hpaName"], "keda-hpa-web");
    assert_eq!(status["triggersTypes"], "metrics-api");
    assert_eq!(condition(&status, "Ready").as_deref(), Some("True"), "{status:#}");
    assert!(status["lastActiveTime"].is_string(), "{status:#}");
    for swell_only in ["desiredReplicas", "target", "lastDecision", "observedGeneration"] {
        assert!(status.get(swell_only).is_none(), "{swell_only} is not KEDA's: {status:#}");
    }
    let so = scaled_objects.get("web").await.unwrap();
    assert!(so.metadata.finalizers.unwrap_or_default().contains(&engine::sync::FINALIZER.to_string()));

    metric.set(0);
    eventually("web back to 0 after the cooldown", WAIT, || async { (replicas(&client, "shop", "web").await == 0).then_some(()) }).await;

    // A swell.dev twin of the same name is refused, naming the one Swell already manages.
    create_yaml(&client, "apiVersion: swell.dev/v1alpha1\nkind: ScaledObject\nmetadata: {name: web, namespace: shop}\nspec: {scaleTargetRef: {name: web}, triggers: [{type: cron, metadata: {timezone: UTC, start: '0 * * * *', end: '1 * * * *', desiredReplicas: '1'}}]}\n").await;
    let twins: Api<engine::spec::ScaledObject> = Api::namespaced(client.clone(), "shop");
    eventually("the swell.dev twin is refused", WAIT, || async {
        let status = twins.get("web").await.ok()?.status?;
        status.conditions.iter().any(|c| c.reason == "DuplicateName" && c.message.contains("keda.sh ScaledObject shop/web")).then_some(())
    })
    .await;
    twins.delete("web", &DeleteParams::default()).await.unwrap();

    // direct mode: the same keda.sh object, Swell's field added; the HPA goes, Swell scales.
    scaled_objects.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"actuation": "direct"}}))).await.unwrap();
    eventually("KEDA's HPA removed in direct mode", WAIT, || async { hpas.get_opt("keda-hpa-web").await.ok()?.is_none().then_some(()) }).await;
    metric.set(35);
    eventually("web scaled to 4 directly", WAIT, || async { (replicas(&client, "shop", "web").await == 4).then_some(()) }).await;
    metric.set(0);
    eventually("web back to 0 directly", WAIT, || async { (replicas(&client, "shop", "web").await == 0).then_some(()) }).await;

    // A keda.sh ScaledJob runs too: Jobs made from its template, owned by KEDA's object; its
    // trigger's URL comes from a Secret through KEDA's TriggerAuthentication.
    let queue = MetricEndpoint::start(2).await;
    create_yaml(
        &client,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: queue, namespace: shop}}\nstringData: {{url: \"{}\"}}\n---\n\
             apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {{name: queue-url, namespace: shop}}\n\
             spec: {{secretTargetRef: [{{parameter: url, name: queue, key: url}}]}}\n---\n\
             apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata: {{name: work, namespace: shop}}\n\
             spec:\n  pollingInterval: 1\n  maxReplicaCount: 5\n\
             \x20 jobTargetRef: {{template: {{spec: {{restartPolicy: Never, containers: [{{name: work, image: registry.invalid/work:1}}]}}}}}}\n\
             \x20 triggers:\n  - type: metrics-api\n    metadata: {{valueLocation: value, targetValue: \"1\"}}\n    authenticationRef: {{name: queue-url}}\n",
            queue.url
        ),
    )
    .await;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), "shop");
    let made = eventually("two Jobs for a queue of 2", WAIT, || async {
        let items = jobs.list(&kube::api::ListParams::default().labels(&format!("{}=work", engine::actuate::LABEL_SCALED_JOB))).await.ok()?.items;
        (items.len() == 2).then_some(items)
    })
    .await;
    let owner = made[0].metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owner.first().map(|o| (o.api_version.as_str(), o.kind.as_str(), o.name.as_str())), Some(("keda.sh/v1alpha1", "ScaledJob", "work")), "{owner:?}");
    let scaled_jobs = keda_api(&client, "ScaledJob", "scaledjobs");
    eventually("the keda.sh ScaledJob reads Ready", WAIT, || async {
        let status = scaled_jobs.get("work").await.ok()?.data.get("status").cloned()?;
        (condition(&status, "Ready").as_deref() == Some("True")).then_some(())
    })
    .await;

    // The CLI against this server and cluster: the cluster connected, the object listed.
    let cli = |args: &[&str]| {
        let out = swell(served.dir.path()).args(args).env("XDG_CONFIG_HOME", served.dir.path()).stdin(std::process::Stdio::null()).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let mut login = swell(served.dir.path())
        .args(["login", &format!("http://127.0.0.1:{}", served.port), "--token-stdin"])
        .env("XDG_CONFIG_HOME", served.dir.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    login.stdin.take().unwrap().write_all(served.token.as_bytes()).unwrap();
    assert!(login.wait().unwrap().success());
    let (code, out, err) = cli(&["get", "clusters", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let clusters: Value = serde_json::from_str(&out).unwrap();
    let east = clusters.as_array().unwrap().iter().find(|c| c["name"] == "east").unwrap_or_else(|| panic!("{out}"));
    assert_eq!(east["connected"], true, "{east}");
    let (code, out, err) = cli(&["describe", "so", "shop/web", "-o", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let described: Value = serde_json::from_str(&out).unwrap();
    let object = &described["object"];
    assert_eq!((object["cluster"].as_str(), object["origin"].as_str(), object["triggers"][0]["kind"].as_str()), (Some("east"), Some("cluster"), Some("metrics-api")), "{out}");

    // import-keda --from-cluster reads the keda.sh object back as Swell's, nothing lost.
    let kubeconfig = served.dir.path().join("kubeconfig-import");
    std::fs::write(&kubeconfig, cp.kubeconfig()).unwrap();
    let (code, out, err) = cli(&["import-keda", "--from-cluster", "--kubeconfig", kubeconfig.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("apiVersion: swell.dev/v1alpha1") && out.contains("name: web") && out.contains("actuation: direct"), "{out}");
    assert!(err.contains("ScaledObject shop/web:") && err.contains("nothing lost"), "{err}");
    assert!(!out.contains(&cp.token) && !err.contains(&cp.token));

    // Deleting it: Swell stops, and takes off its finalizer and KEDA's (KEDA is gone).
    scaled_objects.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the keda.sh object is gone", WAIT, || async { scaled_objects.get_opt("web").await.ok()?.is_none().then_some(()) }).await;
}
