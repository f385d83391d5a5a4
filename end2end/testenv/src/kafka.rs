//! Apache Kafka 4 in KRaft mode (broker and controller in one JVM), from the Maven Central
//! jars `end2end/kafka/fetch.sh` caches, on free 127.0.0.1 ports in its own folder.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

pub struct Kafka {
    dir: PathBuf,
    child: Option<Child>,
    libs: PathBuf,
    pub port: u16,
}

fn libs() -> io::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kafka/fetch.sh");
    let out = Command::new("bash").arg(&script).stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("{} failed ({})", script.display(), out.status)));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

impl Kafka {
    pub fn start() -> io::Result<Kafka> {
        let libs = libs()?;
        let base = std::env::var_os("TEST_SERVICES_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let port = free_port()?;
        let controller = free_port()?;
        let dir = base.join(format!("kafka-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("server.properties"),
            format!(
                "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:{controller}\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\nadvertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                 controller.listener.names=CONTROLLER\nlistener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 log.dirs={}\noffsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\n\
                 transaction.state.log.min.isr=1\ngroup.initial.rebalance.delay.ms=0\nnum.partitions=1\n",
                dir.join("data").display()
            ),
        )?;
        let classpath = format!("{}/*", libs.display());
        let id = Command::new("java").args(["-cp", &classpath, "kafka.tools.StorageTool", "random-uuid"]).stderr(Stdio::null()).output()?;
        let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
        let format = Command::new("java")
            .args(["-cp", &classpath, "kafka.tools.StorageTool", "format", "-t", &id, "-c"])
            .arg(dir.join("server.properties"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !format.success() || id.is_empty() {
            return Err(io::Error::other("formatting the Kafka storage failed"));
        }
        let mut k = Kafka { dir, child: None, libs, port };
        k.boot()?;
        Ok(k)
    }

    fn boot(&mut self) -> io::Result<()> {
        let log = std::fs::File::create(self.dir.join("broker.log"))?;
        let mut cmd = Command::new("java");
        cmd.args(["-Xmx512m", "-XX:+UseSerialGC", "-cp", &format!("{}/*", self.libs.display()), "kafka.Kafka"])
            .arg(self.dir.join("server.properties"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn()?);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(io::Error::other(format!("Kafka exited ({status})")));
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(io::Error::other("Kafka did not listen within 60 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the broker again on the same port and data.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.boot()
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("KEEP_TEST_CLUSTER").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
