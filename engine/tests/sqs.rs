//! The `aws-sqs-queue` scaler against an SQS-protocol server (moto, from PyPI) on
//! 127.0.0.1: visible, in-flight and delayed messages as KEDA counts them, activation at the
//! threshold, static keys and the web-identity path (STS AssumeRoleWithWebIdentity).

use std::collections::BTreeMap;

use engine::scalers::{self, ScalerContext};
use engine::spec::Trigger;
use testenv::moto::Moto;

fn trigger(pairs: &[(&str, &str)]) -> Trigger {
    let metadata: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Trigger { trigger_type: "aws-sqs-queue".into(), name: Some("q".into()), metadata, metric_type: None, use_cached_metrics: false, authentication_ref: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_depth_in_flight_delayed_activation_and_credentials() {
    let moto = Moto::start().expect("moto starts");
    let endpoint = moto.endpoint();
    let sqs = moto.sqs();
    let url = sqs.create_queue().queue_name("orders").send().await.unwrap().queue_url.unwrap();
    // 10 sent, 3 received (in flight), 2 delayed: visible 7, not visible 3, delayed 2.
    for i in 0..10 {
        sqs.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
    }
    let got = sqs.receive_message().queue_url(&url).max_number_of_messages(3).visibility_timeout(600).send().await.unwrap();
    assert_eq!(got.messages.unwrap_or_default().len(), 3);
    for i in 0..2 {
        sqs.send_message().queue_url(&url).message_body(format!("d{i}")).delay_seconds(600).send().await.unwrap();
    }

    let ctx = ScalerContext::new(None);
    let base = [("queueURL", url.as_str()), ("awsRegion", "eu-west-1"), ("awsEndpoint", endpoint.as_str()), ("awsAccessKeyID", "AKIDTEST"), ("awsSecretAccessKey", "not-secret")];
    let read = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        let scaler = scalers::build(&trigger(&pairs), 0, &ctx, "t").unwrap();
        async move {
            let (values, active) = scaler.metrics_and_activity().await.expect("the scaler reads the queue");
            (values[0].value, active)
        }
    };
    assert_eq!(read(&[]).await.0, 10.0, "visible + in flight (scaleOnInFlight defaults to true)");
    assert_eq!(read(&[("scaleOnInFlight", "false")]).await.0, 7.0, "visible only");
    assert_eq!(read(&[("scaleOnDelayed", "true")]).await.0, 12.0, "visible + in flight + delayed");
    assert_eq!(read(&[("activationQueueLength", "10")]).await, (10.0, false), "10 is not above 10");
    assert_eq!(read(&[("activationQueueLength", "9")]).await, (10.0, true), "10 is above 9");

    // Web identity (IRSA): a role ARN and a token file; STS (the same server) hands out keys.
    let dir = std::env::temp_dir().join(format!("swell-sqs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzd2VsbCJ9.c2ln").unwrap();
    let token = token.to_string_lossy().to_string();
    let by_role = scalers::build(
        &trigger(&[
            ("queueURL", url.as_str()),
            ("awsRegion", "eu-west-1"),
            ("awsEndpoint", endpoint.as_str()),
            ("awsRoleArn", "arn:aws:iam::123456789012:role/swell"),
            ("webIdentityTokenFile", token.as_str()),
        ]),
        0,
        &ctx,
        "t",
    )
    .unwrap();
    assert_eq!(by_role.metrics_and_activity().await.expect("web identity works").0[0].value, 10.0);
    // A missing token file is an error that says so.
    std::fs::remove_file(&token).unwrap();
    let no_token = scalers::build(
        &trigger(&[("queueURL", url.as_str()), ("awsRegion", "eu-west-1"), ("awsEndpoint", endpoint.as_str()), ("awsRoleArn", "arn:aws:iam::123456789012:role/swell"), ("webIdentityTokenFile", token.as_str())]),
        0,
        &ctx,
        "t",
    )
    .unwrap();
    let err = no_token.metrics_and_activity().await.unwrap_err().to_string();
    assert!(err.contains("web identity token"), "{err}");
    // A queue that does not exist is an error naming it; the server stays up for the rest.
    let missing = scalers::build(&trigger(&[("queueURL", &format!("{endpoint}/123456789012/nope")), ("awsRegion", "eu-west-1"), ("awsEndpoint", endpoint.as_str()), ("awsAccessKeyID", "a"), ("awsSecretAccessKey", "b")]), 0, &ctx, "t").unwrap();
    let err = missing.metrics_and_activity().await.unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_made_in_swell_use_trigger_authentication_sealed_in_sql() {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use engine::crypto::Sealer;
    use engine::sim::SimCluster;
    use engine::{Engine, EngineOptions, store};

    let moto = Moto::start().expect("moto starts");
    let endpoint = moto.endpoint();
    let sqs = moto.sqs();
    let url = sqs.create_queue().queue_name("jobs").send().await.unwrap().queue_url.unwrap();
    for i in 0..25 {
        sqs.send_message().queue_url(&url).message_body(format!("m{i}")).send().await.unwrap();
    }
    const SECRET: &str = "sealed-in-sql-secret";
    let sealer = Arc::new(Sealer::from_hex(&"42".repeat(32)).unwrap());
    let db = store::connect("sqlite::memory:").await.unwrap();
    store::migrate(&db).await.unwrap();
    let tenant = store::ensure_tenant(&db, "t", "t").await.unwrap();
    store::ensure_cluster(&db, "sim", "simulated").await.unwrap();
    let params = serde_json::json!({"awsAccessKeyID": "AKIDSQL", "awsSecretAccessKey": SECRET});
    let sealed = sealer.seal(&store::trigger_auth_purpose("t", "shop", "aws"), params.to_string().as_bytes()).unwrap();
    store::put_trigger_auth(&db, tenant.id, "shop", "aws", &["awsAccessKeyID".into(), "awsSecretAccessKey".into()], sealed, "test").await.unwrap();

    let start = |db: engine::DatabaseConnection, sealer: Arc<Sealer>| async move {
        let mut sim = SimCluster::new(1.0);
        sim.add_deployment("worker", 0, 0.0, 10.0);
        let engine = Engine::new(db, EngineOptions { sim: Some(Arc::new(Mutex::new(sim))), sealer: Some(sealer), tick: Duration::from_millis(100), ..Default::default() }).await.unwrap();
        let (stop, rx) = tokio::sync::watch::channel(false);
        engine.spawn(rx);
        (engine, stop)
    };
    let spec = |auth: &str| -> engine::spec::ScaledObjectSpec {
        serde_json::from_value(serde_json::json!({
            "scaleTargetRef": {"name": "worker"}, "pollingInterval": 1, "minReplicaCount": 0, "maxReplicaCount": 10,
            "triggers": [{"type": "aws-sqs-queue", "authenticationRef": {"name": auth},
                          "metadata": {"queueURL": url, "awsRegion": "eu-west-1", "awsEndpoint": endpoint, "queueLength": "10"}}]
        }))
        .unwrap()
    };
    let wait3 = |engine: Engine, id: i32| async move {
        let started = Instant::now();
        while engine.object("t", id).unwrap().desired_replicas != Some(3) {
            let v = engine.object("t", id).unwrap();
            assert!(started.elapsed() < Duration::from_secs(20), "{:?} {:?}", v.desired_replicas, v.error);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (engine, stop) = start(db.clone(), sealer.clone()).await;
    // A missing reference is refused, naming the field; nothing is stored.
    let err = engine.apply("t", "sim", "shop", "bad", "swell", spec("nope"), "test").await.unwrap_err().to_string();
    assert!(err.starts_with("spec.triggers[0].authenticationRef.name") && err.contains("shop/nope"), "{err}");
    let id = engine.apply("t", "sim", "shop", "worker", "swell", spec("aws"), "test").await.unwrap();
    wait3(engine.clone(), id).await; // ceil(25 / 10)
    let _ = stop.send(true);
    // After a restart the stored authentication is opened again from SQL.
    let (engine, _stop) = start(db.clone(), sealer).await;
    wait3(engine.clone(), id).await;
    let mut seen = format!("{:?}", engine.overview("t"));
    for d in engine.decisions("t", id, 100).await.unwrap() {
        seen += &d.explanation;
    }
    seen += &engine.metrics().encode();
    for o in store::load_objects(&db).await.unwrap() {
        seen += &serde_json::to_string(&o.spec).unwrap();
    }
    assert!(!seen.contains(SECRET), "the secret leaked");
}
