//! The `rabbitmq` scaler against a real RabbitMQ (Debian rabbitmq-server with the management
//! plugin, started privately on 127.0.0.1 by testenv): backlog after publish N / consume M
//! over AMQP and the management API, unacknowledged messages, regex queues with each
//! operation, the message rate, activation at the threshold, one connection per broker, and
//! a broker that goes away and comes back while the engine runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::scalers::{self, Scaler, ScalerContext};
use engine::sim::SimCluster;
use engine::spec::Trigger;
use engine::{Engine, EngineOptions, store};
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use testenv::rabbitmq::RabbitMq;

fn trigger(pairs: &[(&str, &str)]) -> Trigger {
    let metadata: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Trigger { trigger_type: "rabbitmq".into(), name: Some("q".into()), metadata, metric_type: None, use_cached_metrics: false, authentication_ref: None }
}

async fn value(s: &dyn Scaler) -> (f64, bool) {
    let (values, active) = s.metrics_and_activity().await.expect("the scaler reads the broker");
    (values[0].value, active)
}

/// Polls a scaler until it reads `want` (the management API samples every 500 ms here).
async fn reads(s: &dyn Scaler, want: f64, what: &str) {
    let started = Instant::now();
    loop {
        let got = s.metrics_and_activity().await.ok().map(|(v, _)| v[0].value);
        if got == Some(want) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{what}: read {got:?}, want {want}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn publisher(url: &str) -> (Connection, Channel) {
    let conn = Connection::connect(url, ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    (conn, ch)
}

/// Declares a durable queue; returns how many messages it holds.
async fn declare(ch: &Channel, queue: &str) -> usize {
    ch.queue_declare(queue.into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default()).await.unwrap().message_count() as usize
}

async fn publish(ch: &Channel, queue: &str, n: usize) {
    for i in 0..n {
        ch.basic_publish("".into(), queue.into(), BasicPublishOptions::default(), format!("m{i}").as_bytes(), BasicProperties::default().with_delivery_mode(2))
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// Takes `n` messages; acknowledges them when `ack`, else leaves them unacknowledged.
async fn take(ch: &Channel, queue: &str, n: usize, ack: bool) {
    for _ in 0..n {
        let m = ch.basic_get(queue.into(), BasicGetOptions::default()).await.unwrap().expect("a message");
        if ack {
            m.ack(BasicAckOptions::default()).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_activation_regex_rate_and_one_connection_per_broker() {
    let broker = RabbitMq::start().expect("RabbitMQ starts");
    let (_conn, ch) = publisher(&broker.amqp_url()).await;
    declare(&ch, "orders").await;
    publish(&ch, "orders", 30).await;
    take(&ch, "orders", 12, true).await;

    let ctx = ScalerContext::new(None);
    let build = |pairs: &[(&str, &str)]| scalers::build(&trigger(pairs), 0, &ctx, "t").unwrap();
    let (amqp, http) = (broker.amqp_url(), broker.http_url());
    // Publish 30, consume 12: 18 left, over AMQP at once and over HTTP once sampled.
    let by_amqp = build(&[("host", &amqp), ("queueName", "orders"), ("mode", "QueueLength"), ("value", "5"), ("activationValue", "18")]);
    assert_eq!(value(by_amqp.as_ref()).await, (18.0, false), "18 is not above activationValue 18");
    let by_http = build(&[("host", &http), ("queueName", "orders"), ("mode", "QueueLength"), ("value", "5")]);
    reads(by_http.as_ref(), 18.0, "http QueueLength").await;
    publish(&ch, "orders", 1).await;
    assert_eq!(value(by_amqp.as_ref()).await, (19.0, true), "19 is above activationValue 18");

    // 4 taken but not acknowledged: counted unless excludeUnacknowledged; AMQP sees ready only.
    let (_c2, holder) = publisher(&broker.amqp_url()).await;
    take(&holder, "orders", 4, false).await;
    let ready_only = build(&[("host", &http), ("queueName", "orders"), ("excludeUnacknowledged", "true"), ("mode", "QueueLength"), ("value", "5")]);
    reads(by_http.as_ref(), 19.0, "http counts unacknowledged").await;
    reads(ready_only.as_ref(), 15.0, "http excludeUnacknowledged").await;
    assert_eq!(value(by_amqp.as_ref()).await.0, 15.0, "amqp counts ready messages");

    // Regex over orders-a (5) and orders-b (7) in a vhost given by vhostName.
    for (q, n) in [("orders-a", 5), ("orders-b", 7)] {
        declare(&ch, q).await;
        publish(&ch, q, n).await;
    }
    for (op, want) in [("sum", 12.0), ("max", 7.0), ("avg", 6.0)] {
        let s = build(&[("host", &http), ("queueName", "^orders-.$"), ("useRegex", "true"), ("operation", op), ("vhostName", "/"), ("mode", "QueueLength"), ("value", "5")]);
        reads(s.as_ref(), want, &format!("regex {op}")).await;
    }

    // MessageRate: a steady trickle shows a publish rate above 0.
    let rate = build(&[("host", &http), ("queueName", "orders"), ("mode", "MessageRate"), ("value", "10")]);
    let started = Instant::now();
    loop {
        publish(&ch, "orders", 5).await;
        if value(rate.as_ref()).await.0 > 0.0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no publish rate seen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Twenty AMQP scalers on one broker share one connection.
    let many: Vec<_> = (0..20).map(|_| build(&[("host", &amqp), ("queueName", "orders")])).collect();
    for s in &many {
        value(s.as_ref()).await;
    }
    assert_eq!(ctx.amqp.open_connections().await, 1);
    let channels = ctx.amqp.open_channels().await;
    assert!((1..=8).contains(&channels), "{channels} channels for 20+ scalers: they share a few");
    // The broker agrees: our two publisher connections and Swell's one.
    connections_become(&broker, 3).await;
    // A queue that does not exist is an error naming it, and the next poll recovers the channel.
    let missing = build(&[("host", &amqp), ("queueName", "nope")]);
    let err = missing.metrics_and_activity().await.unwrap_err().to_string();
    assert!(err.contains("\"nope\"") && !err.contains("guest:guest"), "{err}");
    assert_eq!(value(by_amqp.as_ref()).await.0, value(by_amqp.as_ref()).await.0);

    // The pool shrinks: once the broker's last scaler is gone, so is its connection.
    drop((by_amqp, many));
    assert_eq!(ctx.amqp.brokers(), 1, "missing still uses the broker");
    drop(missing);
    assert_eq!(ctx.amqp.brokers(), 0);
    connections_become(&broker, 2).await;
}

/// Waits until the broker lists `want` client connections.
async fn connections_become(broker: &RabbitMq, want: usize) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let conns: serde_json::Value = client.get(format!("http://127.0.0.1:{}/api/connections", broker.http_port)).basic_auth("guest", Some("guest")).send().await.unwrap().json().await.unwrap();
        let n = conns.as_array().map_or(0, Vec::len);
        if n == want {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "broker lists {n} connections, want {want}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_falls_back_and_recovers_without_a_restart() {
    let mut broker = RabbitMq::start().expect("RabbitMQ starts");
    {
        let (_conn, ch) = publisher(&broker.amqp_url()).await;
        declare(&ch, "jobs").await;
        publish(&ch, "jobs", 18).await;
    }
    let db = store::connect("sqlite::memory:").await.unwrap();
    store::migrate(&db).await.unwrap();
    store::ensure_tenant(&db, "t", "t").await.unwrap();
    store::ensure_cluster(&db, "sim", "simulated").await.unwrap();
    let mut sim = SimCluster::new(1.0);
    sim.add_deployment("worker", 1, 0.0, 10.0);
    // The broker URL carries guest's password inline: Swell seals it apart from the spec.
    let sealer = Some(Arc::new(engine::crypto::Sealer::from_hex(&"42".repeat(32)).unwrap()));
    let engine = Engine::new(db.clone(), EngineOptions { sim: Some(Arc::new(Mutex::new(sim))), tick: Duration::from_millis(200), sealer, ..Default::default() }).await.unwrap();
    let spec = serde_json::from_value(serde_json::json!({
        "scaleTargetRef": {"name": "worker"}, "pollingInterval": 1, "minReplicaCount": 1, "maxReplicaCount": 10,
        "fallback": {"failureThreshold": 2, "replicas": 7},
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}},
        "triggers": [{"type": "rabbitmq", "metadata": {"host": broker.amqp_url(), "queueName": "jobs", "mode": "QueueLength", "value": "5"}}]
    }))
    .unwrap();
    let id = engine.apply("t", "sim", "ns", "worker", "swell", spec, "test").await.unwrap();
    // guest's password is in no row in clear: spec, trigger rows, audit log, trigger auths.
    {
        use engine::store::entities::{audit_log, scaled_objects, trigger_auths, triggers};
        use sea_orm::EntityTrait;
        let dump = format!(
            "{:?}{:?}{:?}{:?}",
            scaled_objects::Entity::find().all(&db).await.unwrap(),
            triggers::Entity::find().all(&db).await.unwrap(),
            audit_log::Entity::find().all(&db).await.unwrap(),
            trigger_auths::Entity::find().all(&db).await.unwrap()
        );
        assert!(dump.contains("jobs") && dump.contains("inline/worker"), "the rows are there: {dump}");
        assert!(!dump.contains("guest:guest"), "the broker password is stored in clear: {dump}");
    }
    let (_stop, rx) = tokio::sync::watch::channel(false);
    engine.spawn(rx);
    let wait = |want: i32, phase: &'static str, limit: u64| {
        let engine = engine.clone();
        async move {
            let started = Instant::now();
            loop {
                let v = engine.object("t", id).unwrap();
                if v.desired_replicas == Some(want) && v.phase == phase {
                    return v;
                }
                assert!(started.elapsed() < Duration::from_secs(limit), "want {want} ({phase}), have {:?} ({}) error {:?}", v.desired_replicas, v.phase, v.error);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // 18 / 5 per replica = 4.
    wait(4, "Active", 30).await;
    broker.stop();
    // Errors counted, then fallback (7) after more than failureThreshold failures.
    let v = wait(7, "Fallback", 30).await;
    assert!(v.error.is_some());
    let errors = engine.metrics().encode();
    assert!(errors.lines().any(|l| l.starts_with("swell_scaler_errors_total{") && !l.ends_with(" 0")), "{errors}");
    broker.restart().expect("RabbitMQ comes back");
    // A broker killed with SIGKILL may lose what it had not synced yet; this test is about
    // the scaler coming back, so the backlog is put back if it was lost.
    {
        let (_conn, ch) = publisher(&broker.amqp_url()).await;
        let left = declare(&ch, "jobs").await;
        publish(&ch, "jobs", 18usize.saturating_sub(left)).await;
    }
    // The same scaler reconnects by itself (backoff with jitter) and the engine leaves fallback.
    wait(4, "Active", 90).await;
}
