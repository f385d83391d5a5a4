//! Real clusters: `swell cluster add|list`, and at start-up one sync (CRD watcher, status
//! writer) per registered cluster, plus leader election when configured.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use engine::actuate::{Fence, KubeCluster};
use engine::crypto::Sealer;
use engine::lease::{self, LeaseSettings};
use engine::{Engine, store, sync};
use tokio::sync::watch;

use crate::config::Config;

fn sealer(config: &Config) -> Result<Sealer, String> {
    config.require_sealer("kubeconfigs")
}

fn purpose(name: &str) -> String {
    engine::crypto::purpose::cluster(name)
}

/// `swell cluster add`: stores a kubeconfig sealed (or marks the cluster in-cluster).
pub async fn add(engine_db: &engine::DatabaseConnection, config: &Config, name: &str, kubeconfig: Option<&std::path::Path>, tenant: &str) -> anyhow::Result<Result<(), String>> {
    if name.trim().is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Ok(Err(format!("cluster name {name:?} must be letters, digits and dashes")));
    }
    let (kind, sealed) = match kubeconfig {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => return Ok(Err(format!("--kubeconfig {}: {e}", path.display()))),
            };
            if let Err(e) = kube::config::Kubeconfig::from_yaml(&text) {
                return Ok(Err(format!("--kubeconfig {}: not a kubeconfig ({e})", path.display())));
            }
            let sealer = match sealer(config) {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            ("kubeconfig", Some(sealer.seal(&purpose(name), text.as_bytes())?))
        }
        None => ("in-cluster", None),
    };
    let tenant = store::ensure_tenant(engine_db, tenant, tenant).await?;
    store::register_cluster(engine_db, name, kind, sealed, tenant.id).await?;
    println!("cluster {name} registered ({kind}{}), objects go to tenant {}", if kind == "kubeconfig" { ", kubeconfig sealed" } else { "" }, tenant.slug);
    Ok(Ok(()))
}

pub async fn list(db: &engine::DatabaseConnection) -> anyhow::Result<()> {
    for c in store::list_clusters(db).await? {
        let tenant = match c.tenant_id {
            Some(id) => store::tenant_slug(db, id).await?.unwrap_or_default(),
            None => String::new(),
        };
        println!("{}\t{}\t{}", c.name, c.kind, tenant);
    }
    Ok(())
}

/// Connects every registered real cluster and starts its sync, and leader election when
/// configured. Returns the clients of the clusters started. A cluster that cannot be reached is
/// logged and retried by its watcher; a kubeconfig that cannot be opened is a start-up error.
pub async fn start(engine: &Engine, config: &Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<Result<Vec<kube::Client>, String>> {
    let rows: Vec<_> = store::list_clusters(engine.db()).await?.into_iter().filter(|c| c.kind == "kubeconfig" || c.kind == "in-cluster").collect();
    if rows.is_empty() {
        engine.metrics().leader.set(1);
        return Ok(Ok(Vec::new()));
    }
    let instance = config.instance.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let mut fences = Vec::new();
    let mut home = None;
    let mut clients = Vec::new();
    for row in &rows {
        let client = match row.kind.as_str() {
            "kubeconfig" => {
                let sealer = match sealer(config) {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(e)),
                };
                let Some(sealed) = &row.kubeconfig_enc else { return Ok(Err(format!("cluster {} has no stored kubeconfig: add it again", row.name))) };
                let text = match sealer.open(&purpose(&row.name), sealed) {
                    Ok(t) => String::from_utf8(t).context("kubeconfig text")?,
                    Err(e) => return Ok(Err(e.to_string())),
                };
                match sync::client_from_kubeconfig(&text).await {
                    Ok(c) => c,
                    Err(e) => return Ok(Err(format!("cluster {}: {e}", row.name))),
                }
            }
            _ => {
                let cfg = match kube::Config::incluster() {
                    Ok(c) => c,
                    Err(e) => return Ok(Err(format!("cluster {} is in-cluster but this is not a pod: {e}", row.name))),
                };
                kube::Client::try_from(cfg).context("in-cluster client")?
            }
        };
        if config.keda_compat {
            match engine::keda::lease::holder(&client).await {
                Ok(None) => {}
                Ok(Some(held)) => return Ok(Err(format!("cluster {}: {held}; stop KEDA's operator (e.g. scale its Deployment to 0) before starting Swell with keda_compat = true", row.name))),
                Err(e) => return Ok(Err(format!("cluster {}: cannot read KEDA's leader lease (keda_compat = true needs to): {e}", row.name))),
            }
        }
        let fence = if config.leader_election { Fence::elected() } else { Fence::always() };
        fences.push(fence.clone());
        home.get_or_insert_with(|| client.clone());
        clients.push(client.clone());
        let cluster = Arc::new(KubeCluster::new(row.name.clone(), client, fence).with_instance(&instance).with_namespace(&config.lease_namespace));
        let tenant = match row.tenant_id {
            Some(id) => store::tenant_slug(engine.db(), id).await?.unwrap_or_else(|| "default".into()),
            None => "default".into(),
        };
        let (engine, rx, name, keda_compat) = (engine.clone(), shutdown.clone(), row.name.clone(), config.keda_compat);
        tokio::spawn(async move {
            let options = sync::SyncOptions { status_every: Duration::from_secs(2), keda_compat };
            if let Err(e) = sync::run_with(engine, cluster, tenant, options, rx).await {
                tracing::error!(cluster = %name, error = %e, "cluster sync stopped");
            }
        });
        tracing::info!(cluster = %row.name, kind = %row.kind, "cluster connected");
    }
    if config.leader_election {
        let settings = LeaseSettings {
            namespace: config.lease_namespace.clone(),
            name: config.lease_name.clone(),
            identity: instance,
            duration: config.lease_duration_secs,
            grace: config.lease_grace_secs,
        };
        if let Err(e) = settings.validate() {
            return Ok(Err(e.to_string()));
        }
        let (engine, client) = (engine.clone(), home.expect("at least one cluster"));
        // A lease task that fails or ends (its manager lost the API server) is started again:
        // an instance must not stay a follower for good because of one bad minute.
        tokio::spawn(async move {
            let mut attempt = 0;
            loop {
                let result = lease::run(client.clone(), settings.clone(), fences.clone(), engine.metrics(), shutdown.clone()).await;
                if *shutdown.borrow() {
                    break;
                }
                attempt += 1;
                match result {
                    Err(e) => tracing::error!(error = %e, attempt, "leader election failed; restarting it"),
                    Ok(()) => tracing::warn!(attempt, "leader election ended; restarting it"),
                }
                tokio::time::sleep(engine::backoff(attempt, Duration::from_secs(1), Duration::from_secs(30))).await;
            }
        });
    } else {
        engine.metrics().leader.set(1);
    }
    Ok(Ok(clients))
}

/// `swell crdgen`: one YAML file per CRD in `dir`; `keda`: the same in KEDA's group.
pub fn crdgen(dir: &std::path::Path, keda: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (crds, how) = if keda { (engine::crd::keda_all(), "swell crdgen --keda") } else { (engine::crd::all(), "swell crdgen") };
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let yaml = serde_saphyr::to_string(&crd).context("CRD to YAML")?;
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, format!("# Generated by `{how}` from engine/src/{{spec,crd}}.rs; do not edit.\n{yaml}"))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
