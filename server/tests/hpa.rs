//! `swell serve` against a real control plane in `hpa` mode: the cluster is registered with
//! `swell cluster add` (kubeconfig sealed in SQL), Swell serves external.metrics.k8s.io over
//! HTTPS behind an APIService, owns 0 ↔ 1, and the HPA controller in kube-controller-manager
//! scales 1 → N from Swell's numbers. Deleting the ScaledObject removes Swell's HPA.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{free_port, get, run, swell};
use engine::spec::ScaledObject;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, DeleteParams, PostParams};
use testenv::ControlPlane;
use testenv::k8s::{MetricEndpoint, create_yaml, deployment, eventually, install_crds, namespace, replicas};

const KEY: &str = "3f1c0a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c";
const WAIT: Duration = Duration::from_secs(60);

struct Serve(std::process::Child);
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_controller_scales_from_swells_external_metric() {
    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    install_crds(&client, engine::crd::all()).await;
    namespace(&client, "shop").await;
    namespace(&client, "swell").await;
    deployment(&client, "shop", "web", 0).await;
    let metric = MetricEndpoint::start(35).await;

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cp.kubeconfig()).unwrap();
    let db = format!("sqlite://{}/swell.db", dir.path().display());
    let (code, err) = run(swell(dir.path())
        .args(["cluster", "add", "east", "--tenant", "team", "--database-url", &db, "--kubeconfig"])
        .arg(&kubeconfig)
        .env("SWELL_SECRET_KEY", KEY));
    assert_eq!(code, 0, "{err}");
    // The kubeconfig's token is sealed: not in the database file.
    let stored = std::fs::read(dir.path().join("swell.db")).unwrap();
    assert!(!stored.windows(cp.token.len()).any(|w| w == cp.token.as_bytes()), "the kubeconfig token is in the database in clear");
    // Without the key, serve refuses to start and says which setting is missing.
    let (code, err) = run(swell(dir.path()).args(["serve", "--bind", &format!("127.0.0.1:{}", free_port()), "--database-url", &db]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("secret_key") && !err.contains(&cp.token), "{err}");

    let (port, api_port) = (free_port(), free_port());
    let _serve = Serve(
        swell(dir.path())
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--database-url", &db, "--log", "warn"])
            .env("SWELL_SECRET_KEY", KEY)
            .env("SWELL_METRICS_API_BIND", format!("127.0.0.1:{api_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    eventually("swell serve answers", WAIT, || async { get(port, "/healthz").map(|_| ()) }).await;

    // Register Swell's metrics API with the aggregator, as deploy/ does in a real install.
    create_yaml(
        &client,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: swell-metrics, namespace: swell}}\nspec: {{type: ExternalName, externalName: 127.0.0.1, ports: [{{name: https, port: {api_port}}}]}}\n---\n\
             apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: v1beta1.external.metrics.k8s.io}}\n\
             spec: {{group: external.metrics.k8s.io, version: v1beta1, insecureSkipTLSVerify: true, groupPriorityMinimum: 100, versionPriority: 100, service: {{name: swell-metrics, namespace: swell, port: {api_port}}}}}\n"
        ),
    )
    .await;

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
    let (code, page) = get(port, "/t/team").expect("dashboard answers");
    assert_eq!(code, 200);
    assert!(page.contains("web") && page.contains("Deployment/web"), "the dashboard does not list web");

    // Inactive past the cooldown: Swell takes it below the HPA's floor, to 0.
    metric.set(0);
    eventually("web back to 0", WAIT, || async { (replicas(&client, "shop", "web").await == 0).then_some(()) }).await;

    // Deleting the ScaledObject removes Swell's HPA (finalizer).
    api.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("swell-hpa-web deleted", WAIT, || async { hpas.get_opt("swell-hpa-web").await.ok()?.is_none().then_some(()) }).await;
}
