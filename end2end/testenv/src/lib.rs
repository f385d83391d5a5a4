//! The test environment's Rust side: a fresh Kubernetes control plane (etcd 3.6,
//! kube-apiserver, kube-controller-manager, built from source by
//! `end2end/controlplane/build.sh`) on free 127.0.0.1 ports, torn down when dropped.
//!
//! Why our own harness and not kube-rs's `envtest` crate: envtest wraps controller-runtime's
//! Go envtest through rust2go (clang, a Go build inside `cargo build`) and runs only etcd and
//! the apiserver; Swell's tests also need kube-controller-manager (Deployments → ReplicaSets,
//! the HPA controller, Jobs, garbage collection), RBAC and a static admin token, and we
//! already build the binaries once per machine. Starting three processes is a page of code.

use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running control plane. Dropping it stops every process and deletes its folder.
pub struct ControlPlane {
    dir: PathBuf,
    children: Vec<(&'static str, Child)>,
    /// How each process was started, for `restart`.
    specs: Vec<(&'static str, PathBuf, Vec<String>)>,
    /// The network namespace the processes run in (`start_in`), if any.
    netns: Option<String>,
    pub api_url: String,
    pub token: String,
}

/// A port no one listens on, for a server a test is about to start.
///
/// Not port 0's answer: that comes from the kernel's ephemeral range, which outgoing
/// connections also draw from, so a client of another test could take the port between
/// this call and the server's bind (etcd failed once with "address already in use").
/// Ports come from below the ephemeral range instead, each handed out once per process,
/// from a starting point that differs per process.
pub fn free_port() -> io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000; // up to 32,000, below Linux's default ephemeral range (32,768–60,999)
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(u32::MAX, std::process::id().wrapping_mul(7919) % SPAN, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::other(format!("no free port between {LOW} and {}", LOW + SPAN)))
}

/// The folder with `etcd`, `kube-apiserver` and `kube-controller-manager`, built on first use
/// (several minutes, cached under ~/.cache/swell keyed by go.sum).
pub fn binaries() -> io::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../controlplane/build.sh");
    let out = Command::new("bash").arg(&script).stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("{} failed ({})", script.display(), out.status)));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn spawn(name: &'static str, dir: &Path, netns: Option<&str>, bin: &Path, args: &[String]) -> io::Result<(&'static str, Child)> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{name}.log")))?;
    let mut cmd = match netns {
        // `ip netns exec` enters the namespace and execs the binary (no extra process).
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // If the test process dies without dropping us (killed, aborted), the kernel stops the
    // child too, so no apiserver outlives its test.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    Ok((name, cmd.spawn()?))
}

fn run_ok(cmd: &mut Command) -> io::Result<()> {
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    if status.success() { Ok(()) } else { Err(io::Error::other(format!("{cmd:?} failed ({status})"))) }
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver, waits for `/readyz`, then starts
    /// kube-controller-manager with the controllers Swell relies on.
    pub fn start() -> io::Result<ControlPlane> {
        Self::start_on(None)
    }

    /// A control plane inside the network namespace `ns`, reached at `ns.inner_ip` (a test's
    /// own second host, whose link can be blackholed).
    pub fn start_in(ns: &netns::Netns) -> io::Result<ControlPlane> {
        Self::start_on(Some(ns))
    }

    fn launch(&mut self, name: &'static str, bin: PathBuf, args: Vec<String>) -> io::Result<()> {
        let child = spawn(name, &self.dir, self.netns.as_deref(), &bin, &args)?;
        self.children.push(child);
        self.specs.push((name, bin, args));
        Ok(())
    }

    /// Stops one process and starts it again with the same arguments (same ports, data and
    /// certificates), e.g. an API server restarted under a running Swell.
    pub fn restart(&mut self, name: &str) -> io::Result<()> {
        self.kill(name);
        let (name, bin, args) = self.specs.iter().find(|(n, _, _)| *n == name).cloned().ok_or_else(|| io::Error::other(format!("no process {name}")))?;
        let child = spawn(name, &self.dir, self.netns.as_deref(), &bin, &args)?;
        if let Some(slot) = self.children.iter_mut().find(|(n, _)| *n == name) {
            *slot = child;
        }
        if name == "apiserver" {
            self.wait_ready(Duration::from_secs(90))?;
        }
        Ok(())
    }

    fn start_on(ns: Option<&netns::Netns>) -> io::Result<ControlPlane> {
        let bin = binaries()?;
        let host = ns.map_or("127.0.0.1".to_string(), |n| n.inner_ip.clone());
        let base = std::env::var_os("TEST_SERVICES_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&base)?;
        let dir = base.join(format!("kube-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(dir.join("etcd"))?;
        std::fs::create_dir_all(dir.join("certs"))?;
        let mut cp = ControlPlane { dir: dir.clone(), children: Vec::new(), specs: Vec::new(), netns: ns.map(|n| n.name.clone()), api_url: String::new(), token: String::new() };

        let (etcd_client, etcd_peer, api) = (free_port()?, free_port()?, free_port()?);
        let token: String = {
            let mut bytes = [0u8; 24];
            std::fs::File::open("/dev/urandom").and_then(|mut f| io::Read::read_exact(&mut f, &mut bytes))?;
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        };
        std::fs::write(dir.join("tokens.csv"), format!("{token},admin,admin,\"system:masters\"\n"))?;
        let (key, public) = (dir.join("certs/sa.key"), dir.join("certs/sa.pub"));
        run_ok(Command::new("openssl").args(["genrsa", "-out"]).arg(&key).arg("2048"))?;
        run_ok(Command::new("openssl").arg("rsa").arg("-in").arg(&key).args(["-pubout", "-out"]).arg(&public))?;

        // The aggregator's client identity, as a real cluster has it: a front-proxy CA and a
        // client certificate (CN front-proxy-client) it presents to extension API servers.
        let certs = dir.join("certs");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        run_ok(Command::new("openssl").current_dir(&certs).args(["req", "-x509"]).args(ec).args(["-keyout", "front-proxy-ca.key", "-out", "front-proxy-ca.crt", "-days", "2", "-subj", "/CN=front-proxy-ca"]))?;
        run_ok(Command::new("openssl").current_dir(&certs).arg("req").args(ec).args(["-keyout", "front-proxy-client.key", "-out", "front-proxy-client.csr", "-subj", "/CN=front-proxy-client"]))?;
        std::fs::write(certs.join("client.ext"), "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n")?;
        run_ok(Command::new("openssl").current_dir(&certs).args([
            "x509", "-req", "-in", "front-proxy-client.csr", "-CA", "front-proxy-ca.crt", "-CAkey", "front-proxy-ca.key", "-CAcreateserial",
            "-out", "front-proxy-client.crt", "-days", "2", "-extfile", "client.ext",
        ]))?;

        let d = |p: &str| dir.join(p).display().to_string();
        cp.launch(
            "etcd",
            bin.join("etcd"),
            vec![
                "--data-dir".into(),
                d("etcd"),
                "--listen-client-urls".into(),
                format!("http://127.0.0.1:{etcd_client}"),
                "--listen-peer-urls".into(),
                format!("http://127.0.0.1:{etcd_peer}"),
            ],
        )?;
        cp.launch(
            "apiserver",
            bin.join("kube-apiserver"),
            vec![
                format!("--etcd-servers=http://127.0.0.1:{etcd_client}"),
                format!("--cert-dir={}", d("certs")),
                format!("--bind-address={host}"),
                format!("--advertise-address={host}"),
                format!("--secure-port={api}"),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--authorization-mode=RBAC".into(),
                "--allow-privileged=true".into(),
                format!("--token-auth-file={}", d("tokens.csv")),
                "--disable-admission-plugins=ServiceAccount".into(),
                "--service-account-issuer=https://swell-test.invalid".into(),
                format!("--service-account-key-file={}", public.display()),
                format!("--service-account-signing-key-file={}", key.display()),
                format!("--requestheader-client-ca-file={}", d("certs/front-proxy-ca.crt")),
                "--requestheader-allowed-names=front-proxy-client".into(),
                "--requestheader-username-headers=X-Remote-User".into(),
                "--requestheader-group-headers=X-Remote-Group".into(),
                "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
                format!("--proxy-client-cert-file={}", d("certs/front-proxy-client.crt")),
                format!("--proxy-client-key-file={}", d("certs/front-proxy-client.key")),
            ],
        )?;
        cp.api_url = format!("https://{host}:{api}");
        cp.token = token;
        std::fs::write(dir.join("kubeconfig"), cp.kubeconfig())?;
        cp.wait_ready(Duration::from_secs(90))?;
        cp.launch(
            "controller-manager",
            bin.join("kube-controller-manager"),
            vec![
                format!("--kubeconfig={}", d("kubeconfig")),
                "--leader-elect=false".into(),
                "--bind-address=127.0.0.1".into(),
                "--secure-port=0".into(),
                "--controllers=deployment-controller,replicaset-controller,job-controller,horizontal-pod-autoscaler-controller,garbage-collector-controller,namespace-controller".into(),
                "--horizontal-pod-autoscaler-sync-period=1s".into(),
                "--horizontal-pod-autoscaler-downscale-stabilization=0s".into(),
            ],
        )?;
        Ok(cp)
    }

    /// A kubeconfig for the admin (system:masters) user.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"{}\", insecure-skip-tls-verify: true}}\nusers:\n- name: admin\n  user: {{token: \"{}\"}}\ncontexts:\n- name: test\n  context: {{cluster: test, user: admin}}\ncurrent-context: test\n",
            self.api_url, self.token
        )
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// A client acting as the admin.
    pub async fn client(&self) -> kube::Client {
        self.client_as(None).await
    }

    /// A client acting as the admin, or impersonating `user` (e.g.
    /// `system:serviceaccount:swell:swell`) when given.
    pub async fn client_as(&self, user: Option<&str>) -> kube::Client {
        // Both ring and aws-lc-rs are compiled in (kube, the AWS SDK): pick ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig()).expect("kubeconfig parses");
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("kubeconfig loads");
        if let Some(user) = user {
            config.auth_info.impersonate = Some(user.to_string());
        }
        kube::Client::try_from(config).expect("client")
    }

    fn wait_ready(&mut self, limit: Duration) -> io::Result<()> {
        let started = Instant::now();
        loop {
            let ok = Command::new("curl")
                .args(["-ksf", "-o", "/dev/null", "-H"])
                .arg(format!("Authorization: Bearer {}", self.token))
                .arg(format!("{}/readyz", self.api_url))
                .status()?
                .success();
            if ok {
                return Ok(());
            }
            let mut exited = None;
            for (name, child) in &mut self.children {
                if let Some(status) = child.try_wait()? {
                    exited = Some((*name, status));
                }
            }
            if let Some((name, status)) = exited {
                return Err(io::Error::other(format!("{name} exited ({status}): {}", self.log_tail(name))));
            }
            if started.elapsed() > limit {
                return Err(io::Error::other(format!("kube-apiserver not ready after {limit:?}: {}", self.log_tail("apiserver"))));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of one process's log, for failure messages.
    pub fn log_tail(&self, name: &str) -> String {
        let log = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// A file of the control plane's certificates folder (e.g. `front-proxy-ca.crt`), for
    /// tests that act as, or check, the aggregator's client identity.
    pub fn cert_path(&self, name: &str) -> PathBuf {
        self.dir.join("certs").join(name)
    }

    /// The process id of one of the control plane's processes (for benchmarks' CPU figures).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.children.iter().find(|(n, _)| *n == name).map(|(_, c)| c.id())
    }

    /// Stops one process (e.g. to test a lost API server); the rest keep running.
    pub fn kill(&mut self, name: &str) {
        for (n, child) in &mut self.children {
            if *n == name {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Controller manager first, etcd last.
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("KEEP_TEST_CLUSTER").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub mod browser;
pub mod helm;
pub mod k8s;
pub mod keycloak;
pub mod oidc;
pub mod postgres;
pub mod kafka;
pub mod moto;
pub mod netns;
pub mod rabbitmq;
