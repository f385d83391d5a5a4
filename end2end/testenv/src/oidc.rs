//! A second, independent OpenID Provider: npm `oidc-provider` in `end2end/oidc/provider.mjs`
//! (its development login pages), on a free 127.0.0.1 port, with the clients and accounts a
//! test gives. `restart` brings it back on the same port with new signing keys.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

pub struct OidcProvider {
    child: Child,
    pub port: u16,
    config: PathBuf,
    _dir: TempDir,
}

/// A folder removed when dropped.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An account that can sign in (any password is accepted by the development pages).
pub struct Account<'a> {
    pub login: &'a str,
    pub email: &'a str,
    pub groups: &'a [&'a str],
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../oidc/provider.mjs")
}

impl OidcProvider {
    /// Starts with one confidential client `client_id`/`secret` redirecting to `redirect_uris`.
    pub fn start(client_id: &str, secret: &str, redirect_uris: &[String], post_logout: &[String], accounts: &[Account]) -> io::Result<OidcProvider> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("swell-oidc-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("config.json");
        let cfg = serde_json::json!({
            "port": port,
            "clients": [{
                "client_id": client_id,
                "client_secret": secret,
                "redirect_uris": redirect_uris,
                "post_logout_redirect_uris": post_logout,
                "token_endpoint_auth_method": "client_secret_basic",
            }],
            "accounts": accounts.iter().map(|a| serde_json::json!({"login": a.login, "email": a.email, "groups": a.groups})).collect::<Vec<_>>(),
        });
        std::fs::write(&config, cfg.to_string())?;
        let child = spawn(&config, &dir)?;
        let mut p = OidcProvider { child, port, config, _dir: TempDir(dir) };
        p.wait_ready()?;
        Ok(p)
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops and starts again on the same port: sessions gone, signing key new.
    pub fn restart(&mut self) -> io::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.config, &self._dir.0)?;
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self._dir.0.join("provider.log")).unwrap_or_default();
                return Err(io::Error::other(format!("oidc-provider exited: {status}: {log} (dev.sh runs npm ci in end2end/)")));
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(io::Error::other("oidc-provider did not listen within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

fn spawn(config: &Path, dir: &Path) -> io::Result<Child> {
    let log = std::fs::File::create(dir.join("provider.log"))?;
    let mut cmd = Command::new("node");
    cmd.arg(script()).arg(config).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| io::Error::other(format!("node {}: {e}", script().display())))
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
