//! Event sources against their real local servers. Not a test: run on purpose.
//!
//!   cargo bench -p engine --bench sources
//!   BENCH_OBJECTS=1000 BENCH_SECS=60 BENCH_QUERIES=500 cargo bench -p engine --bench sources
//!   BENCH_RABBITMQ_OBJECTS=10000 BENCH_KAFKA_OBJECTS=0 BENCH_POLLING=10 cargo bench -p engine --bench sources
//!
//! Prints, per source (RabbitMQ over AMQP and over the management API, Kafka, SQS on moto):
//! p50/p99 query latency over BENCH_QUERIES sequential queries; then BENCH_OBJECTS
//! ScaledObjects on one RabbitMQ and BENCH_OBJECTS on one Kafka at 1 s polling for
//! BENCH_SECS: broker connections used, CPU of this process (the brokers are separate
//! processes), p99 tick lateness.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::scalers::{self, ScalerContext};
use engine::sim::SimCluster;
use engine::spec::Trigger;
use engine::{Engine, EngineOptions, store};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn trigger(kind: &str, pairs: &[(&str, &str)]) -> Trigger {
    let metadata: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Trigger { trigger_type: kind.into(), name: Some("m".into()), metadata, metric_type: None, use_cached_metrics: false, authentication_ref: None }
}

async fn latency(label: &str, ctx: &ScalerContext, t: &Trigger, n: usize) {
    let s = scalers::build(t, 0, ctx, "bench").unwrap();
    s.metrics_and_activity().await.expect("first query");
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        s.metrics_and_activity().await.expect("query");
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    println!("{label:<28} p50 {:>7.2} ms   p99 {:>7.2} ms   ({n} queries)", at(0.5), at(0.99));
}

/// A histogram's cumulative buckets (upper bound, count) from the OpenMetrics text.
fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
        .map(|l| {
            let le = l.split("le=\"").nth(1).and_then(|r| r.split('"').next()).and_then(|v| v.parse().ok()).unwrap_or(f64::INFINITY);
            (le, l.split_whitespace().last().and_then(|v| v.parse().ok()).unwrap_or(0.0))
        })
        .collect()
}

/// The bucket bound below which `q` of the samples taken between two snapshots fall.
fn quantile_between(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let total = after.last().map_or(0.0, |b| b.1) - before.last().map_or(0.0, |b| b.1);
    for (i, (le, c)) in after.iter().enumerate() {
        if c - before.get(i).map_or(0.0, |b| b.1) >= total * q {
            return *le;
        }
    }
    f64::INFINITY
}

#[tokio::main]
async fn main() {
    let objects: usize = env("BENCH_OBJECTS", 1000);
    let (rabbit_objects, kafka_objects): (usize, usize) = (env("BENCH_RABBITMQ_OBJECTS", objects), env("BENCH_KAFKA_OBJECTS", objects));
    let polling: u32 = env("BENCH_POLLING", 1);
    let secs: u64 = env("BENCH_SECS", 30);
    let queries: usize = env("BENCH_QUERIES", 500);
    engine::init_tls();
    let rabbit = testenv::rabbitmq::RabbitMq::start().expect("RabbitMQ");
    let kafka = testenv::kafka::Kafka::start().expect("Kafka");
    let moto = testenv::moto::Moto::start().expect("moto");

    // Data: 100 messages in RabbitMQ, lag on 3 Kafka partitions, 10 SQS messages.
    let conn = Connection::connect(&rabbit.amqp_url(), ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    ch.queue_declare("bench".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    for _ in 0..100 {
        ch.basic_publish("".into(), "bench".into(), BasicPublishOptions::default(), b"x", BasicProperties::default()).await.unwrap().await.unwrap();
    }
    let bootstrap = kafka.bootstrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    admin.create_topics(&[NewTopic::new("bench", 3, TopicReplication::Fixed(1))], &AdminOptions::new()).await.unwrap();
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    for p in 0..3 {
        for _ in 0..20 {
            producer.send(FutureRecord::<str, str>::to("bench").partition(p).payload("x"), Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
        }
    }
    let committer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).set("group.id", "bench").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset("bench", p, Offset::Offset(5)).unwrap();
    }
    committer.commit(&tpl, CommitMode::Sync).unwrap();
    let sqs = moto.sqs();
    let queue_url = sqs.create_queue().queue_name("bench").send().await.unwrap().queue_url.unwrap();
    for _ in 0..10 {
        sqs.send_message().queue_url(&queue_url).message_body("x").send().await.unwrap();
    }

    // 1. Query latency per source; Kafka reads unshared here, to time the broker round trips.
    let mut ctx = ScalerContext::new(None);
    ctx.kafka = Arc::new(engine::scalers::kafka::KafkaPool::with_shared_read(Duration::ZERO));
    let (amqp, http) = (rabbit.amqp_url(), rabbit.http_url());
    let endpoint = moto.endpoint();
    println!("query latency against local servers:");
    latency("rabbitmq (AMQP)", &ctx, &trigger("rabbitmq", &[("host", &amqp), ("queueName", "bench")]), queries).await;
    latency("rabbitmq (management API)", &ctx, &trigger("rabbitmq", &[("host", &http), ("queueName", "bench")]), queries).await;
    latency("kafka (3 partitions)", &ctx, &trigger("kafka", &[("bootstrapServers", &bootstrap), ("consumerGroup", "bench"), ("topic", "bench")]), queries).await;
    latency(
        "aws-sqs-queue (moto)",
        &ctx,
        &trigger("aws-sqs-queue", &[("queueURL", &queue_url), ("awsRegion", "eu-west-1"), ("awsEndpoint", &endpoint), ("awsAccessKeyID", "a"), ("awsSecretAccessKey", "b")]),
        queries,
    )
    .await;

    // Prometheus when one is running (end2end/services.sh up prometheus exports PROMETHEUS_URL).
    if let Ok(prometheus) = std::env::var("PROMETHEUS_URL") {
        latency("prometheus (instant query)", &ctx, &trigger("prometheus", &[("serverAddress", &prometheus), ("query", "vector(42)"), ("threshold", "10")]), queries).await;
    } else {
        println!("prometheus: skipped (set PROMETHEUS_URL, e.g. from `bash end2end/services.sh up prometheus`)");
    }

    // 2. Many objects on one RabbitMQ and one Kafka.
    let db = store::connect("sqlite::memory:").await.unwrap();
    store::migrate(&db).await.unwrap();
    store::ensure_tenant(&db, "bench", "bench").await.unwrap();
    store::ensure_cluster(&db, "sim", "simulated").await.unwrap();
    let mut sim = SimCluster::new(1.0);
    for i in 0..rabbit_objects.max(kafka_objects) {
        sim.add_deployment(&format!("r{i}"), 1, 0.0, 10.0);
        sim.add_deployment(&format!("k{i}"), 1, 0.0, 10.0);
    }
    let sealer = Some(Arc::new(engine::crypto::Sealer::from_hex(&"42".repeat(32)).unwrap()));
    let engine = Engine::new(db, EngineOptions { sim: Some(Arc::new(Mutex::new(sim))), sealer, ..Default::default() }).await.unwrap();
    for i in 0..rabbit_objects.max(kafka_objects) {
        for (prefix, kind, meta, n) in [
            ("r", "rabbitmq", serde_json::json!({"host": amqp, "queueName": "bench"}), rabbit_objects),
            ("k", "kafka", serde_json::json!({"bootstrapServers": bootstrap, "consumerGroup": "bench", "topic": "bench"}), kafka_objects),
        ] {
            if i >= n {
                continue;
            }
            let spec = serde_json::from_value(serde_json::json!({
                "scaleTargetRef": {"name": format!("{prefix}{i}")}, "pollingInterval": polling, "minReplicaCount": 1, "maxReplicaCount": 10,
                "triggers": [{"type": kind, "metadata": meta}]
            }))
            .unwrap();
            engine.apply("bench", "sim", "ns", &format!("{prefix}{i}"), "swell", spec, "bench").await.unwrap();
        }
    }
    let (stop, rx) = tokio::sync::watch::channel(false);
    let handle = engine.spawn(rx);
    tokio::time::sleep(Duration::from_secs(3 + polling as u64)).await;
    // Measure the steady state only: the first polls all fall due together at start.
    let lateness0 = buckets(&engine.metrics().encode(), "swell_scheduler_lateness_seconds");
    let polls = |m: &str| m.lines().find(|l| l.starts_with("swell_scale_loop_latency_seconds_count ")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()).unwrap_or(0.0);
    let (c0, t0, p0) = (cpu_secs(), Instant::now(), polls(&engine.metrics().encode()));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cores = (cpu_secs() - c0) / t0.elapsed().as_secs_f64();
    let metrics = engine.metrics().encode();
    let polls_per_sec = (polls(&metrics) - p0) / t0.elapsed().as_secs_f64();
    let lateness1 = buckets(&metrics, "swell_scheduler_lateness_seconds");
    let ctx = engine.scaler_context();
    let broker_conns: serde_json::Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/api/connections", rabbit.http_port))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!(
        "{rabbit_objects} objects on RabbitMQ + {kafka_objects} on Kafka, {polling} s polling, {secs} s: {polls_per_sec:.0} polls/s, AMQP connections from the engine {} with {} channels (broker lists {} connections incl. this benchmark's publisher), Kafka clients {}, CPU {cores:.2} cores, p99 tick lateness ≤ {:.1} ms, objects with scaler errors {}",
        ctx.amqp.open_connections().await,
        ctx.amqp.open_channels().await,
        broker_conns.as_array().map_or(0, Vec::len),
        ctx.kafka.clients(),
        quantile_between(&lateness0, &lateness1, 0.99) * 1000.0,
        metrics.lines().filter(|l| l.starts_with("swell_scaler_errors_total{")).count(),
    );
    let _ = stop.send(true);
    let _ = handle.await;
}
