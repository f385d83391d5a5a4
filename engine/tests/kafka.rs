//! The `kafka` scaler against Apache Kafka 4 (KRaft, single node, Maven Central jars on the
//! JDK): produce to partitions, commit offsets, expect KEDA's lag; missing commits under
//! both reset policies; the partition cap and limitToPartitionsWithLag; persistent lag;
//! activation; one client per group; a broker that goes away and comes back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use engine::scalers::{self, Scaler, ScalerContext};
use engine::spec::Trigger;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use testenv::kafka::Kafka;

fn trigger(pairs: &[(&str, &str)]) -> Trigger {
    let metadata: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Trigger { trigger_type: "kafka".into(), name: Some("lag".into()), metadata, metric_type: None, use_cached_metrics: false, authentication_ref: None }
}

async fn read(s: &dyn Scaler) -> (f64, bool) {
    let (v, active) = s.metrics_and_activity().await.expect("the scaler reads the lag");
    (v[0].value, active)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_rules_activation_pooling_and_an_outage() {
    let mut kafka = Kafka::start().expect("Kafka starts");
    let bootstrap = kafka.bootstrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let created = admin.create_topics(&[NewTopic::new("orders", 3, TopicReplication::Fixed(1))], &AdminOptions::new()).await.unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    // 10 records to partition 0, 5 to partition 1, none to partition 2.
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    for (partition, n) in [(0, 10), (1, 5)] {
        for i in 0..n {
            producer
                .send(FutureRecord::<str, str>::to("orders").partition(partition).payload(&format!("m{i}")), Duration::from_secs(10))
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
    }
    // The group committed 4 on partition 0 and 5 on partition 1, nothing on partition 2.
    let committer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).set("group.id", "workers").create().unwrap();
    let commit = |offsets: &[(i32, i64)]| {
        let mut tpl = TopicPartitionList::new();
        for (p, o) in offsets {
            tpl.add_partition_offset("orders", *p, Offset::Offset(*o)).unwrap();
        }
        // A broker that just started may not have elected the group's coordinator yet
        // (NotCoordinator, CoordinatorLoadInProgress): ask again until it has.
        let started = std::time::Instant::now();
        loop {
            match committer.commit(&tpl, CommitMode::Sync) {
                Ok(()) => break,
                Err(e) if started.elapsed() < Duration::from_secs(30) => {
                    eprintln!("commit not taken yet, retrying: {e}");
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("committing offsets: {e}"),
            }
        }
    };
    commit(&[(0, 4), (1, 5)]);

    let ctx = ScalerContext::new(None);
    let build = |extra: &[(&str, &str)]| {
        let mut pairs = vec![("bootstrapServers", bootstrap.as_str()), ("consumerGroup", "workers"), ("topic", "orders")];
        pairs.extend_from_slice(extra);
        scalers::build(&trigger(&pairs), 0, &ctx, "t").unwrap()
    };
    // (10 − 4) + (5 − 5) + 1 for the partition without a commit under offsetResetPolicy latest.
    assert_eq!(read(build(&[]).as_ref()).await.0, 7.0);
    assert_eq!(read(build(&[("scaleToZeroOnInvalidOffset", "true")]).as_ref()).await.0, 6.0);
    assert_eq!(read(build(&[("offsetResetPolicy", "earliest")]).as_ref()).await.0, 6.0, "partition 2 is empty");
    // Activation at the threshold.
    assert_eq!(read(build(&[("activationLagThreshold", "7")]).as_ref()).await, (7.0, false));
    assert_eq!(read(build(&[("activationLagThreshold", "6")]).as_ref()).await, (7.0, true));
    // Cap: 3 partitions × lagThreshold 1 = 3; only partitions with lag (0 and 2) = 2; no cap when idle consumers are allowed.
    assert_eq!(read(build(&[("lagThreshold", "1")]).as_ref()).await.0, 3.0);
    assert_eq!(read(build(&[("lagThreshold", "1"), ("limitToPartitionsWithLag", "true")]).as_ref()).await.0, 2.0);
    assert_eq!(read(build(&[("lagThreshold", "1"), ("allowIdleConsumers", "true")]).as_ref()).await.0, 7.0);
    // Persistent lag: the commit on partition 0 has not moved since the last poll.
    let persistent = build(&[("excludePersistentLag", "true")]);
    assert_eq!(read(persistent.as_ref()).await, (7.0, true));
    assert_eq!(read(persistent.as_ref()).await, (1.0, true), "partition 0's lag is persistent; activity still sees 7");
    commit(&[(0, 8)]);
    // Reads of one group and topic are shared for half a second.
    tokio::time::sleep(engine::scalers::kafka::SHARED_READ + Duration::from_millis(100)).await;
    assert_eq!(read(persistent.as_ref()).await.0, 3.0, "the commit moved: (10 − 8) + 1");
    // Every scaler of the group shared one client.
    assert_eq!(ctx.kafka.clients(), 1);

    // Outage: errors while the broker is down, then the same scaler reads again.
    let scaler = build(&[]);
    kafka.stop();
    tokio::time::sleep(engine::scalers::kafka::SHARED_READ + Duration::from_millis(100)).await;
    let err = scaler.metrics_and_activity().await.unwrap_err().to_string();
    assert!(err.contains("workers"), "{err}");
    kafka.restart().expect("Kafka comes back");
    let started = Instant::now();
    loop {
        if let Ok((v, _)) = scaler.metrics_and_activity().await {
            assert_eq!(v[0].value, 3.0);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no recovery after the broker came back");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The pool shrinks: the group's client goes with its last scaler.
    drop(scaler);
    assert_eq!(ctx.kafka.clients(), 1, "persistent still reads the group");
    drop(persistent);
    assert_eq!(ctx.kafka.clients(), 0);
}
