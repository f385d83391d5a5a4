//! Nothing is lost when the database or Swell itself dies.
//!
//! PostgreSQL crashes (`pg_ctl stop -m immediate`) under a running `swell demo` and comes
//! back: the scaling loop goes on meanwhile; its decisions and samples are kept in memory and
//! written once SQL answers, so the history has no gap and nothing is dropped (counted by
//! `swell_store_*`); /readyz reports the database gone and back; the stored configuration is
//! the same before and after.
//!
//! `swell demo` SIGKILLed in the middle of a burst of writes (ScaledObjects applied through
//! the API, eight clients at once) and started again on the same database: every write it
//! acknowledged is there once, no object is half stored (its trigger rows match its spec),
//! and the restarted engine runs them all.
//!
//! `swell serve` SIGKILLed while it creates the Jobs of a ScaledJob on a real control plane
//! and started again: it counts what the cluster holds and makes only the rest, so the
//! ScaledJob ends with the number of Jobs its queue asks for, not one more.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{KEY, Serve, free_port, get, register_cluster, request, swell, token};
use testenv::postgres::Postgres;

fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, text) = get(port, "/metrics")?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn a_database_crash_loses_no_decision_and_no_sample() {
    let pg = Postgres::start().expect("a PostgreSQL of this test's own");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("demo.log")).unwrap();
    let _demo = Serve(
        swell(dir.path())
            .args(["demo", "--bind", &format!("127.0.0.1:{port}"), "--database-url", &pg.url(), "--log", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let demo_log = || std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default();
    wait_for("the demo ready", Duration::from_secs(60), || get(port, "/readyz").is_some_and(|(c, _)| c == 200));
    let started = unix_now();
    wait_for("rows written", Duration::from_secs(30), || metric(port, "swell_store_rows_written_total").is_some_and(|n| n > 0.0));
    let config = || pg.query("select id, namespace, name, origin, spec::text from scaled_objects order by id");
    let before = config();
    assert!(!before.is_empty());

    // The crash: the loop runs on, the rows wait in memory.
    std::thread::sleep(Duration::from_secs(2));
    pg.kill().unwrap();
    let killed = unix_now();
    wait_for("/readyz says the database is gone", Duration::from_secs(20), || {
        get(port, "/readyz").is_some_and(|(c, body)| c == 503 && body.contains("database unreachable"))
    });
    wait_for("rows kept in memory", Duration::from_secs(20), || metric(port, "swell_store_rows_pending").is_some_and(|n| n > 0.0));
    // Longer than the 15 s between samples, so the outage holds some.
    std::thread::sleep(Duration::from_secs(16));
    assert!(get(port, "/healthz").is_some_and(|(c, _)| c == 200), "alive through the outage");
    let pending = metric(port, "swell_store_rows_pending").unwrap();

    // Back: everything kept is written, nothing dropped.
    pg.restart().unwrap();
    let restarted = unix_now();
    wait_for("the kept rows written", Duration::from_secs(30), || metric(port, "swell_store_rows_pending") == Some(0.0));
    wait_for("/readyz again", Duration::from_secs(20), || get(port, "/readyz").is_some_and(|(c, _)| c == 200));
    assert_eq!(metric(port, "swell_store_records_dropped_total"), Some(0.0), "{}", demo_log());
    assert_eq!(config(), before, "the configuration changed across the outage");

    // What the loop did while SQL was down is in SQL now.
    let during = |table: &str| -> i64 {
        pg.query(&format!("select count(*) from {table} where extract(epoch from at) between {killed} and {restarted}")).parse().unwrap()
    };
    let (decisions, samples) = (during("decisions"), during("metric_samples"));
    assert!(samples > 0 && decisions > 0, "rows from the outage: {decisions} decisions, {samples} samples ({pending} were pending)");
    // Every object's samples (one per 15 s) run on without a gap across the outage.
    std::thread::sleep(Duration::from_secs(2));
    let gaps = pg.query(&format!(
        "select scaled_object_id, metric, max(gap) from (select scaled_object_id, metric, \
         extract(epoch from at - lag(at) over (partition by scaled_object_id, metric order by at)) as gap \
         from metric_samples where extract(epoch from at) >= {started}) t group by scaled_object_id, metric"
    ));
    assert!(!gaps.is_empty());
    for row in gaps.lines() {
        let gap: f64 = row.rsplit('|').next().unwrap().parse().unwrap_or(0.0);
        assert!(gap <= 18.0, "a gap of {gap} s in the samples ({row}); the outage was {:.0} s", restarted - killed);
    }
    let errors: Vec<_> = demo_log().lines().filter(|l| l.contains("ERROR")).map(str::to_string).collect();
    assert!(errors.iter().all(|l| !l.contains("rows") || l.contains("keeping them")), "{errors:#?}");
}

fn start(dir: &std::path::Path, db: &str, port: u16) -> Serve {
    let serve = Serve(
        swell(dir)
            .args(["demo", "--playgrounds", "2000", "--bind", &format!("127.0.0.1:{port}"), "--database-url", db, "--log", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while get(port, "/readyz").map(|(c, _)| c) != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(60), "swell demo did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    serve
}

fn sqlite(file: &std::path::Path, sql: &str) -> Vec<String> {
    let out = Command::new("sqlite3").arg(file).arg(sql).output().expect("sqlite3 runs (apt-get install sqlite3)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn a_kill_in_a_burst_of_writes_leaves_no_half_applied_object() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("swell.db");
    let db = format!("sqlite://{}", file.display());
    let port = free_port();
    let mut demo = start(dir.path(), &db, port);
    let bearer = format!("Bearer {}", token(dir.path(), &db, "demo", "burst", "operator"));

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..8)
        .map(|client| {
            let (acknowledged, bearer) = (acknowledged.clone(), bearer.clone());
            std::thread::spawn(move || {
                for i in 0..250 {
                    let name = format!("burst-{client}-{i}");
                    // One ScaledObject per workload: each its own playground deployment.
                    let target = engine::demo::playground(2 + client * 250 + i);
                    let yaml = format!(
                        "kind: ScaledObject\nmetadata: {{name: {name}, namespace: demo}}\nspec:\n  scaleTargetRef: {{name: {target}}}\n  actuation: direct\n  pollingInterval: 1\n  maxReplicaCount: 5\n  triggers:\n    - type: simulated\n      metadata: {{workload: web-requests, target: \"50\"}}\n"
                    );
                    let body = url::form_urlencoded::Serializer::new(String::new()).append_pair("tenant", "demo").append_pair("yaml", &yaml).finish();
                    match request(port, "POST", "/api/apply_yaml", &[("Authorization", &bearer), ("Content-Type", "application/x-www-form-urlencoded")], &body) {
                        Some((200, _)) => acknowledged.lock().unwrap().push(name),
                        Some((code, res)) => panic!("{name}: {code} {res}"),
                        None => return, // the server is gone
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    demo.0.kill().unwrap(); // SIGKILL
    demo.0.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 8, "the burst wrote {} objects before the kill", acknowledged.len());

    // What SQL holds: each acknowledged object once; every stored one whole.
    let stored = sqlite(&file, "select name from scaled_objects where name like 'burst-%' order by name");
    for name in &acknowledged {
        assert_eq!(stored.iter().filter(|s| *s == name).count(), 1, "{name} was acknowledged: stored once");
    }
    let whole = sqlite(
        &file,
        "select so.name || ' ' || count(t.id) || ' ' || json_array_length(json_extract(so.spec, '$.triggers')) \
         from scaled_objects so left join triggers t on t.scaled_object_id = so.id where so.name like 'burst-%' group by so.id",
    );
    for row in &whole {
        let parts: Vec<&str> = row.split(' ').collect();
        assert_eq!(parts[1], parts[2], "{}: trigger rows against the spec's triggers", parts[0]);
        assert_eq!(parts[1], "1", "{row}");
    }

    // Started again: every stored object is loaded and polled.
    let _again = start(dir.path(), &db, port);
    let started = Instant::now();
    loop {
        let (_, res) = request(port, "POST", "/api/load_overview", &[("Authorization", &bearer), ("Content-Type", "application/x-www-form-urlencoded")], "tenant=demo").unwrap();
        let overview: serde_json::Value = serde_json::from_str(res.split_once("\r\n\r\n").unwrap().1).expect("the overview as JSON");
        let polled = overview["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["name"].as_str().is_some_and(|n| stored.iter().any(|s| s == n)) && o["polled_at_ms"].is_i64() && o["error"].is_null())
            .count();
        if polled == stored.len() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{polled} of {} objects back after the restart", stored.len());
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `swell serve` on the registered cluster in `dir`, its output appended to `serve.log`.
fn serve(dir: &std::path::Path, db: &str) -> (Serve, u16) {
    let port = free_port();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("serve.log")).unwrap();
    let serve = Serve(
        swell(dir)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--database-url", db, "--log", "info"])
            .env("SWELL_SECRET_KEY", KEY)
            .env("SWELL_METRICS_API_BIND", format!("127.0.0.1:{}", free_port()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    (serve, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_while_creating_jobs_makes_no_duplicate() {
    use k8s_openapi::api::batch::v1::Job;
    use kube::api::{Api, ListParams};
    const WANTED: usize = 150;
    let (cp, client) = common::control_plane().await;
    let (dir, db) = register_cluster(&cp);
    // The queue asks for 150 Jobs (targetValue 1); the Jobs are suspended, so the cluster
    // starts no pods for them and each stays running, counted by the next poll.
    let queue = testenv::k8s::MetricEndpoint::start(WANTED as i64).await;
    testenv::k8s::create_yaml(
        &client,
        &format!(
            "apiVersion: swell.dev/v1alpha1\nkind: ScaledJob\nmetadata: {{name: batch, namespace: shop}}\nspec:\n  pollingInterval: 1\n  maxReplicaCount: {WANTED}\n\
             \x20 jobTargetRef: {{suspend: true, template: {{spec: {{restartPolicy: Never, containers: [{{name: work, image: registry.invalid/work:1}}]}}}}}}\n\
             \x20 triggers:\n  - type: metrics-api\n    metadata: {{url: \"{}\", valueLocation: value, targetValue: \"1\"}}\n",
            queue.url
        ),
    )
    .await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "shop");
    let count = || {
        let jobs = jobs.clone();
        async move { jobs.list(&ListParams::default().labels(&format!("{}=batch", engine::actuate::LABEL_SCALED_JOB))).await.map(|l| l.items.len()).unwrap_or(0) }
    };

    // Killed as soon as the first Jobs exist, while it is still making the others.
    let (mut first, _) = serve(dir.path(), &db);
    let started = Instant::now();
    while count().await < 5 {
        assert!(started.elapsed() < Duration::from_secs(60), "no Job made: {}", std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // requests already sent have landed
    let at_kill = count().await;
    eprintln!("{at_kill} of {WANTED} Jobs made before the kill");
    assert!(at_kill < WANTED, "the kill came after the burst ({at_kill} Jobs): it proves nothing");

    // Started again: it makes the rest, and no more through the following polls.
    let (_again, port) = serve(dir.path(), &db);
    testenv::k8s::eventually("the rest of the Jobs made", Duration::from_secs(60), || async { (count().await >= WANTED).then_some(()) }).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(count().await, WANTED, "{at_kill} Jobs at the kill; after the restart and five polls");
    assert!(get(port, "/healthz").is_some());
}
