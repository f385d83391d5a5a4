//! A PostgreSQL server of a test's own (Debian's binaries, as the `postgres` user), for
//! tests that stop and start it: the suite's shared server must never go down.

use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

fn su(cmd: String) -> io::Result<()> {
    let out = Command::new("su").args(["postgres", "-c", &cmd]).stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{cmd}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))))
    }
}

impl Postgres {
    /// initdb in a new folder under /tmp (the postgres user must reach it), then start.
    pub fn start() -> io::Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("pg_ctl").exists())
            .max()
            .ok_or_else(|| io::Error::other("no /usr/lib/postgresql/*/bin/pg_ctl: apt-get install postgresql"))?;
        let dir = PathBuf::from(format!("/tmp/swell-pg-{}-{}", std::process::id(), crate::free_port()?));
        std::fs::create_dir_all(&dir)?;
        Command::new("chown").args(["postgres:postgres"]).arg(&dir).status()?;
        let pg = Postgres { port: crate::free_port()?, dir, bin };
        su(format!("{}/initdb -D {}/data -U postgres --auth=trust -E UTF8 --no-sync", pg.bin.display(), pg.dir.display()))?;
        pg.restart()?;
        Ok(pg)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server as a crash would (`pg_ctl stop -m immediate`: no checkpoint).
    pub fn kill(&self) -> io::Result<()> {
        su(format!("{}/pg_ctl -D {}/data -m immediate -w stop", self.bin.display(), self.dir.display()))
    }

    /// Starts it (again) on the same port and data, waiting until it accepts connections.
    pub fn restart(&self) -> io::Result<()> {
        su(format!(
            "{}/pg_ctl -D {d}/data -l {d}/server.log -w -t 60 -o '-c listen_addresses=127.0.0.1 -p {} -k {d} -c fsync=off' start",
            self.bin.display(),
            self.port,
            d = self.dir.display()
        ))
    }

    /// Runs one SQL statement with psql; its unaligned output.
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-At", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
