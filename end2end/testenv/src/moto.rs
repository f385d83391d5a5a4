//! An SQS- and STS-speaking server (moto in server mode, from PyPI; dev.sh installs it into a
//! venv in the cache) on a free 127.0.0.1 port.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

pub struct Moto {
    child: Child,
    pub port: u16,
}

/// `MOTO_SERVER`, else the venv dev.sh makes, else `moto_server` on PATH.
fn program() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return p.into();
    }
    let cache = std::env::var_os("DEV_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/swell"));
    let venv = cache.join("venv-moto/bin/moto_server");
    if venv.exists() { venv } else { "moto_server".into() }
}

impl Moto {
    pub fn start() -> io::Result<Moto> {
        Self::start_on(free_port()?)
    }

    /// Stops the server (SIGKILL): its queues are gone with it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A fresh server on the port of a stopped one (no queues yet).
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.child = Self::spawn_on(self.port)?;
        Ok(())
    }

    fn start_on(port: u16) -> io::Result<Moto> {
        Ok(Moto { child: Self::spawn_on(port)?, port })
    }

    /// Starts moto_server on `port` and waits until it listens.
    fn spawn_on(port: u16) -> io::Result<Child> {
        let mut cmd = Command::new(program());
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| io::Error::other(format!("{}: {e} (dev.sh installs moto[server] into a venv)", program().display())))?;
        let mut child = child;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!("moto_server exited: {status}")));
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(io::Error::other("moto_server did not listen within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(child)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SQS client of this server (it accepts any credentials), region eu-west-1.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
        aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("eu-west-1"))
                .credentials_provider(Credentials::new("test", "test", None, None, "test"))
                .endpoint_url(self.endpoint())
                .build(),
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
