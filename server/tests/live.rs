//! The live stream (`GET /live/{tenant}`, a websocket) against a running `swell demo`: a
//! snapshot then pushed changes, an override seen by another client within a second, and
//! refusals — another tenant, nobody, a cross-site page with the cookie, a token revoked
//! while the stream is open.

mod common;

use std::time::{Duration, Instant};

use app::live::LiveMessage;
use common::{free_port, get, request, swell, token};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Running(std::process::Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Opens the stream with these headers; the HTTP status when the upgrade is refused.
async fn open(port: u16, tenant: &str, headers: &[(&str, &str)]) -> Result<Socket, u16> {
    let mut req = format!("ws://127.0.0.1:{port}/live/{tenant}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("connecting: {e}"),
    }
}

/// The next message within `within`, skipping pings; `None` when the stream ends or is quiet.
async fn next(socket: &mut Socket, within: Duration) -> Option<LiveMessage> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).expect("a live message")),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_pushes_changes_to_its_tenant_only_and_stops_for_a_revoked_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/data/swell.db", dir.path().display());
    for t in ["demo", "b"] {
        let (code, err) = common::run(swell(dir.path()).args(["tenant", "add", t, "--database-url", &db]));
        assert_eq!(code, 0, "{err}");
    }
    let viewer = token(dir.path(), &db, "demo", "viewer", "viewer");
    let operator = token(dir.path(), &db, "demo", "operator", "operator");
    let doomed = token(dir.path(), &db, "demo", "doomed", "viewer");
    let other = token(dir.path(), &db, "b", "b-admin", "admin");
    let port = free_port();
    let child = swell(dir.path()).args(["demo", "--bind", &format!("127.0.0.1:{port}"), "--log", "warn"]).stdin(std::process::Stdio::null()).spawn().unwrap();
    let _running = Running(child);
    let started = Instant::now();
    while get(port, "/healthz").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "swell demo did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let bearer = |t: &str| format!("Bearer {t}");

    // A snapshot of demo's three objects, then updates, all of demo.
    let mut watcher = open(port, "demo", &[("Authorization", &bearer(&viewer))]).await.expect("a viewer may watch");
    let Some(LiveMessage::Snapshot { objects, part: 0, more: false }) = next(&mut watcher, Duration::from_secs(5)).await else { panic!("no whole snapshot first (three objects are one part)") };
    let mut names: Vec<_> = objects.iter().map(|o| o.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["catalog-api", "orders-worker", "web-frontend"]);
    let catalog = objects.iter().find(|o| o.name == "catalog-api").unwrap().id;
    let Some(LiveMessage::Update { objects, .. }) = next(&mut watcher, Duration::from_secs(10)).await else { panic!("no update after the snapshot") };
    assert!(!objects.is_empty() && objects.iter().all(|o| names.contains(&o.name)), "{objects:?}");

    // An operator's override reaches the watcher within a second.
    let out = swell(dir.path()).arg("routes").output().unwrap();
    let path = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|r| r["path"].as_str().filter(|p| p.contains("override_replicas")).map(String::from))
        .unwrap();
    let body = format!("tenant=demo&id={catalog}&replicas=7&reason=watched&expires_minutes=");
    let (code, res) = request(port, "POST", &path, &[("Authorization", &bearer(&operator)), ("Content-Type", "application/x-www-form-urlencoded")], &body).unwrap();
    assert_eq!(code, 200, "{res}");
    let set = Instant::now();
    let seen = loop {
        let msg = next(&mut watcher, Duration::from_secs(1).saturating_sub(set.elapsed())).await.expect("the override within a second");
        if let LiveMessage::Update { objects, .. } = msg {
            if let Some(o) = objects.iter().find(|o| o.id == catalog && o.override_.as_deref().is_some_and(|t| t.contains("replicas fixed at 7"))) {
                break o.clone();
            }
        }
    };
    assert!(set.elapsed() < Duration::from_secs(1), "{:?}", set.elapsed());
    assert_eq!(seen.override_.as_deref(), Some("replicas fixed at 7 by token:operator: watched"));

    // Refused: another tenant's admin, nobody, a cross-site page carrying the cookie.
    assert_eq!(open(port, "demo", &[("Authorization", &bearer(&other))]).await.err(), Some(403));
    assert_eq!(open(port, "demo", &[]).await.err(), Some(403));
    let cookie = common::demo_session(port);
    assert_eq!(open(port, "demo", &[("Cookie", &cookie), ("Origin", "http://evil.example")]).await.err(), Some(403));
    let mut own = open(port, "demo", &[("Cookie", &cookie), ("Origin", &format!("http://127.0.0.1:{port}"))]).await.expect("Swell's own page may");
    assert!(matches!(next(&mut own, Duration::from_secs(5)).await, Some(LiveMessage::Snapshot { .. })));

    // A token revoked while its stream is open: the stream ends within the recheck.
    let mut revoked = open(port, "demo", &[("Authorization", &bearer(&doomed))]).await.unwrap();
    let (code, err) = common::run(swell(dir.path()).args(["token", "revoke", "doomed", "--tenant", "demo", "--database-url", &db]));
    assert_eq!(code, 0, "{err}");
    let revoked_at = Instant::now();
    while next(&mut revoked, Duration::from_secs(15)).await.is_some() {
        assert!(revoked_at.elapsed() < Duration::from_secs(15), "still streaming to a revoked token");
    }
    assert!(revoked_at.elapsed() < Duration::from_secs(15), "{:?}", revoked_at.elapsed());
    // The viewer's stream is unaffected.
    assert!(next(&mut watcher, Duration::from_secs(10)).await.is_some());
}
