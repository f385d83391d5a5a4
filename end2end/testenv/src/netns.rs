//! A second host for a test: a network namespace joined to this one by a veth pair (iproute2),
//! whose link can be blackholed: every packet from it dropped (iptables), so connections
//! hang as they do when a cluster's network fails, rather than being refused.

use std::io;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Netns {
    pub name: String,
    /// This side's address on the link.
    pub outer_ip: String,
    /// The namespace's address: servers inside bind it.
    pub inner_ip: String,
    inner_dev: String,
}

fn run(args: &[&str]) -> io::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())))
    }
}

impl Netns {
    /// A namespace with loopback up and a /30 link to this one (10.213.N.0/30).
    pub fn create() -> io::Result<Netns> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = (std::process::id() + NEXT.fetch_add(1, Ordering::SeqCst)) % 250;
        let name = format!("swell-{}-{n}", std::process::id());
        let (outer_dev, inner_dev) = (format!("sw{n}o{}", std::process::id() % 10000), format!("sw{n}i{}", std::process::id() % 10000));
        let (outer_ip, inner_ip) = (format!("10.213.{n}.1"), format!("10.213.{n}.2"));
        run(&["ip", "netns", "add", &name])?;
        let ns = Netns { name: name.clone(), outer_ip: outer_ip.clone(), inner_ip: inner_ip.clone(), inner_dev: inner_dev.clone() };
        run(&["ip", "link", "add", &outer_dev, "type", "veth", "peer", "name", &inner_dev])?;
        run(&["ip", "link", "set", &inner_dev, "netns", &name])?;
        run(&["ip", "addr", "add", &format!("{outer_ip}/30"), "dev", &outer_dev])?;
        run(&["ip", "link", "set", &outer_dev, "up"])?;
        for args in [
            vec!["ip", "addr", "add", &format!("{inner_ip}/30"), "dev", &inner_dev],
            vec!["ip", "link", "set", &inner_dev, "up"],
            vec!["ip", "link", "set", "lo", "up"],
        ] {
            let mut full = vec!["ip", "netns", "exec", &name];
            full.extend(args);
            run(&full)?;
        }
        Ok(ns)
    }

    /// Drops (`on`) or lets through again every packet arriving over the link; the
    /// namespace's own loopback is untouched.
    pub fn blackhole(&self, on: bool) -> io::Result<()> {
        let op = if on { "-I" } else { "-D" };
        run(&["ip", "netns", "exec", &self.name, "iptables", op, "INPUT", "-i", &self.inner_dev, "-j", "DROP"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth pair, and with it ours.
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}
