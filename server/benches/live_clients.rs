//! Many websocket clients on one tenant's live stream of a running Swell: the latency from a
//! change (an override set through the server-function API) to each client receiving it, and
//! the server's memory per client. Not a test: run on purpose, through `bench/dashboard.sh`,
//! which starts the server and passes:
//!
//!   BENCH_PORT=… BENCH_TOKEN=… BENCH_PID=… BENCH_OBJECT=… [BENCH_CLIENTS=1000 BENCH_ROUNDS=20]
//!   cargo bench -p server --bench live_clients

use std::time::{Duration, Instant};

use app::live::LiveMessage;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

fn env<T: std::str::FromStr>(key: &str) -> Option<T> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn main() {
    let (Some(port), Some(token), Some(pid), Some(object)) = (env::<u16>("BENCH_PORT"), env::<String>("BENCH_TOKEN"), env::<u32>("BENCH_PID"), env::<i32>("BENCH_OBJECT")) else {
        eprintln!("run through bench/dashboard.sh (it starts Swell and sets BENCH_PORT, BENCH_TOKEN, BENCH_PID, BENCH_OBJECT)");
        return;
    };
    let clients: usize = env("BENCH_CLIENTS").unwrap_or(1000);
    let rounds: usize = env("BENCH_ROUNDS").unwrap_or(20);
    let override_path: String = env("BENCH_OVERRIDE_PATH").expect("BENCH_OVERRIDE_PATH");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let before = rss_kib(pid);
        // Each client reports (round, when) when it sees the round's override.
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let mut req = format!("ws://127.0.0.1:{port}/live/demo").into_client_request().unwrap();
            req.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
            let (mut socket, _) = tokio_tungstenite::connect_async(req).await.expect("connect");
            let seen = seen_tx.clone();
            tasks.push(tokio::spawn(async move {
                let mut last = usize::MAX;
                while let Some(Ok(msg)) = socket.next().await {
                    let Message::Text(t) = msg else { continue };
                    let Ok(LiveMessage::Update { objects, .. }) = serde_json::from_str::<LiveMessage>(&t) else { continue };
                    for o in objects.iter().filter(|o| o.id == object) {
                        let round = o.override_.as_deref().and_then(|t| t.split("bench round ").nth(1)).and_then(|r| r.trim().parse::<usize>().ok());
                        if let Some(r) = round.filter(|r| *r != last) {
                            last = r;
                            let _ = seen.send((r, Instant::now()));
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = rss_kib(pid);
        let client = reqwest::Client::new();
        let mut latencies = Vec::new();
        for round in 0..rounds {
            let body = format!("tenant=demo&id={object}&replicas={}&reason=bench+round+{round}&expires_minutes=", 2 + round % 3);
            let sent = Instant::now();
            let res = client
                .post(format!("http://127.0.0.1:{port}{override_path}"))
                .header("Authorization", format!("Bearer {token}"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "override: {}", res.status());
            let mut got = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while got < clients {
                match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
                    Ok(Some((r, at))) if r == round => {
                        latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
                        got += 1;
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            if got < clients {
                println!("round {round}: only {got} of {clients} clients got the change within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        latencies.sort_by(f64::total_cmp);
        let per_client = (after.saturating_sub(before)) as f64 / clients as f64;
        println!("clients: {clients}, rounds: {rounds}, deliveries: {}", latencies.len());
        println!("update latency (override set → client has it): p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms", percentile(&latencies, 0.5), percentile(&latencies, 0.99), latencies.last().copied().unwrap_or(0.0));
        println!("server RSS: {before} KiB before, {after} KiB with the clients: {per_client:.1} KiB per client");
        for t in tasks {
            t.abort();
        }
    });
}
