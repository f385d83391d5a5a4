//! Webhook throughput and push-to-decision latency: the real handler (server/src/hooks.rs)
//! on 127.0.0.1 over HTTP/1.1 keep-alive, a real engine on the simulated cluster; and the
//! same latency when the push reaches a follower (a second engine on the same SQLite file,
//! standing by on its cluster), which relays it to the leader through SQL. Not a test: run
//! on purpose.
//!
//!   cargo bench -p server --bench webhook
//!   BENCH_SECS=10 BENCH_CONNECTIONS=16 BENCH_SOURCES=100 cargo bench -p server --bench webhook
//!
//! The throughput phase is also the soak: run it for minutes (`BENCH_SECS=600`) and it prints
//! the process's RSS every `BENCH_RSS_EVERY` seconds (30) and the request latency p50/p99, so
//! a leak shows as RSS that keeps growing after the first minute.

#[path = "../src/hooks.rs"]
#[allow(dead_code, unused_imports)]
mod hooks;
#[path = "../../engine/benches/common/openmetrics.rs"]
#[allow(dead_code)]
mod openmetrics;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::crypto::{Sealer, hmac_sha256_hex};
use engine::sim::SimCluster;
use engine::{Engine, EngineOptions, store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// As `swell` itself runs (src/main.rs): the RSS printed is the production one.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One signed POST on a keep-alive connection; returns the status code.
async fn post(conn: &mut TcpStream, buf: &mut Vec<u8>, source: &str, secret: &str, value: u64) -> u16 {
    let body = format!(r#"{{"value": {value}}}"#);
    let ts = chrono::Utc::now().timestamp();
    let sig = hmac_sha256_hex(secret.as_bytes(), format!("{ts}.{body}").as_bytes());
    let req = format!(
        "POST /hooks/bench/{source} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Swell-Timestamp: {ts}\r\nX-Swell-Signature: sha256={sig}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    buf.clear();
    loop {
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())).unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return head[9..12].parse().unwrap();
            }
        }
    }
}

/// This process's resident set (the server, the engine and the load's clients), in MiB.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0.0);
    pages * 4096.0 / 1048576.0
}

#[tokio::main]
async fn main() {
    let secs: u64 = env("BENCH_SECS", 10);
    let conns: usize = env("BENCH_CONNECTIONS", 16);
    let sources: usize = env("BENCH_SOURCES", 100);
    let sealer = Arc::new(Sealer::from_hex(&"17".repeat(32)).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/swell.db?mode=rwc", dir.path().display());
    let db = store::connect(&url).await.unwrap();
    store::migrate(&db).await.unwrap();
    let tenant = store::ensure_tenant(&db, "bench", "bench").await.unwrap();
    store::ensure_cluster(&db, "sim", "simulated").await.unwrap();
    let mut sim = SimCluster::new(1.0);
    for i in 0..sources {
        let secret = format!("secret-{i}");
        let sealed = sealer.seal(&hooks::purpose("bench", &format!("s{i}")), secret.as_bytes()).unwrap();
        store::put_webhook_source(&db, tenant.id, &format!("s{i}"), sealed, "bench").await.unwrap();
        sim.add_deployment(&format!("d{i}"), 1, 0.0, 10.0);
    }
    let engine = Engine::new(db, EngineOptions { sim: Some(Arc::new(Mutex::new(sim))), ..Default::default() }).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..sources {
        let spec = serde_json::from_value(serde_json::json!({
            "scaleTargetRef": {"name": format!("d{i}")}, "pollingInterval": 60, "minReplicaCount": 1, "maxReplicaCount": 1000000,
            "triggers": [{"type": "webhook", "metadata": {"source": format!("s{i}"), "targetValue": "10"}}]
        }))
        .unwrap();
        ids.push(engine.apply("bench", "sim", "ns", &format!("o{i}"), "swell", spec, "bench").await.unwrap());
    }
    let (stop, rx) = tokio::sync::watch::channel(false);
    engine.spawn(rx);
    let router = hooks::router(Arc::new(hooks::Hooks::new(engine.clone(), Some(sealer))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Push → decision: one source, sequential pushes with new values; the decision has
    // used the value when the object's last metric equals it.
    let push_to_decision = |addr: std::net::SocketAddr, first: u64, n: u64, label: &'static str| {
        let engine = engine.clone();
        let id = ids[0];
        async move {
            let mut conn = TcpStream::connect(addr).await.unwrap();
            let mut buf = Vec::new();
            let mut lat = Vec::new();
            for k in 0..n {
                let value = first + k;
                let started = Instant::now();
                assert_eq!(post(&mut conn, &mut buf, "s0", "secret-0", value).await, 202);
                while engine.object("bench", id).and_then(|v| v.metrics.first().map(|m| m.1)) != Some(value as f64) {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                lat.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            lat.sort_by(f64::total_cmp);
            let at = |q: f64| lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1];
            println!("push → decision {label} (HTTP request sent until the leader's decide used the value), {n} pushes: p50 {:.2} ms, p99 {:.2} ms", at(0.5), at(0.99));
        }
    };
    push_to_decision(addr, 1000, 300, "on the leader").await;

    // The same through a follower: it holds no fence on its (unreachable) cluster, so it
    // relays what it receives through SQL, which the leader reads every 200 ms.
    let follower = Engine::new(store::connect(&url).await.unwrap(), EngineOptions::default()).await.unwrap();
    let nowhere = kube::Client::try_from(kube::Config::new("https://127.0.0.1:9".parse().unwrap())).unwrap();
    follower.add_cluster(Arc::new(engine::actuate::KubeCluster::new("standby", nowhere, engine::actuate::Fence::elected())));
    let follower_router = hooks::router(Arc::new(hooks::Hooks::new(follower.clone(), Some(Arc::new(Sealer::from_hex(&"17".repeat(32)).unwrap())))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let follower_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, follower_router).await.unwrap() });
    push_to_decision(follower_addr, 5000, 100, "through a follower").await;

    // Throughput: `conns` keep-alive connections pushing to all sources for `secs`.
    let accepted = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let rss_every: u64 = env("BENCH_RSS_EVERY", 30);
    let sampler = tokio::spawn({
        let engine = engine.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(rss_every));
            loop {
                every.tick().await;
                // What waits for SQL in memory (bounded: past the write queue, records are dropped and counted).
                let text = engine.metrics().encode();
                let sample = |name: &str| openmetrics::sample(&text, name);
                println!(
                    "after {:>4} s: RSS {:.1} MiB; SQL rows queued − written {:.0}, records dropped {:.0}",
                    started.elapsed().as_secs(),
                    rss_mib(),
                    sample("swell_store_rows_queued_total") - sample("swell_store_rows_written_total"),
                    sample("swell_store_records_dropped_total"),
                );
            }
        }
    });
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (accepted, counter) = (accepted.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(addr).await.unwrap();
            let mut buf = Vec::new();
            // Latencies in a fixed-size histogram (µs, 3 significant digits), so the load's
            // own memory does not grow with the soak's length and blur the server's RSS.
            let mut lat = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            while Instant::now() < until {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let i = (n as usize) % sources;
                let sent = Instant::now();
                // Each source's value climbs 10, 20, … 2,000 and starts again: its object moves
                // between 1 and 200 replicas for as long as the soak lasts, scaling up and down.
                let value = 10 * (1 + (n / sources as u64) % 200);
                if post(&mut conn, &mut buf, &format!("s{i}"), &format!("secret-{i}"), value).await == 202 {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                lat.saturating_record(sent.elapsed().as_micros() as u64);
            }
            lat
        }));
    }
    let mut lat = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for t in tasks {
        lat.add(t.await.unwrap()).unwrap();
    }
    sampler.abort();
    let ms = |q: f64| lat.value_at_quantile(q) as f64 / 1000.0;
    println!("request latency under load: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; RSS at the end {:.1} MiB", ms(0.5), ms(0.99), lat.max() as f64 / 1000.0, rss_mib());
    println!(
        "{} requests accepted in {secs} s over {conns} connections to {sources} sources: {:.0} per second",
        accepted.load(Ordering::Relaxed),
        accepted.load(Ordering::Relaxed) as f64 / secs as f64
    );
    let _ = stop.send(true);
}
