//! How Swell is shipped: the Helm chart and the OCI image, each checked with the real tool.
//!
//! The Helm chart (deploy/helm/swell) with a real helm and a real control plane: `helm lint`
//! passes for the default and the optional parts; bad values are refused naming the key; the
//! rendered objects are applied server-side; then `swell` runs out of cluster with exactly the
//! chart's container arguments and environment, authenticated as the chart's ServiceAccount
//! (a TokenRequest token), and scales a Deployment through its HPA, the aggregator checking the
//! metrics API's certificate against the chart's caBundle.
//!
//! The OCI image (deploy/image/build.sh, Debian's umoci, no Docker daemon): built from this
//! build's `swell` and site, inspected with skopeo (non-root user, entrypoint, command, ports,
//! environment), then unpacked and started as a container runtime would: `swell demo` with the
//! image's environment, inside its root filesystem (chroot), as its user, in its working
//! folder; it must answer /readyz and serve the site. The Dockerfile declares the same.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{KEY, Serve, free_port, get, run, swell};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use testenv::helm;
use testenv::k8s::{MetricEndpoint, apply_all, create_yaml, deployment, eventually, namespace, replicas};

const WAIT: Duration = Duration::from_secs(90);

#[test]
fn the_chart_lints_and_refuses_bad_values_by_name() {
    let chart = helm::chart();
    let chart = chart.to_str().unwrap();
    for sets in [&[][..], &["metricsApi.certManager.enabled=true", "serviceMonitor.enabled=true", "rbac.secretNamespaces={shop,web}"][..]] {
        let mut args = vec!["lint", "--strict", chart];
        for s in sets {
            args.extend(["--set", s]);
        }
        let (ok, out, err) = helm::run(&args);
        assert!(ok && out.contains("0 chart(s) failed"), "helm lint {sets:?}: {out}{err}");
    }
    for (set, says) in [
        ("replicaCont=3", "additional properties 'replicaCont' not allowed"),
        ("service.port=abc", "/service/port"),
        ("cluster.name=no_underscores", "/cluster/name"),
        ("leaderElection.enabled=false", "leaderElection.enabled: must be true when replicaCount > 1"),
        ("database.existingSecret=", "/database/existingSecret"),
    ] {
        let err = helm::template("swell", "swell", &[set]).expect_err(set);
        assert!(err.contains(says), "--set {set}: {err}");
    }

    // The optional parts: cert-manager issues the certificate and injects the CA; a
    // ServiceMonitor; Secrets readable in the listed namespaces only.
    let docs = helm::template("swell", "swell", &["metricsApi.certManager.enabled=true", "serviceMonitor.enabled=true", "rbac.secretNamespaces={shop}"]).unwrap();
    let cert = helm::find(&docs, "Certificate", "swell-metrics-tls");
    assert_eq!(cert["spec"]["dnsNames"][0], "swell-metrics.swell.svc");
    assert_eq!(cert["spec"]["issuerRef"]["name"], helm::find(&docs, "Issuer", "swell-selfsigned")["metadata"]["name"]);
    let apiservice = helm::find(&docs, "APIService", "v1beta1.external.metrics.k8s.io");
    assert_eq!(apiservice["metadata"]["annotations"]["cert-manager.io/inject-ca-from"], "swell/swell-metrics-tls");
    assert!(apiservice["spec"]["caBundle"].is_null() && !docs.iter().any(|d| d["kind"] == "Secret"), "cert-manager's CA only");
    assert_eq!(helm::find(&docs, "ServiceMonitor", "swell")["spec"]["endpoints"][0]["path"], "/metrics");
    let bound: Vec<_> = docs.iter().filter(|d| d["metadata"]["name"] == "swell-secrets-reader" && d["kind"] == "RoleBinding").map(|d| d["metadata"]["namespace"].clone()).collect();
    assert_eq!(bound, vec![json!("swell"), json!("shop")]);
    // One pod: no disruption budget, leader election may be off.
    let single = helm::template("swell", "swell", &["replicaCount=1", "leaderElection.enabled=false"]).unwrap();
    assert!(!single.iter().any(|d| d["kind"] == "PodDisruptionBudget"));
}

#[test]
fn the_default_rendering_is_locked_down() {
    let docs = helm::template("swell", "swell", &[]).unwrap();
    let crds: Vec<_> = docs.iter().filter(|d| d["kind"] == "CustomResourceDefinition").map(|d| d["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(crds.len(), 4, "{crds:?}");
    let deploy = helm::find(&docs, "Deployment", "swell");
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["serviceAccountName"], "swell");
    let containers = pod["containers"].as_array().unwrap().iter().chain(pod["initContainers"].as_array().unwrap());
    for c in containers {
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{}", c["name"]);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false, "{}", c["name"]);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]), "{}", c["name"]);
        assert!(c["resources"].is_object() || c["name"] == "register-cluster");
    }
    let swell = &pod["containers"][0];
    assert_eq!(swell["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(swell["readinessProbe"]["httpGet"]["path"], "/readyz");
    let env = &swell["env"];
    let var = |name: &str| env.as_array().unwrap().iter().find(|e| e["name"] == name).cloned().unwrap_or(Value::Null);
    assert_eq!(var("SWELL_LEADER_ELECTION")["value"], "true");
    assert_eq!(var("SWELL_DATABASE_URL")["valueFrom"]["secretKeyRef"], json!({"name": "swell-database", "key": "url"}));
    assert_eq!(var("SWELL_SECRET_KEY")["valueFrom"]["secretKeyRef"], json!({"name": "swell-secret-key", "key": "key"}));
    assert_eq!(helm::find(&docs, "PodDisruptionBudget", "swell")["spec"]["minAvailable"], 1);
    let policy = helm::find(&docs, "NetworkPolicy", "swell");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    let apiservice = helm::find(&docs, "APIService", "v1beta1.external.metrics.k8s.io");
    assert!(apiservice["spec"]["insecureSkipTLSVerify"].is_null() && apiservice["spec"]["caBundle"].is_string(), "{apiservice:#}");
}

/// A container's environment with `valueFrom` resolved as the kubelet would: Secret keys read
/// from the cluster, `metadata.name` as `pod`.
async fn resolve_env(client: &kube::Client, namespace: &str, container: &Value, pod: &str) -> BTreeMap<String, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut env = BTreeMap::new();
    for e in container["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap().to_string();
        let value = if let Some(v) = e["value"].as_str() {
            v.to_string()
        } else if let Some(r) = e["valueFrom"].get("secretKeyRef") {
            let secret = secrets.get(r["name"].as_str().unwrap()).await.unwrap_or_else(|e| panic!("Secret {r}: {e}"));
            String::from_utf8(secret.data.unwrap()[r["key"].as_str().unwrap()].0.clone()).unwrap()
        } else {
            assert_eq!(e["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name", "{e}");
            pod.to_string()
        };
        env.insert(name, value);
    }
    env
}

fn args(container: &Value) -> Vec<String> {
    container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_from_the_chart_swell_scales_a_deployment_as_its_service_account() {
    let cp = testenv::ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    namespace(&client, "swell").await;
    namespace(&client, "shop").await;
    let dir = tempfile::tempdir().unwrap();
    // What the chart's NOTES tell an operator to create first.
    let db = format!("sqlite://{}/swell.db", dir.path().display());
    create_yaml(
        &client,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: swell-database, namespace: swell}}\nstringData: {{url: \"{db}\"}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: swell-secret-key, namespace: swell}}\nstringData: {{key: \"{KEY}\"}}\n"
        ),
    )
    .await;
    let docs = helm::template("swell", "swell", &["rbac.secretNamespaces={shop}"]).unwrap();
    apply_all(&client, &docs, "helm-test").await;

    // Swell as the chart's ServiceAccount: a token from the TokenRequest API, not the admin's.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "swell");
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}})).unwrap();
    let token = sas.create_token_request("swell", &PostParams::default(), &request).await.unwrap().status.unwrap().token.expect("a token");
    let admin_config = cp.kubeconfig();
    let server = admin_config.split("server: \"").nth(1).unwrap().split('"').next().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{server}\", insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: swell, user: {{token: \"{token}\"}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: swell}}}}]\ncurrent-context: c\n"
        ),
    )
    .unwrap();

    let pod = &helm::find(&docs, "Deployment", "swell")["spec"]["template"]["spec"];
    // The init container, out of cluster: `--in-cluster` becomes this kubeconfig.
    let init = &pod["initContainers"][0];
    let init_args = args(init);
    assert_eq!(init_args, ["cluster", "add", "home", "--in-cluster", "--tenant", "default"]);
    let init_args: Vec<String> = init_args.into_iter().map(|a| if a == "--in-cluster" { "--kubeconfig".into() } else { a }).collect();
    let (code, err) = run(swell(dir.path()).args(&init_args[..4]).arg(&kubeconfig).args(&init_args[4..]).envs(resolve_env(&client, "swell", init, "swell-0").await));
    assert_eq!(code, 0, "{err}");
    // Running it again (every pod start does) changes nothing.
    let (code, err) = run(swell(dir.path()).args(&init_args[..4]).arg(&kubeconfig).args(&init_args[4..]).envs(resolve_env(&client, "swell", init, "swell-0").await));
    assert_eq!(code, 0, "{err}");

    // The main container with the chart's environment; only the addresses (loopback, free
    // ports) and the mounted certificate's path differ.
    let container = &pod["containers"][0];
    let mut env = resolve_env(&client, "swell", container, "swell-0").await;
    let tls: Secret = Api::namespaced(client.clone(), "swell").get("swell-metrics-tls").await.unwrap();
    let tls = tls.data.unwrap();
    for file in ["tls.crt", "tls.key"] {
        std::fs::write(dir.path().join(file), &tls[file].0).unwrap();
    }
    let (port, api_port) = (free_port(), free_port());
    for (key, value) in [
        ("SWELL_BIND", format!("127.0.0.1:{port}")),
        ("SWELL_METRICS_API_BIND", format!("127.0.0.1:{api_port}")),
        ("SWELL_METRICS_API_TLS_CERT", dir.path().join("tls.crt").display().to_string()),
        ("SWELL_METRICS_API_TLS_KEY", dir.path().join("tls.key").display().to_string()),
    ] {
        assert!(env.insert(key.into(), value).is_some(), "the chart sets {key}");
    }
    env.insert("SWELL_LOG".into(), "warn".into());
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let _serve = Serve(swell(dir.path()).args(args(container)).envs(&env).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap());
    let serve_log = || std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    eventually("swell serve ready", WAIT, || async { get(port, "/readyz").filter(|(code, _)| *code == 200).map(|_| ()) }).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "swell");
    eventually("the chart's lease held by swell-0", WAIT, || async {
        (leases.get_opt("swell-leader").await.ok()??.spec?.holder_identity.as_deref() == Some("swell-0")).then_some(())
    })
    .await;

    // The aggregator reaches Swell on loopback (no kubelet runs pods here): the chart's Service
    // becomes an ExternalName; the APIService keeps the chart's caBundle, so the certificate
    // the chart made is checked against it, for the Service's DNS name.
    let services: Api<Service> = Api::namespaced(client.clone(), "swell");
    services.delete("swell-metrics", &DeleteParams::default()).await.unwrap();
    eventually("the chart's metrics Service gone", WAIT, || async { services.get_opt("swell-metrics").await.ok()?.is_none().then_some(()) }).await;
    create_yaml(&client, &format!("apiVersion: v1\nkind: Service\nmetadata: {{name: swell-metrics, namespace: swell}}\nspec: {{type: ExternalName, externalName: 127.0.0.1, ports: [{{name: https, port: {api_port}}}]}}\n")).await;
    let mut apiservice = helm::find(&docs, "APIService", "v1beta1.external.metrics.k8s.io").clone();
    apiservice["spec"]["service"]["port"] = json!(api_port);
    apply_all(&client, &[apiservice], "helm-test").await;

    // A Deployment scaled 0 → 1 by Swell, then 1 → 3 by the HPA reading Swell's metric.
    deployment(&client, "shop", "web", 0).await;
    let metric = MetricEndpoint::start(25).await;
    create_yaml(
        &client,
        &format!(
            "apiVersion: swell.dev/v1alpha1\nkind: ScaledObject\nmetadata: {{name: web, namespace: shop}}\n\
             spec:\n  scaleTargetRef: {{name: web}}\n  pollingInterval: 1\n  minReplicaCount: 0\n  maxReplicaCount: 10\n\
             \x20 triggers:\n  - type: metrics-api\n    metadata: {{url: \"{}\", valueLocation: value, targetValue: \"10\"}}\n",
            metric.url
        ),
    )
    .await;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "shop");
    let reached = tokio::time::timeout(WAIT, async {
        loop {
            if replicas(&client, "shop", "web").await == 3 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    if reached.is_err() {
        let hpa = hpas.get_opt("swell-hpa-web").await.ok().flatten();
        panic!("web did not reach 3 through the HPA; HPA: {:#?}\nswell's log:\n{}", hpa.and_then(|h| h.status), serve_log());
    }
    assert!(!serve_log().contains("ERROR"), "{}", serve_log());
}

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
