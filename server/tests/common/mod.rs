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
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, buf))
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
