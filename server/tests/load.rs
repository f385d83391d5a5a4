//! The short version of the load runs (the long ones: `cargo bench -p server --bench webhook`
//! with `BENCH_SECS=600`, `bench/dashboard.sh`): a `swell demo` takes signed webhook pushes on
//! eight keep-alive connections and renders dashboard pages for two more, for three windows
//! of a few seconds. Every request is answered with success, the last pushed value reaches
//! the scaling decision, and the server's memory does not keep growing from one window to the
//! next. Latencies are printed, not asserted (they belong to the benchmarks).

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{KEY, Serve, free_port, get, request, swell, token};

const WINDOWS: usize = 3;
const WINDOW: Duration = Duration::from_secs(6);
/// What the server may grow by from the end of the first window to the end of the last.
const RSS_GROWTH_LIMIT_MIB: f64 = 24.0;

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse::<f64>().ok()).unwrap_or(0.0) / 1024.0
}

async fn push(http: &reqwest::Client, port: u16, secret: &str, value: u64) -> u16 {
    let body = format!(r#"{{"value": {value}}}"#);
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let sig = engine::crypto::hmac_sha256_hex(secret.as_bytes(), format!("{ts}.{body}").as_bytes());
    let res = http
        .post(format!("http://127.0.0.1:{port}/hooks/demo/hot"))
        .header("Content-Type", "application/json")
        .header("X-Swell-Timestamp", ts.to_string())
        .header("X-Swell-Signature", format!("sha256={sig}"))
        .body(body)
        .send()
        .await;
    res.map(|r| r.status().as_u16()).unwrap_or(0)
}

fn percentile(lat: &mut [f64], q: f64) -> f64 {
    lat.sort_by(f64::total_cmp);
    lat.get(((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len().max(1)) - 1).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_dashboard_under_load_answer_and_hold_their_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/swell.db?mode=rwc", dir.path().display());
    let out = swell(dir.path()).args(["webhook", "add", "hot", "--tenant", "demo", "--database-url", &db]).env("SWELL_SECRET_KEY", KEY).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let operator = token(dir.path(), &db, "demo", "load", "operator");
    let port = free_port();
    let demo = Serve(
        swell(dir.path())
            .args(["demo", "--bind", &format!("127.0.0.1:{port}"), "--database-url", &db, "--log", "warn"])
            .env("SWELL_SECRET_KEY", KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = demo.0.id();
    testenv::k8s::eventually("swell demo ready", Duration::from_secs(60), || async { get(port, "/readyz").filter(|(c, _)| *c == 200).map(|_| ()) }).await;
    let bearer = format!("Bearer {operator}");
    let yaml = "kind: ScaledObject\nmetadata: {name: hot, namespace: demo}\nspec:\n  scaleTargetRef: {name: playground}\n  actuation: direct\n  \
                pollingInterval: 1\n  maxReplicaCount: 1000000\n  triggers:\n    - type: webhook\n      metadata: {source: hot, targetValue: \"10\"}\n";
    let form = url::form_urlencoded::Serializer::new(String::new()).append_pair("tenant", "demo").append_pair("yaml", yaml).finish();
    let (code, res) = request(port, "POST", "/api/apply_yaml", &[("Authorization", &bearer), ("Content-Type", "application/x-www-form-urlencoded")], &form).unwrap();
    assert_eq!(code, 200, "{res}");

    let http = reqwest::Client::builder().pool_max_idle_per_host(16).timeout(Duration::from_secs(10)).build().unwrap();
    let counter = Arc::new(AtomicU64::new(1));
    let mut rss = Vec::new();
    for window in 0..WINDOWS {
        let until = Instant::now() + WINDOW;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (http, counter, secret) = (http.clone(), counter.clone(), secret.clone());
            tasks.push(tokio::spawn(async move {
                let (mut lat, mut refused) = (Vec::new(), Vec::new());
                while Instant::now() < until {
                    let sent = Instant::now();
                    match push(&http, port, &secret, counter.fetch_add(1, Ordering::Relaxed)).await {
                        202 => lat.push(sent.elapsed().as_secs_f64() * 1000.0),
                        code => refused.push(code),
                    }
                }
                (lat, refused)
            }));
        }
        for path in ["/t/demo", "/t/demo/sources"] {
            let (http, bearer) = (http.clone(), bearer.clone());
            tasks.push(tokio::spawn(async move {
                let (mut lat, mut refused) = (Vec::new(), Vec::new());
                while Instant::now() < until {
                    let sent = Instant::now();
                    let res = http.get(format!("http://127.0.0.1:{port}{path}")).header("Authorization", &bearer).send().await;
                    // The whole page read, as a browser would.
                    let status = match res {
                        Ok(r) => (r.status().as_u16(), r.bytes().await.is_ok()),
                        Err(_) => (0, false),
                    };
                    match status {
                        (200, true) => lat.push(sent.elapsed().as_secs_f64() * 1000.0),
                        (code, _) => refused.push(code),
                    }
                }
                (lat, refused)
            }));
        }
        let (mut hooks, mut pages) = (Vec::new(), Vec::new());
        for (i, t) in tasks.into_iter().enumerate() {
            let (lat, refused) = t.await.unwrap();
            assert!(refused.is_empty(), "window {window}: requests refused or failed under load (status 0 = no answer): {refused:?}");
            if i < 8 { hooks.extend(lat) } else { pages.extend(lat) }
        }
        assert!(!hooks.is_empty() && !pages.is_empty());
        rss.push(rss_mib(pid));
        eprintln!(
            "window {window}: {} pushes (p50 {:.1} ms, p99 {:.1} ms), {} pages (p50 {:.1} ms, p99 {:.1} ms); server RSS {:.1} MiB",
            hooks.len(),
            percentile(&mut hooks, 0.5),
            percentile(&mut hooks, 0.99),
            pages.len(),
            percentile(&mut pages, 0.5),
            percentile(&mut pages, 0.99),
            rss[window]
        );
    }
    assert!(rss[WINDOWS - 1] - rss[0] < RSS_GROWTH_LIMIT_MIB, "server RSS grew under steady load: {rss:?} MiB");

    // The last value pushed is the one the decision uses.
    assert_eq!(push(&http, port, &secret, 12_345).await, 202);
    testenv::k8s::eventually("the last push in the decision", Duration::from_secs(20), || async {
        let (_, res) = request(port, "POST", "/api/load_overview", &[("Authorization", &bearer), ("Content-Type", "application/x-www-form-urlencoded")], "tenant=demo")?;
        let overview: serde_json::Value = serde_json::from_str(res.split_once("\r\n\r\n")?.1).ok()?;
        let hot = overview["objects"].as_array()?.iter().find(|o| o["name"] == "hot")?.clone();
        (hot["metrics"][0][1].as_f64() == Some(12_345.0)).then_some(())
    })
    .await;
    drop(demo);
}
