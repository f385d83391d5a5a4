//! TriggerAuthentication and ClusterTriggerAuthentication on a real control plane, feeding
//! the SQS scaler (moto): Secret keys and container env (literal and secretKeyRef) become
//! the scaler's credentials; a missing reference is a Ready=False condition naming the
//! field; no secret value reaches status, views, metrics or SQL.

mod common;

use std::time::Duration;

use common::cluster::{Running, create_yaml, eventually, install_swell_crds, namespace, replicas};
use engine::actuate::Fence;
use engine::spec::ScaledObject;
use kube::api::{Api, PostParams};
use testenv::ControlPlane;
use testenv::moto::Moto;

const SECRET: &str = "s3cr3t-value-never-shown";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_env_reach_the_scaler_and_nowhere_else() {
    let moto = Moto::start().expect("moto starts");
    let sqs = moto.sqs();
    let url = sqs.create_queue().queue_name("orders").send().await.unwrap().queue_url.unwrap();
    for i in 0..25 {
        sqs.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
    }

    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    install_swell_crds(&client).await;
    namespace(&client, "shop").await;
    namespace(&client, "swell").await;
    create_yaml(
        &client,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: aws-creds, namespace: shop}}\nstringData: {{id: AKIDSHOP, secret: {SECRET}}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: aws-global, namespace: swell}}\nstringData: {{id: AKIDGLOBAL, secret: {SECRET}}}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: shop}}\nspec:\n  replicas: 0\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - name: app\n        image: registry.invalid/app:1\n        env:\n        - {{name: REGION, value: eu-west-1}}\n        - name: AWS_SECRET\n          valueFrom: {{secretKeyRef: {{name: aws-creds, key: secret}}}}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web2, namespace: shop}}\nspec:\n  replicas: 0\n  selector: {{matchLabels: {{app: web2}}}}\n  template:\n    metadata: {{labels: {{app: web2}}}}\n    spec: {{containers: [{{name: app, image: registry.invalid/app:1}}]}}\n---\n\
             apiVersion: swell.dev/v1alpha1\nkind: TriggerAuthentication\nmetadata: {{name: aws, namespace: shop}}\nspec:\n  secretTargetRef: [{{parameter: awsAccessKeyID, name: aws-creds, key: id}}]\n  env: [{{parameter: awsSecretAccessKey, name: AWS_SECRET}}, {{parameter: awsRegion, name: REGION, containerName: app}}]\n---\n\
             apiVersion: swell.dev/v1alpha1\nkind: ClusterTriggerAuthentication\nmetadata: {{name: global}}\nspec:\n  secretTargetRef: [{{parameter: awsAccessKeyID, name: aws-global, key: id}}, {{parameter: awsSecretAccessKey, name: aws-global, key: secret}}]\n"
        ),
    )
    .await;

    let running = Running::start(vec![("east", client.clone(), Fence::always())]).await;
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    let so = |name: &str, target: &str, auth: serde_json::Value, region: Option<&str>| -> ScaledObject {
        let mut metadata = serde_json::json!({"queueURL": url, "awsEndpoint": moto.endpoint(), "queueLength": "10"});
        if let Some(r) = region {
            metadata["awsRegion"] = r.into();
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"name": target}, "actuation": "direct", "pollingInterval": 1, "minReplicaCount": 0, "maxReplicaCount": 10,
                     "triggers": [{"type": "aws-sqs-queue", "metadata": metadata, "authenticationRef": auth}]}
        }))
        .unwrap()
    };
    let pp = PostParams::default();
    // The region comes from the target's env through the TriggerAuthentication.
    api.create(&pp, &so("by-ta", "web", serde_json::json!({"name": "aws"}), None)).await.unwrap();
    api.create(&pp, &so("by-cta", "web2", serde_json::json!({"name": "global", "kind": "ClusterTriggerAuthentication"}), Some("eu-west-1"))).await.unwrap();
    api.create(&pp, &so("dangling", "web2", serde_json::json!({"name": "missing"}), Some("eu-west-1"))).await.unwrap();

    // ceil(25 / 10) = 3 through each path.
    eventually("web at 3 (TriggerAuthentication)", WAIT, || async { (replicas(&client, "shop", "web").await == 3).then_some(()) }).await;
    eventually("web2 at 3 (ClusterTriggerAuthentication)", WAIT, || async { (replicas(&client, "shop", "web2").await == 3).then_some(()) }).await;
    let message = eventually("dangling: Ready=False", WAIT, || async {
        api.get("dangling").await.ok()?.status?.conditions.into_iter().find(|c| c.type_ == "Ready" && c.status == "False").map(|c| c.message)
    })
    .await;
    assert!(message.contains("spec.triggers[0].authenticationRef.name") && message.contains("shop/missing"), "{message}");

    // The secret is nowhere to be seen.
    eventually("status written", WAIT, || async { api.get("by-ta").await.ok()?.status.map(|_| ()) }).await;
    let mut seen = String::new();
    for name in ["by-ta", "by-cta", "dangling"] {
        seen += &serde_json::to_string(&api.get(name).await.unwrap().status).unwrap();
    }
    seen += &format!("{:?}", running.engine.overview("team"));
    seen += &running.engine.metrics().encode();
    for o in engine::store::load_objects(running.engine.db()).await.unwrap() {
        seen += &serde_json::to_string(&o.spec).unwrap();
    }
    for v in running.engine.overview("team") {
        for d in running.engine.decisions("team", v.id, 50).await.unwrap() {
            seen += &d.explanation;
        }
    }
    assert!(!seen.contains(SECRET) && !seen.contains("AKIDSHOP"), "a secret leaked");
}
