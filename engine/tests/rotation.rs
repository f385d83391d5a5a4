//! Credentials that rotate while Swell runs, on a real control plane and a real RabbitMQ: the
//! broker URL (with its password) comes from a Secret through a TriggerAuthentication. With a
//! wrong password the object fails without the password showing anywhere; once the Secret is
//! fixed, the watch on it rebuilds the object's scaler and the target scales — no restart, no
//! change to the ScaledObject. The URL ends in "/" (default vhost, as KEDA reads it).

mod common;

use std::time::Duration;

use common::cluster::{Running, create_yaml, deployment, eventually, install_swell_crds, namespace, replicas};
use engine::actuate::Fence;
use engine::spec::ScaledObject;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use testenv::ControlPlane;
use testenv::rabbitmq::RabbitMq;

const WRONG: &str = "not-the-password-7f3a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_reaches_the_scaler_without_a_restart() {
    let broker = RabbitMq::start().expect("RabbitMQ starts");
    {
        let conn = Connection::connect(&broker.amqp_url(), ConnectionProperties::default()).await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
        ch.queue_declare("jobs".into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default()).await.unwrap();
        for i in 0..18 {
            ch.basic_publish("".into(), "jobs".into(), BasicPublishOptions::default(), format!("m{i}").as_bytes(), BasicProperties::default().with_delivery_mode(2))
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }
    // amqp://guest:guest@127.0.0.1:PORT/ — a trailing slash, the default vhost.
    let good = broker.amqp_url().trim_end_matches("%2f").to_string();
    assert!(good.ends_with('/'), "{good}");
    let bad = good.replace("guest:guest@", &format!("guest:{WRONG}@"));

    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    install_swell_crds(&client).await;
    namespace(&client, "shop").await;
    namespace(&client, "swell").await;
    deployment(&client, "shop", "worker", 0).await;
    create_yaml(
        &client,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: broker, namespace: shop}}\nstringData: {{host: \"{bad}\"}}\n---\n\
             apiVersion: swell.dev/v1alpha1\nkind: TriggerAuthentication\nmetadata: {{name: broker, namespace: shop}}\nspec: {{secretTargetRef: [{{parameter: host, name: broker, key: host}}]}}\n"
        ),
    )
    .await;
    let running = Running::start(vec![("east", client.clone(), Fence::always())]).await;
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    let so: ScaledObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "worker"},
        "spec": {"scaleTargetRef": {"name": "worker"}, "actuation": "direct", "pollingInterval": 1, "minReplicaCount": 0, "maxReplicaCount": 10,
                 "triggers": [{"type": "rabbitmq", "authenticationRef": {"name": "broker"}, "metadata": {"queueName": "jobs", "mode": "QueueLength", "value": "5"}}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &so).await.unwrap();

    // The wrong password: the broker refuses, the status says so, the password shows nowhere.
    let status = eventually("a failing trigger in the status", Duration::from_secs(30), || async {
        let s = api.get("worker").await.ok()?.status?;
        s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "False").then_some(s)
    })
    .await;
    let text = serde_json::to_string(&status).unwrap();
    assert!(!text.contains(WRONG), "the password is in the status: {text}");
    let view = running.engine.find("east", "shop", "worker").unwrap();
    assert!(!format!("{view:?}").contains(WRONG) && !running.engine.metrics().encode().contains(WRONG), "the password leaked into the view or metrics");
    assert_eq!(replicas(&client, "shop", "worker").await, 0);

    // Rotate: the Secret alone changes.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "shop");
    secrets.patch("broker", &PatchParams::default(), &Patch::Merge(serde_json::json!({"stringData": {"host": good}}))).await.unwrap();
    // 18 / 5 per replica = 4, from the rebuilt scaler.
    eventually("worker scaled to 4 with the rotated credentials", Duration::from_secs(30), || async {
        (replicas(&client, "shop", "worker").await == 4).then_some(())
    })
    .await;
    let generation = api.get("worker").await.unwrap().metadata.generation;
    assert_eq!(generation, Some(1), "the ScaledObject itself was not touched");
}
