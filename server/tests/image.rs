//! The OCI image (deploy/image/build.sh, Debian's umoci, no Docker daemon): built from this
//! build's `swell` and site, inspected with skopeo (non-root user, entrypoint, command, ports,
//! environment), then unpacked and started as a container runtime would: `swell demo` with the
//! image's environment, inside its root filesystem (chroot), as its user, in its working
//! folder; it must answer /readyz and serve the site. The Dockerfile declares the same.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Serve, free_port, get};
use serde_json::Value;

fn skopeo(args: &[&str]) -> Value {
    let out = Command::new("skopeo").args(args).output().expect("skopeo runs (apt-get install skopeo)");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The Dockerfile's runtime stage (after the last FROM): instruction → arguments.
fn dockerfile_runtime() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/image/Dockerfile")).unwrap();
    let last_from = text.rfind("\nFROM ").unwrap();
    text[last_from..]
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(i, _)| i.chars().all(|c| c.is_ascii_uppercase()) && !i.is_empty())
        .map(|(i, a)| (i.to_string(), a.trim().to_string()))
        .collect()
}

#[test]
fn the_image_runs_as_its_user_from_its_own_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let site = root.join("target/site");
    assert!(site.join("pkg/swell.js").exists(), "no built site in {}: run `cargo leptos build` (dev.sh test does)", site.display());
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let out = Command::new("bash")
        .arg(root.join("deploy/image/build.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_swell"), "--tag", "test", "--site"])
        .arg(&site)
        .arg("--out")
        .arg(&layout)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build.sh: {stderr}");
    let reference = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(reference, format!("oci:{}:test", layout.display()));
    eprintln!("{}", stderr.lines().last().unwrap_or_default());

    let config = skopeo(&["inspect", "--config", &reference]);
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/local/bin/swell"]));
    assert_eq!(c["Cmd"], serde_json::json!(["serve"]));
    assert_eq!(c["WorkingDir"], "/app");
    let env: Vec<String> = c["Env"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect();
    assert!(env.contains(&"SWELL_SITE_ROOT=/app/site".to_string()), "{env:?}");
    let ports: Vec<&String> = c["ExposedPorts"].as_object().unwrap().keys().collect();
    assert_eq!(ports, ["3000/tcp", "6443/tcp"]);
    let manifest = skopeo(&["inspect", "--raw", &reference]);
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);

    // The Dockerfile's runtime stage says the same.
    let docker = dockerfile_runtime();
    let say = |i: &str| docker.iter().filter(|(k, _)| k == i).map(|(_, v)| v.clone()).collect::<Vec<_>>().join(" ");
    assert_eq!(say("USER"), "65532:65532");
    assert_eq!(say("WORKDIR"), "/app");
    assert_eq!(say("ENTRYPOINT"), "[\"/usr/local/bin/swell\"]");
    assert_eq!(say("CMD"), "[\"serve\"]");
    assert_eq!(say("EXPOSE"), "3000/tcp 6443/tcp");
    let mut docker_env: Vec<String> = say("ENV").split_whitespace().map(str::to_string).collect();
    let mut image_env: Vec<String> = env.iter().filter(|e| !e.starts_with("PATH=")).cloned().collect();
    docker_env.sort();
    image_env.sort();
    assert_eq!(docker_env, image_env);

    // Unpacked and started as a runtime would.
    let bundle = dir.path().join("bundle");
    let status = Command::new("umoci").args(["unpack", "--rootless", "--image", &format!("{}:test", layout.display())]).arg(&bundle).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
    let rootfs = bundle.join("rootfs");
    assert!(!rootfs.join("bin/sh").exists(), "the image has no shell");
    assert!(rootfs.join("usr/share/doc/libc6/copyright").exists(), "copied libraries keep their copyright files");
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "CI=true: starting the image's files needs root (chroot)");
        eprintln!("not root: the image is not started (chroot needs root)");
        return;
    }
    let port = free_port();
    let mut cmd = Command::new("/usr/local/bin/swell");
    cmd.args(["demo", "--bind", &format!("127.0.0.1:{port}"), "--database-url", "sqlite:///tmp/swell.db", "--log", "warn"])
        .env_clear()
        .envs(env.iter().map(|e| e.split_once('=').unwrap()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("demo.log")).unwrap());
    let rootfs_c = std::ffi::CString::new(rootfs.to_str().unwrap()).unwrap();
    unsafe {
        cmd.pre_exec(move || {
            if libc::chroot(rootfs_c.as_ptr()) != 0 || libc::chdir(c"/app".as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(65532) != 0 || libc::setuid(65532) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let _demo = Serve(cmd.spawn().expect("the image's swell starts"));
    let log = || std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default();
    let started = std::time::Instant::now();
    while get(port, "/readyz").map(|(code, _)| code) != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(60), "the image's swell did not become ready: {}", log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, js) = get(port, "/pkg/swell.js").unwrap();
    assert_eq!(code, 200, "the site is served from /app/site");
    assert!(js.contains("wasm"), "swell.js");
    let owner = std::fs::metadata(rootfs.join("tmp/swell.db")).map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    assert_eq!(owner.ok(), Some(65532), "the demo wrote its database as the image's user: {}", log());
}
