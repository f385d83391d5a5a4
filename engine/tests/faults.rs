//! Faults a production cluster sees, each on real peers with the engine's real loop: the API
//! server restarted under it; one cluster's network blackholed (a network namespace of the
//! test's own) while another cluster keeps scaling; the SQS server and a Kafka broker down
//! (the trigger fails, KEDA's fallback takes over) and back (scaling follows the lag again).

mod common;

use std::time::Duration;

use common::cluster::{MetricEndpoint, Running, deployment, eventually, install_swell_crds, namespace, replicas};
use engine::actuate::Fence;
use engine::spec::ScaledObject;
use kube::api::{Api, PostParams};
use testenv::ControlPlane;
use testenv::kafka::Kafka;
use testenv::moto::Moto;
use testenv::netns::Netns;

const WAIT: Duration = Duration::from_secs(60);

/// One fault at a time: each starts its own control planes.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn direct(name: &str, trigger: serde_json::Value, extra: serde_json::Value) -> ScaledObject {
    let mut so = serde_json::json!({
        "apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"name": name}, "actuation": "direct", "pollingInterval": 1, "minReplicaCount": 0, "maxReplicaCount": 10,
                 "triggers": [trigger]}
    });
    if let (Some(spec), Some(extra)) = (so["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(so).unwrap()
}

fn metrics_api(url: &str) -> serde_json::Value {
    serde_json::json!({"type": "metrics-api", "metadata": {"url": url, "valueLocation": "value", "targetValue": "10"}})
}

async fn reaches(client: &kube::Client, name: &str, want: i32, limit: Duration) {
    eventually(&format!("{name} at {want} replicas"), limit, || async { (replicas(client, "shop", name).await == want).then_some(()) }).await;
}

/// Waits until the object's `Fallback` condition has `status` ("True" while the fallback holds).
async fn fallback_is(objects: &Api<ScaledObject>, name: &str, status: &str) {
    eventually(&format!("{name}: Fallback={status}"), WAIT, || async {
        objects.get(name).await.ok()?.status?.conditions.iter().any(|c| c.type_ == "Fallback" && c.status == status).then_some(())
    })
    .await;
}

async fn prepare(client: &kube::Client, names: &[&str]) {
    install_swell_crds(client).await;
    namespace(client, "shop").await;
    for name in names {
        deployment(client, "shop", name, 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_restarts_under_a_running_engine() {
    let _one = SERIAL.lock().await;
    let mut cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    prepare(&client, &["web", "api"]).await;
    let metric = MetricEndpoint::start(25).await;
    let running = Running::start(vec![("east", client.clone(), Fence::always())]).await;
    let objects: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    objects.create(&PostParams::default(), &direct("web", metrics_api(&metric.url), serde_json::json!({}))).await.unwrap();
    reaches(&client, "web", 3, WAIT).await;

    // The API server goes away for a while; the load grows meanwhile.
    metric.set(55);
    tokio::task::block_in_place(|| {
        cp.kill("apiserver");
        std::thread::sleep(Duration::from_secs(5));
        cp.restart("apiserver").expect("the API server starts again")
    });
    reaches(&client, "web", 6, WAIT).await;
    // The watch is back: an object made after the restart is picked up and scaled.
    objects.create(&PostParams::default(), &direct("api", metrics_api(&metric.url), serde_json::json!({}))).await.unwrap();
    reaches(&client, "api", 6, WAIT).await;
    eventually("api's status written after the restart", WAIT, || async {
        objects.get("api").await.ok()?.status?.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await;
    drop(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_cluster_does_not_hold_up_another() {
    let _one = SERIAL.lock().await;
    let west_host = Netns::create().expect("a network namespace (ip netns, as root)");
    let west_cp = ControlPlane::start_in(&west_host).expect("control plane in the namespace starts");
    let east_cp = ControlPlane::start().expect("control plane starts");
    let (east, west) = (east_cp.client().await, west_cp.client().await);
    prepare(&east, &["web"]).await;
    prepare(&west, &["web"]).await;
    let (east_metric, west_metric) = (MetricEndpoint::start(25).await, MetricEndpoint::start(25).await);
    let running = Running::start(vec![("east", east.clone(), Fence::always()), ("west", west.clone(), Fence::always())]).await;
    Api::<ScaledObject>::namespaced(east.clone(), "shop").create(&PostParams::default(), &direct("web", metrics_api(&east_metric.url), serde_json::json!({}))).await.unwrap();
    Api::<ScaledObject>::namespaced(west.clone(), "shop").create(&PostParams::default(), &direct("web", metrics_api(&west_metric.url), serde_json::json!({}))).await.unwrap();
    reaches(&east, "web", 3, WAIT).await;
    reaches(&west, "web", 3, WAIT).await;

    // West's network drops every packet: its requests hang rather than fail.
    west_host.blackhole(true).expect("iptables in the namespace");
    // It is a blackhole, not a refusal: a request to west gets no answer at all.
    assert!(tokio::time::timeout(Duration::from_secs(3), replicas(&west, "shop", "web")).await.is_err(), "west still answers");
    east_metric.set(55);
    west_metric.set(55);
    reaches(&east, "web", 6, Duration::from_secs(25)).await;
    east_metric.set(85);
    reaches(&east, "web", 9, Duration::from_secs(25)).await;

    // West's network is back: its object catches up.
    west_host.blackhole(false).unwrap();
    reaches(&west, "web", 6, Duration::from_secs(120)).await;
    assert!(running.engine.cluster_objects("east").iter().all(|v| v.error.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqs_server_goes_down_and_comes_back() {
    let _one = SERIAL.lock().await;
    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    prepare(&client, &["worker"]).await;
    let mut moto = Moto::start().expect("moto starts");
    let fill = |moto: &Moto, n: usize| {
        let sqs = moto.sqs();
        async move {
            let url = sqs.create_queue().queue_name("orders").send().await.unwrap().queue_url.unwrap();
            for i in 0..n {
                sqs.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
            }
            url
        }
    };
    let url = fill(&moto, 25).await;
    let trigger = serde_json::json!({"type": "aws-sqs-queue", "metadata": {
        "queueURL": url, "queueLength": "10", "awsRegion": "eu-west-1", "awsEndpoint": moto.endpoint(),
        "awsAccessKeyID": "AKIDTEST", "awsSecretAccessKey": "not-secret"}});
    let _running = Running::start(vec![("east", client.clone(), Fence::always())]).await;
    let objects: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    objects.create(&PostParams::default(), &direct("worker", trigger, serde_json::json!({"fallback": {"failureThreshold": 3, "replicas": 5}}))).await.unwrap();
    reaches(&client, "worker", 3, WAIT).await;

    // Down: the trigger fails; past failureThreshold the fallback's 5 replicas hold.
    moto.stop();
    reaches(&client, "worker", 5, WAIT).await;
    fallback_is(&objects, "worker", "True").await;
    // Back (a fresh server: the queue made again, with more waiting).
    moto.restart().expect("moto starts again");
    fill(&moto, 55).await;
    reaches(&client, "worker", 6, WAIT).await;
    fallback_is(&objects, "worker", "False").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_broker_goes_down_and_comes_back() {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let _one = SERIAL.lock().await;
    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    prepare(&client, &["consumer"]).await;
    let mut kafka = tokio::task::block_in_place(Kafka::start).expect("Kafka starts");
    let produce = |bootstrap: String, from: usize, n: usize| async move {
        let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
        for i in from..from + n {
            producer.send(FutureRecord::<str, str>::to("orders").payload(&format!("m{i}")), Duration::from_secs(30)).await.map_err(|(e, _)| e).unwrap();
        }
    };
    // 25 records on the topic's one partition, nothing committed by the group: under
    // offsetResetPolicy earliest the lag is all of them.
    produce(kafka.bootstrap(), 0, 25).await;
    let trigger = serde_json::json!({"type": "kafka", "metadata": {
        "bootstrapServers": kafka.bootstrap(), "consumerGroup": "workers", "topic": "orders", "lagThreshold": "10",
        "offsetResetPolicy": "earliest", "allowIdleConsumers": "true"}});
    let _running = Running::start(vec![("east", client.clone(), Fence::always())]).await;
    let objects: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    objects.create(&PostParams::default(), &direct("consumer", trigger, serde_json::json!({"fallback": {"failureThreshold": 3, "replicas": 5}}))).await.unwrap();
    reaches(&client, "consumer", 3, WAIT).await;

    // Down: the trigger fails; past failureThreshold the fallback's 5 replicas hold.
    tokio::task::block_in_place(|| kafka.stop());
    reaches(&client, "consumer", 5, WAIT).await;
    fallback_is(&objects, "consumer", "True").await;
    // Back on the same data, with 30 more records: a lag of 55.
    tokio::task::block_in_place(|| kafka.restart()).expect("Kafka starts again");
    produce(kafka.bootstrap(), 25, 30).await;
    reaches(&client, "consumer", 6, WAIT).await;
    fallback_is(&objects, "consumer", "False").await;
}
