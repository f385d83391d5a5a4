//! The client commands (`swell login`, `get`, `describe`, `apply`, `delete`, `override`,
//! `pause`, `resume`, `models`, `context`, `watch`, `import-keda`) end to end against a running `swell demo`, through
//! the server functions over HTTP: outputs parsed back, exit codes (0 ok, 1 error, 2 usage,
//! 3 not found, 4 refused), the config file's permissions.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, get, swell, token};

struct Running(std::process::Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A client command with its own config folder; `input` goes to its stdin.
fn cli(dir: &Path, args: &[&str], input: &str) -> (i32, String, String) {
    let mut cmd: Command = swell(dir);
    cmd.env("XDG_CONFIG_HOME", dir.join("cfg")).env("NO_COLOR", "1").args(args);
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("swell runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = cli(dir, args, "");
    assert_eq!(code, 0, "swell {args:?}: {err}");
    out
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = ok(dir, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("swell {args:?} -o json: {e}: {out}"))
}

const MANIFEST: &str = "\
apiVersion: swell.dev/v1alpha1
kind: ScaledObject
metadata:
  name: cli-made
  namespace: shop
  annotations:
    swell.dev/cluster: simulated
spec:
  scaleTargetRef:
    name: playground
  minReplicaCount: 1
  maxReplicaCount: 4
  pollingInterval: 1
  triggers:
    - type: simulated
      metadata:
        workload: web-requests
        target: \"50\"
";

#[test]
fn the_cli_drives_a_running_swell_through_the_server_functions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = format!("sqlite://{}/data/swell.db", d.display());
    for t in ["demo", "b"] {
        let (code, err) = common::run(swell(d).args(["tenant", "add", t, "--database-url", &db]));
        assert_eq!(code, 0, "{err}");
    }
    let operator = token(d, &db, "demo", "cli-operator", "operator");
    let viewer = token(d, &db, "demo", "cli-viewer", "viewer");
    let port = free_port();
    let _demo = Running(
        swell(d)
            .args(["demo", "--bind", &format!("127.0.0.1:{port}"), "--log", "warn"])
            .env("SWELL_SECRET_KEY", common::KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(port, "/readyz").is_none_or(|(code, _)| code != 200) {
        assert!(Instant::now() < deadline, "swell demo did not get ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("http://127.0.0.1:{port}");

    // login: the token from stdin, checked against the server, kept 0600.
    let (code, _, err) = cli(d, &["login", &url, "--token-stdin", "--context", "viewer"], &viewer);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(d, &["login", &url, "--token-stdin", "--context", "op"], &format!("{operator}\n"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("as tenant demo"), "{out}");
    let file = d.join("cfg/swell/config.toml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let contexts = json(d, &["context", "list", "-o", "json"]);
    let names: Vec<(&str, bool)> = contexts.as_array().unwrap().iter().map(|c| (c["name"].as_str().unwrap(), c["current"].as_bool().unwrap())).collect();
    assert_eq!(names, [("op", true), ("viewer", false)]);
    assert!(!serde_json::to_string(&contexts).unwrap().contains(&operator), "context list shows no token");
    let (code, _, err) = cli(d, &["login", &url, "--token-stdin"], "swell_not-a-token");
    assert_eq!(code, 4, "a bad token is refused: {err}");
    let (code, _, err) = cli(d, &["login", "127.0.0.1:1", "--token-stdin"], &operator);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("URL"), "{err}");

    // get so in every format, parsed back.
    let objects = json(d, &["get", "so", "-o", "json"]);
    let names: Vec<&str> = objects.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    for want in ["web-frontend", "catalog-api", "orders-worker"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let yaml: serde_json::Value = serde_saphyr::from_str(&ok(d, &["get", "so", "-o", "yaml"])).unwrap();
    assert_eq!(yaml.as_array().unwrap().len(), objects.as_array().unwrap().len());
    let table = ok(d, &["get", "so"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&header[..3], ["NAMESPACE", "NAME", "TARGET"], "{table}");
    assert!(lines.any(|l| l.split_whitespace().take(2).eq(["shop", "orders-worker"])), "{table}");
    assert!(ok(d, &["get", "so", "-o", "wide"]).lines().next().unwrap().contains("ORIGIN"));
    for kind in ["sj", "clusters", "models"] {
        assert!(json(d, &["get", kind, "-o", "json"]).is_array(), "{kind}");
    }
    assert!(json(d, &["get", "sources", "-o", "json"])["webhooks"].is_array());
    assert!(json(d, &["get", "clusters", "-o", "json"]).as_array().unwrap().iter().any(|c| c["name"] == "simulated"));

    // describe: text and JSON; the decisions come with their explanations.
    let deadline = Instant::now() + Duration::from_secs(30);
    let detail = loop {
        let detail = json(d, &["describe", "so", "shop/web-frontend", "-o", "json"]);
        if !detail["decisions"].as_array().unwrap().is_empty() || Instant::now() > deadline {
            break detail;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(detail["object"]["name"], "web-frontend");
    assert!(detail["decisions"][0]["explanation"].as_str().is_some_and(|e| !e.is_empty()), "{detail}");
    let text = ok(d, &["describe", "so", "web-frontend"]);
    assert!(text.contains("Namespace:") && text.contains("Triggers:") && text.contains("Decisions (newest first):"), "{text}");
    let decisions = json(d, &["get", "decisions", "web-frontend", "-o", "json"]);
    assert!(!decisions.as_array().unwrap().is_empty());

    // override, seen by the next read; a viewer is refused with exit 4; clear.
    ok(d, &["override", "set", "orders-worker", "3", "--reason", "cli test", "--for", "30m"]);
    let o = json(d, &["describe", "so", "orders-worker", "-o", "json"]);
    let held = o["object"]["override_"].as_str().unwrap_or_default();
    assert!(held.starts_with("replicas fixed at 3 by token:cli-operator until ") && held.ends_with(": cli test"), "{o}");
    let (code, _, err) = cli(d, &["override", "set", "orders-worker", "2", "--reason", "x", "--context", "viewer"], "");
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("refused"), "{err}");
    ok(d, &["override", "clear", "orders-worker"]);
    assert!(json(d, &["describe", "so", "orders-worker", "-o", "json"])["object"]["override_"].is_null());
    ok(d, &["pause", "orders-worker", "--reason", "maintenance"]);
    assert!(json(d, &["describe", "so", "orders-worker", "-o", "json"])["object"]["override_"].as_str().is_some_and(|s| s.starts_with("paused by token:cli-operator")));
    ok(d, &["resume", "orders-worker"]);

    // models train --wait: the new version and its verdict; an object without a forecast is
    // a usage error.
    let (code, out, err) = cli(d, &["models", "train", "web-frontend", "--wait", "--timeout", "3m"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("scaledobject shop/web-frontend: model version ") && out.contains("MAE"), "{out}");
    let (code, _, err) = cli(d, &["models", "train", "catalog-api", "--wait"], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not predictive"), "{err}");

    // not found, usage, another tenant.
    let (code, _, err) = cli(d, &["describe", "so", "nope"], "");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("swell get so"), "{err}");
    let (code, _, err) = cli(d, &["get", "decisions"], "");
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = cli(d, &["get", "pods"], "");
    assert_eq!(code, 2);
    let (code, _, err) = cli(d, &["get", "so", "--tenant", "b"], "");
    assert_eq!(code, 4, "another tenant's objects are refused: {err}");
    let (code, _, err) = cli(d, &["get", "so", "--context", "nowhere"], "");
    assert_eq!(code, 3, "{err}");

    // apply: a file with anything but ScaledObjects applies nothing; a good one is made,
    // then deleted.
    let manifest = d.join("so.yaml");
    std::fs::write(&manifest, format!("{MANIFEST}---\napiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata:\n  name: x\n")).unwrap();
    let (code, _, err) = cli(d, &["apply", "-f", manifest.to_str().unwrap()], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("document 2") && err.contains("nothing was applied"), "{err}");
    assert!(!ok(d, &["get", "so"]).contains("cli-made"));
    let (code, out, err) = cli(d, &["apply", "-f", "-"], &MANIFEST.replace("maxReplicaCount: 4", "maxReplicaCount: ten"));
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("spec.maxReplicaCount"), "the field is named: {err}");
    let (code, out, err) = cli(d, &["apply", "-f", "-"], MANIFEST);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("scaledobject shop/cli-made applied"), "{out}");
    assert!(ok(d, &["get", "so"]).contains("cli-made"));

    // watch: the object's changes as JSON lines, until it is deleted (then exit 0).
    let mut watch = swell(d)
        .env("XDG_CONFIG_HOME", d.join("cfg"))
        .args(["watch", "so", "shop/cli-made", "-o", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(watch.stdout.take().unwrap()));
    let first: serde_json::Value = serde_json::from_str(&lines.next().expect("a first line").unwrap()).unwrap();
    assert_eq!(first["object"]["name"], "cli-made", "{first}");
    ok(d, &["delete", "so", "shop/cli-made"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "watch did not end when the object was deleted");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut watch.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success() && err.contains("scaledobject shop/cli-made was deleted"), "{status} {err}");
    assert!(!ok(d, &["get", "so"]).contains("cli-made"));
    let (code, _, err) = cli(d, &["watch", "so", "nope"], "");
    assert_eq!(code, 3, "{err}");

    // A KEDA manifest is translated on the fly; one with a field Swell cannot take applies
    // nothing and names it.
    let keda = MANIFEST.replace("swell.dev/v1alpha1", "keda.sh/v1alpha1").replace("cli-made", "from-keda");
    let (code, out, err) = cli(d, &["apply", "-f", "-"], &keda);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("scaledobject shop/from-keda applied"), "{out}");
    ok(d, &["delete", "so", "shop/from-keda"]);
    let (code, _, err) = cli(d, &["apply", "-f", "-"], &keda.replace("type: simulated", "type: azure-queue"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("spec.triggers[0].type") && err.contains("azure-queue") && err.contains("nothing was applied"), "{err}");

    // a server that is not there: exit 1 naming the URL.
    drop(_demo);
    let (code, _, err) = cli(d, &["get", "so"], "");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("cannot reach Swell at {url}")), "{err}");
}

/// `swell import-keda` on a folder: Swell's manifests written, every field reported; a field
/// Swell cannot take is reported with the reason (and `--strict` fails on it).
#[test]
fn import_keda_writes_swells_manifests_and_reports_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("keda");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(
        input.join("app.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: rmq}\nstringData: {host: amqp://x}\n---\n\
         apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: rmq, namespace: shop}\nspec:\n  secretTargetRef: [{parameter: host, name: rmq, key: host}]\n  hashiCorpVault: {address: https://vault, authentication: token, secrets: []}\n---\n\
         apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: orders, namespace: shop}\nspec:\n  scaleTargetRef: {name: orders}\n  cooldownPeriod: 60\n  triggers:\n  - type: rabbitmq\n    metadata: {queueName: orders, mode: QueueLength, value: \"20\"}\n    authenticationRef: {name: rmq}\n",
    )
    .unwrap();
    let out = d.join("swell");
    let (code, stdout, err) = cli(d, &["import-keda", input.to_str().unwrap(), "--out", out.to_str().unwrap()], "");
    assert_eq!(code, 0, "{err}");
    assert!(stdout.is_empty(), "the manifests went to --out: {stdout}");
    let so: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(out.join("scaledobject-shop-orders.yaml")).unwrap()).unwrap();
    assert_eq!(so["apiVersion"], "swell.dev/v1alpha1");
    assert_eq!(so["spec"]["triggers"][0]["metadata"]["queueName"], "orders");
    let ta: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(out.join("triggerauthentication-shop-rmq.yaml")).unwrap()).unwrap();
    assert!(ta["spec"].get("hashiCorpVault").is_none() && ta["spec"]["secretTargetRef"][0]["key"] == "host", "{ta}");
    assert!(err.contains("ScaledObject shop/orders:") && err.contains("nothing lost"), "{err}");
    assert!(err.contains("spec.hashiCorpVault") && err.contains("dropped") && err.contains("no such field"), "{err}");
    // The report as JSON, every field; --strict fails on the dropped one.
    let (code, _, err) = cli(d, &["import-keda", input.to_str().unwrap(), "--all", "-o", "json", "--strict"], "");
    assert_eq!(code, 1, "{err}");
    let report: serde_json::Value = serde_json::from_str(err.trim_end().rsplit_once("\nswell:").map_or(err.as_str(), |(r, _)| r)).unwrap_or_else(|e| panic!("{e}: {err}"));
    let orders = report.as_array().unwrap().iter().find(|o| o["object"] == "shop/orders" && o["kind"] == "ScaledObject").unwrap();
    assert!(orders["fields"].as_array().unwrap().iter().any(|f| f["path"] == "spec.cooldownPeriod" && f["outcome"] == "kept"), "{orders}");
    // Not KEDA's: a usage error naming the field.
    let (code, _, err) = cli(d, &["import-keda", "-"], "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {namespace: x}\nspec: {}\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("metadata.name"), "{err}");
}
