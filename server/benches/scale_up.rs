//! 1 → N from a real RabbitMQ, `direct` against `hpa` mode: `swell serve` (the binary) on a
//! real control plane whose HPA controller syncs every second, its external metrics API
//! behind an APIService. Not a test: run on purpose.
//!
//!   cargo bench -p server --bench scale_up
//!   BENCH_RUNS=10 BENCH_MESSAGES=50 cargo bench -p server --bench scale_up
//!
//! Per mode, BENCH_RUNS times: the target at 0, BENCH_MESSAGES messages published at once
//! (target 5 per replica, max 10), and the time from the first publish until the Deployment
//! asks for 1 replica and for the full count, with the path of replica counts it took. The
//! queue is then purged and the target left to fall back to 0 (cooldown 3 s).
//! KEDA + its metrics adapter + the same HPA controller took p50 2 s (first run 5.9 s,
//! 1 → 8 → 10) for 50 messages in the issue that asked for this benchmark.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{control_plane, curl_url, serve_against};
use testenv::k8s::{create_yaml, deployment, eventually, replicas};
use testenv::rabbitmq::RabbitMq;

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn manage(broker: &RabbitMq, method: &str, path: &str, body: &str) {
    let url = format!("{}{path}", broker.http_url().trim_end_matches('/'));
    let (code, text) = curl_url(&url, &["-u", "guest:guest", "-X", method, "-H", "content-type: application/json", "-d", body]);
    assert!((200..300).contains(&code), "{method} {path}: {code} {text}");
}

/// `n` persistent messages to `queue` over one keep-alive connection (one curl process).
fn publish(broker: &RabbitMq, queue: &str, n: usize) {
    let url = format!("{}/api/exchanges/%2F/amq.default/publish", broker.http_url().trim_end_matches('/'));
    let body = format!(r#"{{"properties":{{"delivery_mode":2}},"routing_key":"{queue}","payload":"m","payload_encoding":"string"}}"#);
    let mut args: Vec<String> = Vec::new();
    for i in 0..n {
        if i > 0 {
            args.push("--next".into());
        }
        args.extend(["-s", "-o", "/dev/null", "-u", "guest:guest", "-H", "content-type: application/json", "-d", &body, &url].map(String::from));
    }
    let status = std::process::Command::new("curl").args(&args).status().expect("curl runs");
    assert!(status.success(), "publishing failed");
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let runs: usize = env("BENCH_RUNS", 5);
    let messages: usize = env("BENCH_MESSAGES", 50);
    let per_replica = 5;
    let max = 10;
    let broker = RabbitMq::start().expect("RabbitMQ starts");
    let (cp, client) = control_plane().await;
    let _served = serve_against(&cp, &client, "warn").await;
    let host = format!("amqp://guest:guest@127.0.0.1:{}/", broker.amqp_port);
    let full = (messages.div_ceil(per_replica) as i32).min(max);

    for mode in ["direct", "hpa"] {
        let (name, queue) = (format!("w-{mode}"), format!("q-{mode}"));
        manage(&broker, "PUT", &format!("/api/queues/%2F/{queue}"), r#"{"durable":true}"#);
        deployment(&client, "shop", &name, 0).await;
        let so = serde_json::json!({"apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"scaleTargetRef": {"name": name}, "actuation": mode, "pollingInterval": 1, "cooldownPeriod": 3, "minReplicaCount": 0, "maxReplicaCount": max,
                     "triggers": [{"type": "rabbitmq", "metadata": {"host": host, "queueName": queue, "mode": "QueueLength", "value": per_replica.to_string()}}]}});
        create_yaml(&client, &serde_json::to_string(&so).unwrap()).await;
        tokio::time::sleep(Duration::from_secs(3)).await; // synced, first polls done
        let (mut to_one, mut to_full) = (Vec::new(), Vec::new());
        for run in 0..runs {
            eventually(&format!("{name} at 0"), Duration::from_secs(120), || async { (replicas(&client, "shop", &name).await == 0).then_some(()) }).await;
            let started = Instant::now();
            publish(&broker, &queue, messages);
            let published = started.elapsed().as_secs_f64();
            let mut path = vec![0];
            let mut first = None;
            loop {
                let r = replicas(&client, "shop", &name).await;
                if r != *path.last().unwrap() {
                    path.push(r);
                }
                if r > 0 && first.is_none() {
                    first = Some(started.elapsed().as_secs_f64());
                }
                if r >= full {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(120), "{name} stuck at {r} (path {path:?})");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let took = started.elapsed().as_secs_f64();
            let path: Vec<String> = path.iter().map(i32::to_string).collect();
            println!("{mode:<6} run {run}: 1 replica after {:.2} s, {full} after {took:.2} s (publishing took {published:.2} s), path {}", first.unwrap_or(took), path.join(" → "));
            to_one.push(first.unwrap_or(took));
            to_full.push(took);
            manage(&broker, "DELETE", &format!("/api/queues/%2F/{queue}/contents"), "");
        }
        to_one.sort_by(f64::total_cmp);
        to_full.sort_by(f64::total_cmp);
        println!(
            "{mode:<6} {messages} messages, {per_replica} per replica: 0 → 1 p50 {:.2} s; 0 → {full} p50 {:.2} s, max {:.2} s ({runs} runs)",
            percentile(&to_one, 0.5),
            percentile(&to_full, 0.5),
            to_full.last().unwrap()
        );
    }
}
