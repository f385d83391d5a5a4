//! Secrets never leak. A canary value is planted in every way a secret reaches Swell — a
//! Secret behind a TriggerAuthentication, the target's environment, credentials written
//! inline in a ScaledObject and a ScaledJob (and literal env in the Job template), a URL's
//! userinfo and query string, a wrong password that makes the broker refuse, the kubeconfig's
//! token, the webhook secret and the secret key itself — while `swell serve` runs at `debug`
//! against a real control plane (HPA controller included) and a real RabbitMQ. Then every
//! place Swell writes is searched for each canary: the SQLite files (every table, free pages
//! too), the log, the objects' status, the events, /metrics, the dashboard pages and the
//! external metrics API's answers.

mod common;

use std::time::Duration;

use common::{KEY, control_plane, curl_url, get, serve_against, swell};
use engine::crd::ScaledJob;
use engine::spec::ScaledObject;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use testenv::k8s::{create_yaml, deployment, eventually, replicas};
use testenv::rabbitmq::RabbitMq;

const WAIT: Duration = Duration::from_secs(90);
const IN_SECRET: &str = "canary-in-a-secret-61d2";
const IN_ENV: &str = "canary-in-the-env-0c7e";
const INLINE: &str = "canary-inline-9a41";
const JOB_INLINE: &str = "canary-job-inline-3b58";
const JOB_ENV: &str = "canary-job-env-77f0";
const URL_USER: &str = "canary-url-userinfo-2e19";
const URL_QUERY: &str = "canary-url-query-d4c3";
const WRONG: &str = "canary-wrong-password-58aa";

/// The broker's management API as guest: `method path [json body]`.
fn manage(broker: &RabbitMq, method: &str, path: &str, body: &str) {
    let url = format!("{}{path}", broker.http_url().trim_end_matches('/'));
    let (code, text) = curl_url(&url, &["-u", "guest:guest", "-X", method, "-H", "content-type: application/json", "-d", body]);
    assert!((200..300).contains(&code), "{method} {path}: {code} {text}");
}

/// A broker user with its own password (a canary), allowed everything on vhost `/`.
fn user(broker: &RabbitMq, name: &str, password: &str) -> String {
    manage(broker, "PUT", &format!("/api/users/{name}"), &format!(r#"{{"password":"{password}","tags":""}}"#));
    manage(broker, "PUT", &format!("/api/permissions/%2F/{name}"), r#"{"configure":".*","write":".*","read":".*"}"#);
    format!("amqp://{name}:{password}@127.0.0.1:{}/", broker.amqp_port)
}

fn rabbit(host: Option<&str>, auth: Option<&str>) -> serde_json::Value {
    let mut t = serde_json::json!({"type": "rabbitmq", "metadata": {"protocol": "amqp", "queueName": "jobs", "mode": "QueueLength", "value": "10"}});
    if let Some(h) = host {
        t["metadata"]["host"] = h.into();
    }
    if let Some(a) = auth {
        t["authenticationRef"] = serde_json::json!({"name": a});
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_shows_anywhere_swell_writes() {
    let broker = RabbitMq::start().expect("RabbitMQ starts");
    let by_secret = user(&broker, "by-secret", IN_SECRET);
    let by_env = user(&broker, "by-env", IN_ENV);
    let inline = user(&broker, "inline", INLINE);
    let job_inline = user(&broker, "job-inline", JOB_INLINE);
    let wrong = format!("amqp://guest:{WRONG}@127.0.0.1:{}/", broker.amqp_port);
    manage(&broker, "PUT", "/api/queues/%2F/jobs", r#"{"durable":true}"#);
    for _ in 0..25 {
        manage(&broker, "POST", "/api/exchanges/%2F/amq.default/publish", r#"{"properties":{"delivery_mode":2},"routing_key":"jobs","payload":"m","payload_encoding":"string"}"#);
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://probe:{URL_USER}@127.0.0.1:{closed}/m?token={URL_QUERY}&page=1");

    let (cp, client) = control_plane().await;
    for d in ["a", "c", "d", "e"] {
        deployment(&client, "shop", d, 0).await;
    }
    create_yaml(
        &client,
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: b, namespace: shop}}\n\
             spec: {{replicas: 0, selector: {{matchLabels: {{app: b}}}}, template: {{metadata: {{labels: {{app: b}}}}, spec: {{containers: [{{name: b, image: registry.invalid/b:1, env: [{{name: BROKER, value: \"{by_env}\"}}]}}]}}}}}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: broker, namespace: shop}}\nstringData: {{host: \"{by_secret}\"}}\n---\n\
             apiVersion: swell.dev/v1alpha1\nkind: TriggerAuthentication\nmetadata: {{name: from-secret, namespace: shop}}\nspec: {{secretTargetRef: [{{parameter: host, name: broker, key: host}}]}}\n---\n\
             apiVersion: swell.dev/v1alpha1\nkind: TriggerAuthentication\nmetadata: {{name: from-env, namespace: shop}}\nspec: {{env: [{{parameter: host, name: BROKER, containerName: b}}]}}\n"
        ),
    )
    .await;

    let served = serve_against(&cp, &client, "debug").await;
    let out = swell(served.dir.path())
        .args(["webhook", "add", "orders", "--tenant", "team", "--database-url", &served.db])
        .env("SWELL_SECRET_KEY", KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let webhook_secret = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(webhook_secret.len(), 64, "the webhook secret is printed once");

    let objects = [
        ("by-secret", "a", rabbit(None, Some("from-secret"))),
        ("by-env", "b", rabbit(None, Some("from-env"))),
        ("inline", "c", rabbit(Some(&inline), None)),
        ("url", "d", serde_json::json!({"type": "metrics-api", "metadata": {"url": url, "valueLocation": "value", "targetValue": "1"}})),
        ("wrong", "e", rabbit(Some(&wrong), None)),
    ];
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    for (name, target, trigger) in &objects {
        let so = serde_json::json!({"apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"scaleTargetRef": {"name": target}, "pollingInterval": 1, "minReplicaCount": 0, "maxReplicaCount": 10, "triggers": [trigger]}});
        create_yaml(&client, &serde_json::to_string(&so).unwrap()).await;
    }
    let sj = serde_json::json!({"apiVersion": "swell.dev/v1alpha1", "kind": "ScaledJob", "metadata": {"name": "batch", "namespace": "shop"},
        "spec": {"pollingInterval": 1, "maxReplicaCount": 1, "triggers": [rabbit(Some(&job_inline), None)],
                 "jobTargetRef": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "registry.invalid/w:1",
                     "env": [{"name": "TOKEN", "value": JOB_ENV}]}]}}}}});
    create_yaml(&client, &serde_json::to_string(&sj).unwrap()).await;

    // The planted credentials work (25 messages, 10 per replica: the HPA controller takes
    // each target to 3), the failing ones fail where it shows.
    for d in ["a", "b", "c"] {
        eventually(&format!("{d} at 3 replicas"), WAIT, || async { (replicas(&client, "shop", d).await == 3).then_some(()) }).await;
    }
    let mut messages = Vec::new();
    for name in ["url", "wrong"] {
        let m = eventually(&format!("{name} not ready"), WAIT, || async {
            let s = api.get(name).await.ok()?.status?;
            s.conditions.into_iter().find(|c| c.type_ == "Ready" && c.status == "False").map(|c| c.message)
        })
        .await;
        messages.push(m);
    }
    assert!(messages[0].contains(&format!("127.0.0.1:{closed}")), "the URL's error names the server: {}", messages[0]);
    assert!(messages[1].to_ascii_uppercase().contains("ACCESS_REFUSED") || messages[1].contains("refused"), "{}", messages[1]);
    let jobs: Api<ScaledJob> = Api::namespaced(client.clone(), "shop");
    eventually("the ScaledJob made a Job", WAIT, || async {
        let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), "shop");
        (!jobs.list(&ListParams::default()).await.ok()?.items.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await; // a status write and a flush of decisions

    // Everything Swell wrote, surface by surface. Of the objects, the status Swell writes
    // (the spec is the user's own, in the cluster).
    let mut surfaces: Vec<(String, String)> = Vec::new();
    for (name, _, _) in &objects {
        surfaces.push((format!("status of {name}"), serde_json::to_string(&api.get(name).await.unwrap().status).unwrap()));
    }
    surfaces.push(("status of batch".into(), serde_json::to_string(&jobs.get("batch").await.unwrap().status).unwrap()));
    let events: Api<Event> = Api::namespaced(client.clone(), "shop");
    let events = events.list(&ListParams::default()).await.unwrap();
    assert!(events.items.iter().any(|e| e.reporting_component.as_deref() == Some("swell")), "Swell wrote no events");
    surfaces.push(("events".into(), serde_json::to_string(&events).unwrap()));
    surfaces.push(("/metrics".into(), get(served.port, "/metrics").expect("/metrics").1));
    for path in ["/".to_string(), "/t/team".to_string()].into_iter().chain((1..=8).map(|id| format!("/t/team/o/{id}"))) {
        let (code, page) = common::get_as(served.port, &path, &served.token).expect("the dashboard answers");
        assert!(code == 200 || code == 303 || code == 404, "{path}: {code}");
        surfaces.push((format!("page {path}"), page));
    }
    let (crt, key) = (cp.cert_path("front-proxy-client.crt"), cp.cert_path("front-proxy-client.key"));
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "shop");
    for (name, _, _) in &objects {
        let hpa = hpas.get_opt(&format!("swell-hpa-{name}")).await.unwrap();
        let metric_names: Vec<String> = hpa
            .and_then(|h| h.spec.metrics)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| Some(m.external?.metric.name))
            .chain([format!("s0-{}-0", if *name == "url" { "metrics-api" } else { "rabbitmq" })])
            .collect();
        for metric in metric_names {
            let path = format!("https://127.0.0.1:{}/apis/external.metrics.k8s.io/v1beta1/namespaces/shop/{metric}?labelSelector=scaledobject.swell.dev%2Fname%3D{name}", served.api_port);
            let (_, body) = curl_url(&path, &["--cert", crt.to_str().unwrap(), "--key", key.to_str().unwrap()]);
            surfaces.push((format!("metrics API {name}/{metric}"), body));
        }
    }
    let log = served.log();
    assert!(log.contains("DEBUG"), "the log is at debug");
    surfaces.push(("the log".into(), log));
    let mut sql = Vec::new();
    for file in ["swell.db", "swell.db-wal", "swell.db-shm", "swell.db-journal"] {
        sql.extend(std::fs::read(served.dir.path().join(file)).unwrap_or_default());
    }
    let sql = String::from_utf8_lossy(&sql).into_owned();
    assert!(sql.contains("from-secret") && sql.contains("queueName"), "the database holds the objects");
    surfaces.push(("SQL (every table)".into(), sql));

    let canaries = [
        ("a Secret's value", IN_SECRET),
        ("the target's env", IN_ENV),
        ("inline in a ScaledObject", INLINE),
        ("inline in a ScaledJob", JOB_INLINE),
        ("literal env of a Job template", JOB_ENV),
        ("a URL's userinfo", URL_USER),
        ("a URL's query", URL_QUERY),
        ("a refused password", WRONG),
        ("the kubeconfig's token", cp.token.as_str()),
        ("the webhook secret", webhook_secret.as_str()),
        ("the secret key", KEY),
    ];
    let mut leaks = Vec::new();
    for (surface, text) in &surfaces {
        for (what, canary) in canaries {
            if let Some(at) = text.find(canary) {
                let from = text[..at].char_indices().rev().nth(120).map_or(0, |(i, _)| i);
                leaks.push(format!("{what} in {surface}: …{}…", &text[from..(at + canary.len()).min(text.len())]));
            }
        }
    }
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
    eprintln!("searched {} surfaces ({} bytes) for {} canaries", surfaces.len(), surfaces.iter().map(|s| s.1.len()).sum::<usize>(), canaries.len());
}
