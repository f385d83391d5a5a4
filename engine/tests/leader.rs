//! Leader election on a real control plane: two Swell instances (each its own runtime, so
//! one can be killed without a chance to release its lease), one Deployment. Only the
//! leader writes; after the leader dies the other takes over within the lease duration, and
//! no two instances ever hold the write fence at once.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{MetricEndpoint, deployment, eventually, install_swell_crds, namespace, replicas};
use engine::actuate::{Fence, KubeCluster};
use engine::lease::{self, LeaseSettings};
use engine::spec::ScaledObject;
use engine::{Engine, EngineOptions, store, sync};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use testenv::ControlPlane;
use tokio::runtime::Runtime;
use tokio::sync::watch;

const DURATION: u64 = 4;
const GRACE: u64 = 1;

struct Instance {
    id: &'static str,
    rt: Option<Runtime>,
    fence: Fence,
    stop: watch::Sender<bool>,
}

impl Instance {
    fn start(id: &'static str, kubeconfig: String) -> Instance {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let fence = Fence::elected();
        let (stop, rx) = watch::channel(false);
        let f = fence.clone();
        rt.block_on(async move {
            let client = sync::client_from_kubeconfig(&kubeconfig).await.unwrap();
            let db = store::connect("sqlite::memory:").await.unwrap();
            store::migrate(&db).await.unwrap();
            let engine = Engine::new(db, EngineOptions { tick: Duration::from_millis(200), ..Default::default() }).await.unwrap();
            engine.spawn(rx.clone());
            let cluster = Arc::new(KubeCluster::new("east", client.clone(), f.clone()).with_instance(id));
            tokio::spawn(sync::run(engine.clone(), cluster, "team".into(), Duration::from_millis(300), rx.clone()));
            let settings = LeaseSettings { namespace: "swell".into(), name: "swell-leader".into(), identity: id.into(), duration: DURATION, grace: GRACE };
            tokio::spawn(async move { lease::run(client, settings, vec![f], engine.metrics(), rx).await.unwrap() });
        });
        Instance { id, rt: Some(rt), fence, stop }
    }

    /// The process dies: every task stops where it is, nothing is released.
    fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Which instance's field manager last wrote `spec.replicas` through the scale subresource.
fn last_scale_writer(d: &Deployment) -> Option<String> {
    d.metadata
        .managed_fields
        .as_ref()?
        .iter()
        .filter(|m| m.subresource.as_deref() == Some("scale"))
        .max_by_key(|m| m.time.as_ref().map(|t| t.0))
        .and_then(|m| m.manager.clone())
}

#[test]
fn a_killed_leader_is_replaced_within_the_lease_duration_and_terms_never_overlap() {
    let main = Runtime::new().unwrap();
    let cp = ControlPlane::start().expect("control plane starts");
    let kubeconfig = cp.kubeconfig();
    let (client, metric) = main.block_on(async {
        let client = cp.client().await;
        install_swell_crds(&client).await;
        namespace(&client, "shop").await;
        namespace(&client, "swell").await;
        deployment(&client, "shop", "web", 0).await;
        (client, MetricEndpoint::start(25).await)
    });

    // Every write to the Deployment's replicas, with its writer, as the API server saw it.
    let writes: Arc<Mutex<Vec<(Instant, i32, String)>>> = Arc::default();
    {
        let (writes, api) = (writes.clone(), Api::<Deployment>::namespaced(client.clone(), "shop"));
        main.spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
            let mut last = None;
            while let Some(Ok(event)) = events.next().await {
                if let watcher::Event::Apply(d) | watcher::Event::InitApply(d) = event {
                    let r = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                    if last != Some(r) {
                        last = Some(r);
                        if let Some(w) = last_scale_writer(&d) {
                            writes.lock().unwrap().push((Instant::now(), r, w));
                        }
                    }
                }
            }
        });
    }

    let mut a = Instance::start("a", kubeconfig.clone());
    let mut b = Instance::start("b", kubeconfig);
    // Sample both fences all along: never both open.
    let overlap = Arc::new(AtomicBool::new(false));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (fa, fb, overlap, sampling) = (a.fence.clone(), b.fence.clone(), overlap.clone(), sampling.clone());
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while sampling.load(Ordering::SeqCst) {
                if fa.holds() && fb.holds() {
                    overlap.store(true, Ordering::SeqCst);
                }
                samples += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            samples
        })
    };

    main.block_on(async {
        let api: Api<ScaledObject> = Api::namespaced(client.clone(), "shop");
        let so: ScaledObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"name": "web"}, "actuation": "direct", "pollingInterval": 1, "minReplicaCount": 0, "maxReplicaCount": 10,
                     "triggers": [{"type": "metrics-api", "metadata": {"url": metric.url, "valueLocation": "value", "targetValue": "10"}}]}
        }))
        .unwrap();
        api.create(&PostParams::default(), &so).await.unwrap();
        eventually("the leader scales web to 3", Duration::from_secs(30), || async { (replicas(&client, "shop", "web").await == 3).then_some(()) }).await;
    });
    let (leader, follower) = if a.fence.holds() { (&mut a, &mut b) } else { (&mut b, &mut a) };
    assert!(leader.fence.holds() && !follower.fence.holds(), "exactly one instance holds the fence");
    let writer = writes.lock().unwrap().last().map(|w| w.2.clone());
    assert_eq!(writer.as_deref(), Some(format!("swell-{}", leader.id).as_str()), "the leader made the write");

    leader.kill();
    let killed = Instant::now();
    // The follower takes over within the lease duration (plus its 250 ms lease check).
    while !follower.fence.holds() {
        assert!(killed.elapsed() < Duration::from_secs(DURATION) + Duration::from_millis(1500), "no takeover within the lease duration");
        std::thread::sleep(Duration::from_millis(20));
    }
    let takeover = killed.elapsed();
    eprintln!("takeover {} ms after the leader was killed (lease {DURATION} s, grace {GRACE} s)", takeover.as_millis());

    metric.set(55);
    main.block_on(eventually("the new leader scales web to 6", Duration::from_secs(30), || async {
        (replicas(&client, "shop", "web").await == 6).then_some(())
    }));
    sampling.store(false, Ordering::SeqCst);
    assert!(sampler.join().unwrap() > 100);
    assert!(!overlap.load(Ordering::SeqCst), "both instances held the write fence at the same time");

    let writes = writes.lock().unwrap().clone();
    let (old, new) = (format!("swell-{}", leader.id), format!("swell-{}", follower.id));
    for (at, r, w) in &writes {
        if *w == old {
            assert!(*at <= killed + Duration::from_millis(200), "the killed leader wrote {r} after it died");
        } else {
            assert_eq!(*w, new, "unexpected writer");
            assert!(*at >= killed, "the follower wrote {r} while the leader still held its term");
        }
    }
    assert!(writes.iter().any(|w| w.2 == new && w.1 == 6), "the new leader's write is recorded: {writes:?}");

    // A clean shutdown releases the lease at once (no one waits out the duration).
    follower.stop.send(true).unwrap();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), "swell");
    let released = Instant::now();
    main.block_on(eventually("the lease released on shutdown", Duration::from_secs(DURATION - GRACE), || async {
        let holder = leases.get("swell-leader").await.ok()?.spec?.holder_identity;
        (holder.as_deref() != Some(follower.id)).then_some(())
    }));
    assert!(!follower.fence.holds(), "a stopped instance still holds its fence");
    eprintln!("lease released {} ms after shutdown began", released.elapsed().as_millis());
    follower.kill();
}
