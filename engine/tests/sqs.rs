//! The `aws-sqs-queue` scaler against an SQS-protocol server (moto, from PyPI) on
//! 127.0.0.1: visible, in-flight and delayed messages as KEDA counts them, activation at the
//! threshold, static keys and the web-identity path (STS AssumeRoleWithWebIdentity).

use std::collections::BTreeMap;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
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
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(&endpoint)
            .build(),
    );
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
