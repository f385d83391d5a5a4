//! The `swell` binary: start-up errors exit 2 with one clear line; serve and migrate work
//! against real databases; SIGTERM shuts down cleanly.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, get, run, swell};

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
    assert_eq!(status, 303, "signed out, / goes to the demo's sign-in: {body}");
    assert!(body.contains("location: /t/demo/login"), "{body}");
    let cookie = common::demo_session(port);
    let (status, body) = common::request(port, "GET", "/t/demo", &[("Cookie", &cookie)], "").unwrap();
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

#[test]
fn deploy_crds_are_what_crdgen_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crds");
    let (code, err) = run(swell(dir.path()).arg("crdgen").arg("--out").arg(&out));
    assert_eq!(code, 0, "{err}");
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/helm/swell/crds");
    let mut names: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names.len(), 4);
    for name in names {
        let fresh = std::fs::read_to_string(out.join(&name)).unwrap();
        let kept = std::fs::read_to_string(committed.join(&name)).unwrap_or_default();
        assert!(fresh == kept, "deploy/helm/swell/crds/{} is stale: run `swell crdgen`", name.to_string_lossy());
    }
}

#[test]
fn cluster_add_rejects_bad_input_by_flag_and_never_echoes_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/swell.db", dir.path().display());
    std::fs::write(dir.path().join("not-a-kubeconfig"), "hello: [").unwrap();
    std::fs::write(
        dir.path().join("kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\nusers: [{name: u, user: {token: s3cr3t-t0ken}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let key = "11".repeat(32);
    let cases: [(&[&str], Option<&str>, &str); 4] = [
        (&["cluster", "add", "east", "--kubeconfig", "missing.yaml"], Some(key.as_str()), "--kubeconfig missing.yaml"),
        (&["cluster", "add", "east", "--kubeconfig", "not-a-kubeconfig"], Some(key.as_str()), "not a kubeconfig"),
        (&["cluster", "add", "east", "--kubeconfig", "kubeconfig"], None, "secret_key"),
        (&["cluster", "add", "east", "--kubeconfig", "kubeconfig"], Some("short"), "secret_key: must be 64 hex"),
    ];
    for (args, key, want) in cases {
        let mut cmd = swell(dir.path());
        cmd.args(args).args(["--database-url", &db]);
        if let Some(k) = key {
            cmd.env("SWELL_SECRET_KEY", k);
        }
        let (code, err) = run(&mut cmd);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want) && !err.contains("s3cr3t"), "{args:?}: {err}");
    }
    let (code, err) = run(swell(dir.path()).args(["cluster", "add", "east", "--kubeconfig", "kubeconfig", "--database-url", &db]).env("SWELL_SECRET_KEY", &key));
    assert_eq!(code, 0, "{err}");
    let out = swell(dir.path()).args(["cluster", "list", "--database-url", &db]).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("east\tkubeconfig\tdefault") && !listed.contains("s3cr3t"), "{listed}");
}
