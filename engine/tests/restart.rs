//! State that survives a restart and a failover, on a real control plane with one SQL
//! database shared by the instances (as in a real install). Each instance has its own
//! runtime, so one can be killed mid-flight without a chance to clean up.
//!
//! - Killed mid-cooldown, a restarted Swell keeps the target up until cooldownPeriod has
//!   passed since the last active poll (KEDA keeps `status.lastActiveTime`), then goes to 0.
//! - An override set through a follower takes effect on the leader within a polling interval.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{MetricEndpoint, deployment, eventually, install_swell_crds, namespace, replicas};
use engine::actuate::{Fence, KubeCluster};
use engine::spec::ScaledObject;
use engine::{Engine, EngineOptions, OverrideInput, store, sync};
use kube::api::{Api, PostParams};
use testenv::ControlPlane;
use tokio::runtime::Runtime;
use tokio::sync::watch;

const COOLDOWN: u64 = 20;

/// A folder for the shared database file, removed at the end.
struct TempDir(std::path::PathBuf);
impl TempDir {
    fn new() -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("swell-restart-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Instance {
    rt: Option<Runtime>,
    engine: Engine,
    _stop: watch::Sender<bool>,
}

impl Instance {
    fn start(kubeconfig: &str, db_url: &str, fence: Fence) -> Instance {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (stop, rx) = watch::channel(false);
        let (kubeconfig, db_url) = (kubeconfig.to_string(), db_url.to_string());
        let engine = rt.block_on(async move {
            let client = sync::client_from_kubeconfig(&kubeconfig).await.unwrap();
            let db = store::connect(&db_url).await.unwrap();
            store::migrate(&db).await.unwrap();
            let engine = Engine::new(db, EngineOptions { tick: Duration::from_millis(200), ..Default::default() }).await.unwrap();
            engine.spawn(rx.clone());
            let cluster = Arc::new(KubeCluster::new("east", client, fence));
            tokio::spawn(sync::run(engine.clone(), cluster, "team".into(), Duration::from_millis(300), rx));
            engine
        });
        Instance { rt: Some(rt), engine, _stop: stop }
    }

    /// The process dies: every task stops where it is.
    fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.as_ref().expect("running").block_on(f)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn scaled_object(metric_url: &str) -> ScaledObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"name": "web"}, "actuation": "direct", "pollingInterval": 1, "cooldownPeriod": COOLDOWN,
                 "minReplicaCount": 0, "maxReplicaCount": 5,
                 "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}},
                 "triggers": [{"type": "metrics-api", "metadata": {"url": metric_url, "valueLocation": "value", "targetValue": "10"}}]}
    }))
    .unwrap()
}

/// A control plane with Swell's CRDs, namespace `shop` with Deployment `web` at 0, and a
/// database file for the instances to share.
struct World {
    main: Runtime,
    cp: ControlPlane,
    client: kube::Client,
    _dir: TempDir,
    db_url: String,
}

impl World {
    fn start() -> World {
        let main = Runtime::new().unwrap();
        let cp = ControlPlane::start().expect("control plane starts");
        let dir = TempDir::new();
        let db_url = format!("sqlite://{}/swell.db", dir.0.display());
        let client = main.block_on(async {
            let client = cp.client().await;
            install_swell_crds(&client).await;
            namespace(&client, "shop").await;
            deployment(&client, "shop", "web", 0).await;
            client
        });
        World { main, cp, client, _dir: dir, db_url }
    }

    fn instance(&self, fence: Fence) -> Instance {
        Instance::start(&self.cp.kubeconfig(), &self.db_url, fence)
    }
}

#[test]
fn a_restart_mid_cooldown_keeps_the_target_up_until_the_cooldown_ends() {
    let w = World::start();
    let (main, client) = (&w.main, &w.client);
    let metric = main.block_on(MetricEndpoint::start(20));
    let mut first = w.instance(Fence::always());
    main.block_on(async {
        Api::<ScaledObject>::namespaced(client.clone(), "shop").create(&PostParams::default(), &scaled_object(&metric.url)).await.unwrap();
        eventually("web scaled to 2", Duration::from_secs(30), || async { (replicas(&client, "shop", "web").await == 2).then_some(()) }).await;
    });
    // The source goes quiet: cooldown starts with the first inactive poll.
    metric.set(0);
    let inactive = Instant::now();
    let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
    main.block_on(eventually("status says cooling down", Duration::from_secs(10), || async {
        let s = api.get("web").await.ok()?.status?;
        s.conditions.iter().any(|c| c.type_ == "Active" && c.reason == "ScalerCooldown").then_some(())
    }));
    let status = main.block_on(api.get("web")).unwrap().status.unwrap();
    assert!(status.last_active_time.is_some(), "status.lastActiveTime is written: {status:?}");
    // Give the batched writer its second, then kill Swell mid-cooldown.
    std::thread::sleep(Duration::from_millis(2500));
    first.kill();
    let second = w.instance(Fence::always());
    // Until the cooldown has run out the target stays up (the HPA rules may take it down to
    // its floor of 1 meanwhile, as the HPA would; never to zero)...
    let hold_until = inactive + Duration::from_secs(COOLDOWN) - Duration::from_secs(3);
    let mut polls = 0;
    while Instant::now() < hold_until {
        let r = main.block_on(replicas(&client, "shop", "web"));
        assert!(r >= 1, "after the restart web went to {r} {} s into a {COOLDOWN} s cooldown", inactive.elapsed().as_secs());
        polls += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(polls > 20, "watched the target through the cooldown");
    // ...and then goes to zero.
    main.block_on(eventually("web back to 0 after the cooldown", Duration::from_secs(20), || async {
        (replicas(&client, "shop", "web").await == 0).then_some(())
    }));
    let took = inactive.elapsed();
    assert!(took >= Duration::from_secs(COOLDOWN) - Duration::from_secs(2), "zero after {} s, before the {COOLDOWN} s cooldown", took.as_secs());
    // The engine publishes its view just after it actuates, so give it a tick to catch up.
    let view = main.block_on(eventually("the restarted engine explains the zero", Duration::from_secs(5), || async {
        second.engine.find("east", "shop", "web").filter(|v| v.last_rule.as_deref() == Some("scale_to_zero"))
    }));
    assert_eq!(view.desired_replicas, Some(0), "{view:?}");
}

#[test]
fn an_override_set_through_a_follower_reaches_the_leader() {
    let w = World::start();
    let (main, client) = (&w.main, &w.client);
    let metric = main.block_on(MetricEndpoint::start(20));
    let leader = w.instance(Fence::always());
    // The follower never holds the fence: it serves pages and the API, writes nothing to the cluster.
    let follower = w.instance(Fence::elected());
    main.block_on(async {
        Api::<ScaledObject>::namespaced(client.clone(), "shop").create(&PostParams::default(), &scaled_object(&metric.url)).await.unwrap();
        eventually("web scaled to 2", Duration::from_secs(30), || async { (replicas(&client, "shop", "web").await == 2).then_some(()) }).await;
    });
    let id = follower.block_on(eventually("the follower knows web", Duration::from_secs(10), || async { follower.engine.find("east", "shop", "web") })).id;
    follower.block_on(follower.engine.set_override("team", id, OverrideInput::Replicas(4), "load test", "alice", None)).unwrap();
    let set = Instant::now();
    main.block_on(eventually("the leader applies the follower's override", Duration::from_secs(10), || async {
        (replicas(&client, "shop", "web").await == 4).then_some(())
    }));
    assert!(set.elapsed() < Duration::from_secs(3), "took {} ms (polling interval 1 s)", set.elapsed().as_millis());
    // The view is published just after the actuation.
    main.block_on(eventually("the leader's view names alice's override", Duration::from_secs(5), || async {
        leader.engine.find("east", "shop", "web").filter(|v| v.override_.as_deref().is_some_and(|o| o.contains("alice")))
    }));
    follower.block_on(follower.engine.clear_override("team", id, "done", "alice")).unwrap();
    main.block_on(eventually("the leader drops the cleared override", Duration::from_secs(10), || async {
        (replicas(&client, "shop", "web").await == 2).then_some(())
    }));
}

/// A webhook push that reaches a follower (every instance serves the hooks) still drives the
/// leader's decision: the follower relays it through SQL.
#[test]
fn a_webhook_push_received_by_a_follower_reaches_the_leaders_decision() {
    let w = World::start();
    let (main, client) = (&w.main, &w.client);
    let _leader = w.instance(Fence::always());
    let follower = w.instance(Fence::elected());
    let so: ScaledObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"name": "web"}, "actuation": "direct", "pollingInterval": 60, "minReplicaCount": 0, "maxReplicaCount": 10,
                 "triggers": [{"type": "webhook", "metadata": {"source": "orders", "targetValue": "10"}}]}
    }))
    .unwrap();
    main.block_on(async {
        Api::<ScaledObject>::namespaced(client.clone(), "shop").create(&PostParams::default(), &so).await.unwrap();
    });
    follower.block_on(eventually("the follower knows web", Duration::from_secs(10), || async { follower.engine.find("east", "shop", "web") }));
    // Let the leader's first (60 s interval) poll pass: from now on only a push moves it.
    std::thread::sleep(Duration::from_secs(2));
    let pushed = Instant::now();
    follower.block_on(async { follower.engine.push("team", "orders", engine::push::PushUpdate::Set(45.0)) });
    main.block_on(eventually("the leader scaled web from the follower's push", Duration::from_secs(15), || async {
        (replicas(&client, "shop", "web").await == 5).then_some(())
    }));
    let took = pushed.elapsed();
    eprintln!("push through the follower to the leader's scale write: {} ms", took.as_millis());
    assert!(took < Duration::from_secs(5), "took {} ms with a 60 s polling interval", took.as_millis());
}
