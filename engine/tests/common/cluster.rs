//! A running engine on SQLite in memory, synced with real clusters (engine tests only).

use std::sync::Arc;
use std::time::Duration;

use engine::actuate::{Fence, KubeCluster};
use engine::{Engine, EngineOptions, store, sync};
use kube::Client;
use tokio::sync::watch;

pub use testenv::k8s::*;

/// Swell's CRDs, installed and established.
pub async fn install_swell_crds(client: &Client) {
    install_crds(client, engine::crd::all()).await;
}

/// A running engine on SQLite in memory, syncing the given clusters (tenant `team`).
pub struct Running {
    pub engine: Engine,
    stop: watch::Sender<bool>,
}

impl Running {
    pub async fn start(clusters: Vec<(&str, Client, Fence)>) -> Running {
        let db = store::connect("sqlite::memory:").await.unwrap();
        store::migrate(&db).await.unwrap();
        let opts = EngineOptions { tick: Duration::from_millis(200), ..Default::default() };
        let engine = Engine::new(db, opts).await.unwrap();
        let (stop, rx) = watch::channel(false);
        engine.spawn(rx.clone());
        for (name, client, fence) in clusters {
            let cluster = Arc::new(KubeCluster::new(name, client, fence));
            let sync = sync::run(engine.clone(), cluster, "team".into(), Duration::from_millis(300), rx.clone());
            tokio::spawn(async move { sync.await.expect("cluster sync runs") });
        }
        Running { engine, stop }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

