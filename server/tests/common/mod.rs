//! Helpers shared by the binary's integration tests.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::Duration;

pub fn swell(dir: &std::path::Path) -> Command {
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

pub fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("swell runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub fn free_port() -> u16 {
    testenv::free_port().expect("a free port")
}

/// The suite's Prometheus (end2end/services.sh): its URL and the folder of scrape targets it
/// reads. Outside CI a missing one skips the test; in CI it is a failure.
pub fn prometheus() -> Option<(String, String)> {
    match (std::env::var("PROMETHEUS_URL"), std::env::var("PROMETHEUS_TARGETS_DIR")) {
        (Ok(url), Ok(dir)) => Some((url, dir)),
        _ => {
            assert!(std::env::var("CI").map_or(true, |v| v != "true"), "CI=true needs PROMETHEUS_URL (dev.sh test starts Prometheus)");
            eprintln!("PROMETHEUS_URL not set: skipped (run dev.sh test)");
            None
        }
    }
}

pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    request(port, "GET", path, &[], "")
}

/// GET as the holder of an API token.
pub fn get_as(port: u16, path: &str, token: &str) -> Option<(u16, String)> {
    request(port, "GET", path, &[("Authorization", &format!("Bearer {token}"))], "")
}

/// One HTTP/1.1 request on loopback: status and the whole response (headers and body).
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, buf))
}


/// Signs in to a running `swell demo` with its local sign-in; returns the `Cookie` header value.
pub fn demo_session(port: u16) -> String {
    let origin = format!("http://127.0.0.1:{port}");
    let (code, res) = request(port, "POST", "/t/demo/login/local", &[("Origin", &origin), ("Content-Type", "application/x-www-form-urlencoded")], "next=%2Ft%2Fdemo").expect("local sign-in answers");
    assert_eq!(code, 303, "{res}");
    let cookie = res.lines().find_map(|l| l.strip_prefix("set-cookie: ")).expect("a session cookie");
    cookie.split(';').next().unwrap().to_string()
}

/// Creates an API token with `role` in `tenant` on the database at `db` (`swell token create`).
pub fn token(dir: &std::path::Path, db: &str, tenant: &str, name: &str, role: &str) -> String {
    let out = swell(dir).args(["token", "create", name, "--tenant", tenant, "--role", role, "--database-url", db]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A `swell demo` on a free port in its own folder, stopped when dropped.
pub struct Demo {
    pub port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Demo {
    pub fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = swell(dir.path())
            .args(["demo", "--bind", &format!("127.0.0.1:{port}"), "--log", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while get(port, "/healthz").is_none() {
            assert!(std::time::Instant::now() < deadline, "swell demo did not answer /healthz");
            std::thread::sleep(Duration::from_millis(100));
        }
        Demo { port, child, _dir: dir }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The secret key the tests' `swell` processes seal with.
pub const KEY: &str = "3f1c0a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c";

/// A child process killed when dropped.
pub struct Serve(pub std::process::Child);
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `swell serve` with a registered cluster and its metrics API behind an APIService; its
/// output (every log line) goes to `serve.log` in its folder.
pub struct Served {
    /// An admin API token of tenant `team`.
    pub token: String,
    pub serve: Serve,
    pub dir: tempfile::TempDir,
    pub api_port: u16,
    pub port: u16,
    pub db: String,
}

impl Served {
    /// What `swell serve` has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }
}

/// A fresh control plane with Swell's CRDs and the `shop` and `swell` namespaces.
pub async fn control_plane() -> (testenv::ControlPlane, kube::Client) {
    let cp = testenv::ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    testenv::k8s::install_crds(&client, engine::crd::all()).await;
    testenv::k8s::namespace(&client, "shop").await;
    testenv::k8s::namespace(&client, "swell").await;
    (cp, client)
}

/// Registers the control plane as cluster `east` of tenant `team` (`swell cluster add`) and
/// starts `swell serve` at the log filter `log`.
pub async fn serve_against(cp: &testenv::ControlPlane, client: &kube::Client, log: &str) -> Served {
    let (dir, db) = register_cluster(cp);
    serve_registered(dir, db, client, log, &[]).await
}

/// `swell cluster add east --tenant team` with the control plane's kubeconfig (sealed, the
/// file removed after); the folder and database URL for `swell serve`.
pub fn register_cluster(cp: &testenv::ControlPlane) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cp.kubeconfig()).unwrap();
    let db = format!("sqlite://{}/swell.db", dir.path().display());
    let (code, err) = run(swell(dir.path())
        .args(["cluster", "add", "east", "--tenant", "team", "--database-url", &db, "--kubeconfig"])
        .arg(&kubeconfig)
        .env("SWELL_SECRET_KEY", KEY));
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(&kubeconfig).unwrap();
    (dir, db)
}

/// Starts `swell serve` on a registered cluster with extra environment (`SWELL_*` settings),
/// serving the external metrics API behind an APIService.
pub async fn serve_registered(dir: tempfile::TempDir, db: String, client: &kube::Client, log: &str, env: &[(&str, &str)]) -> Served {
    let wait = Duration::from_secs(60);
    let (port, api_port) = (free_port(), free_port());
    let out = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let serve = Serve(
        swell(dir.path())
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--database-url", &db, "--log", log])
            .env("SWELL_SECRET_KEY", KEY)
            .env("SWELL_METRICS_API_BIND", format!("127.0.0.1:{api_port}"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
    );
    testenv::k8s::eventually("swell serve answers", wait, || async { get(port, "/healthz").map(|_| ()) }).await;
    testenv::k8s::create_yaml(
        client,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: swell-metrics, namespace: swell}}\nspec: {{type: ExternalName, externalName: 127.0.0.1, ports: [{{name: https, port: {api_port}}}]}}\n---\n\
             apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: v1beta1.external.metrics.k8s.io}}\n\
             spec: {{group: external.metrics.k8s.io, version: v1beta1, insecureSkipTLSVerify: true, groupPriorityMinimum: 100, versionPriority: 100, service: {{name: swell-metrics, namespace: swell, port: {api_port}}}}}\n"
        ),
    )
    .await;
    let token = token(dir.path(), &db, "team", "tests", "admin");
    Served { serve, dir, api_port, port, db, token }
}

/// curl's status code and body for `url` with extra arguments (method, certificates,
/// headers); status 0 when the TLS handshake or connection failed.
pub fn curl_url(url: &str, extra: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sk", "-w", "\n%{http_code}", "--max-time", "10"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// curl's status code for GET `path` on the metrics API at `port`.
pub fn curl(port: u16, path: &str, extra: &[&str]) -> u16 {
    curl_url(&format!("https://127.0.0.1:{port}{path}"), extra).0
}
