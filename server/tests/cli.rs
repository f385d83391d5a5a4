//! The `swell` binary: start-up errors exit 2 with one clear line; serve and migrate work
//! against real databases; SIGTERM shuts down cleanly.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn swell(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swell"));
    cmd.current_dir(dir);
    // The tests' own environment must not leak config into the child.
    for (key, _) in std::env::vars() {
        if key.starts_with("SWELL_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("swell runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn unknown_key_in_file_exits_2_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("swell.toml"), "databse_url = \"sqlite::memory:\"\n").unwrap();
    let (code, err) = run(swell(dir.path()).arg("migrate"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown config key `databse_url`") && err.contains("swell.toml"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn unknown_env_key_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(swell(dir.path()).arg("migrate").env("SWELL_BINDD", "127.0.0.1:1"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`bindd`"), "{err}");
}

#[test]
fn bad_value_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(swell(dir.path()).args(["migrate", "--bind", "localhost:notaport"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("config key `bind`"), "{err}");
}

#[test]
fn missing_config_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(swell(dir.path()).args(["migrate", "--config", "nope.toml"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn unreachable_database_exits_2_with_the_url_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(); // nothing listens there
    let url = format!("postgres://swell:hunter2@127.0.0.1:{port}/swell");
    let (code, err) = run(swell(dir.path()).arg("migrate").env("SWELL_DATABASE_URL", &url));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("cannot reach database postgres://swell:***@127.0.0.1:{port}/swell")), "{err}");
    assert!(!err.contains("hunter2"), "password leaked: {err}");
}

#[test]
fn migrate_creates_the_sqlite_file_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(swell(dir.path()).arg("migrate"));
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join("data/swell.db").exists());
}

#[test]
fn migrate_on_postgres() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "CI=true needs TEST_DATABASE_URL (dev.sh test starts PostgreSQL)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(swell(dir.path()).args(["migrate", "--database-url", &url]));
    assert_eq!(code, 0, "{err}");
    let (code, err) = run(swell(dir.path()).args(["migrate", "--database-url", &url]));
    assert_eq!(code, 0, "idempotent: {err}");
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, buf))
}

#[test]
fn demo_serves_health_readiness_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = swell(dir.path())
        .args(["demo", "--bind", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(port, "/healthz").is_none() {
        assert!(Instant::now() < deadline, "swell demo did not answer /healthz");
        assert!(child.try_wait().unwrap().is_none(), "swell demo exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(port, "/readyz").unwrap().0, 200);
    std::thread::sleep(Duration::from_millis(2500));
    let (status, body) = get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("swell_decisions_total"), "{body}");
    assert!(body.contains("scaled_object=\"web-frontend\""), "{body}");
    let (status, body) = get(port, "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("web-frontend") && body.contains("orders-worker") && body.contains("catalog-api"), "SSR lists the demo objects");

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
}
