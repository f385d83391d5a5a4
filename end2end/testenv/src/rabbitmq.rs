//! A private RabbitMQ (Debian `rabbitmq-server`, management plugin on) on free 127.0.0.1
//! ports, in its own folder, with its own epmd. `stop` and `start` again keep the data and
//! the ports, so a test can take the broker away and bring it back.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

pub struct RabbitMq {
    dir: PathBuf,
    child: Option<Child>,
    pub amqp_port: u16,
    pub http_port: u16,
    epmd_port: u16,
    dist_port: u16,
}

pub const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

impl RabbitMq {
    pub fn start() -> io::Result<RabbitMq> {
        if !std::path::Path::new(SERVER).exists() {
            return Err(io::Error::other(format!("{SERVER} is missing: install the Debian package rabbitmq-server (dev.sh does)")));
        }
        let base = std::env::var_os("TEST_SERVICES_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let amqp_port = free_port()?;
        let dir = base.join(format!("rabbitmq-{}-{amqp_port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut r = RabbitMq { dir, child: None, amqp_port, http_port: free_port()?, epmd_port: free_port()?, dist_port: free_port()? };
        std::fs::write(
            r.dir.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{}\nmanagement.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {}\n\
                 collect_statistics_interval = 500\nmanagement.rates_mode = basic\nlog.console = false\n",
                r.amqp_port, r.http_port
            ),
        )?;
        std::fs::write(r.dir.join("enabled_plugins"), "[rabbitmq_management].\n")?;
        r.boot()?;
        Ok(r)
    }

    fn boot(&mut self) -> io::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("server.log"))?;
        let d = |p: &str| self.dir.join(p);
        let mut cmd = Command::new(SERVER);
        cmd.env("HOME", &self.dir)
            .env("RABBITMQ_NODENAME", format!("swell{}@localhost", self.amqp_port))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", d("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", d("mnesia"))
            .env("RABBITMQ_LOG_BASE", d("log"))
            .env("RABBITMQ_PID_FILE", d("pid"))
            .env("RABBITMQ_CONF_ENV_FILE", d("no-env-file"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn()?);
        self.wait_ready(Duration::from_secs(90))
    }

    fn wait_ready(&mut self, limit: Duration) -> io::Result<()> {
        let started = Instant::now();
        loop {
            let ok = Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "-u", "guest:guest"])
                .arg(format!("http://127.0.0.1:{}/api/overview", self.http_port))
                .status()?
                .success();
            if ok {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(io::Error::other(format!("rabbitmq-server exited ({status}): {}", self.log_tail())));
            }
            if started.elapsed() > limit {
                return Err(io::Error::other(format!("RabbitMQ not ready after {limit:?}: {}", self.log_tail())));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    /// `http://guest:guest@127.0.0.1:<port>/` (the management API)
    pub fn http_url(&self) -> String {
        format!("http://guest:guest@127.0.0.1:{}/", self.http_port)
    }

    /// Kills the broker (its whole process group); the data folder stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
        }
        // epmd detaches into its own session: stop it by its port.
        let _ = Command::new("epmd")
            .args(["-port", &self.epmd_port.to_string(), "-kill"])
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Starts the broker again on the same ports and data.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.boot()
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("KEEP_TEST_CLUSTER").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
