//! Swell's Helm chart (`deploy/helm/swell`) through a real helm, built from the Go module
//! proxy by `end2end/helm/build.sh` on first use.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The chart's folder.
pub fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/swell")
}

/// The helm binary (`TEST_HELM`, or built and cached by the script).
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("TEST_HELM") {
            return PathBuf::from(bin);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/build.sh");
        let out = Command::new("bash").arg(&script).stderr(Stdio::inherit()).output().expect("bash runs");
        assert!(out.status.success(), "{} failed ({}): helm is needed for the chart tests", script.display(), out.status);
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

/// Runs helm with `args`: whether it succeeded, its stdout and its stderr.
pub fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary()).args(args).output().expect("helm runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `helm template RELEASE deploy/helm/swell -n NAMESPACE --include-crds [--set S]…`, parsed
/// into its objects; Err(helm's message) when helm refuses the values.
pub fn template(release: &str, namespace: &str, sets: &[&str]) -> Result<Vec<serde_json::Value>, String> {
    let chart = chart();
    let mut args = vec!["template", release, chart.to_str().unwrap(), "--namespace", namespace, "--include-crds"];
    for set in sets {
        args.extend(["--set", set]);
    }
    let (ok, out, err) = run(&args);
    if !ok {
        return Err(err);
    }
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&out).map_err(|e| format!("helm's output is not YAML: {e}"))?;
    Ok(docs.into_iter().filter(|d| d.is_object()).collect())
}

/// The rendered object of `kind` named `name`.
pub fn find<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("the chart renders no {kind} {name}"))
}
