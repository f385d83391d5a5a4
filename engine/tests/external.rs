//! KEDA-compatible external scalers: a small scaler server written for this test speaks
//! externalscaler.proto over gRPC on 127.0.0.1; Swell polls it (`external`) and follows its
//! StreamIsActive pushes (`external-push`), driving the simulated cluster.

use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::scalers::external::proto::external_scaler_server::{ExternalScaler, ExternalScalerServer};
use engine::scalers::external::proto::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec, MetricValue, ScaledObjectRef,
};
use engine::sim::SimCluster;
use engine::{Engine, EngineOptions, store};
use futures::Stream;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

#[derive(Clone)]
struct TestScaler {
    value: Arc<AtomicI64>,
    pushes: watch::Receiver<u64>,
    seen: Arc<Mutex<Vec<ScaledObjectRef>>>,
}

#[tonic::async_trait]
impl ExternalScaler for TestScaler {
    async fn is_active(&self, req: Request<ScaledObjectRef>) -> Result<Response<IsActiveResponse>, Status> {
        self.seen.lock().unwrap().push(req.into_inner());
        Ok(Response::new(IsActiveResponse { result: self.value.load(Ordering::SeqCst) > 0 }))
    }

    type StreamIsActiveStream = Pin<Box<dyn Stream<Item = Result<IsActiveResponse, Status>> + Send>>;

    async fn stream_is_active(&self, _: Request<ScaledObjectRef>) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let value = self.value.clone();
        let stream = futures::stream::unfold(self.pushes.clone(), move |mut rx| {
            let value = value.clone();
            async move {
                rx.changed().await.ok()?;
                Some((Ok(IsActiveResponse { result: value.load(Ordering::SeqCst) > 0 }), rx))
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_metric_spec(&self, _: Request<ScaledObjectRef>) -> Result<Response<GetMetricSpecResponse>, Status> {
        Ok(Response::new(GetMetricSpecResponse { metric_specs: vec![MetricSpec { metric_name: "backlog".into(), target_size: 5, target_size_float: 0.0 }] }))
    }

    async fn get_metrics(&self, req: Request<GetMetricsRequest>) -> Result<Response<GetMetricsResponse>, Status> {
        let req = req.into_inner();
        if req.metric_name != "backlog" {
            return Err(Status::not_found(format!("no metric {}", req.metric_name)));
        }
        Ok(Response::new(GetMetricsResponse {
            metric_values: vec![MetricValue { metric_name: "backlog".into(), metric_value: self.value.load(Ordering::SeqCst), metric_value_float: 0.0 }],
        }))
    }
}

async fn setup() -> (Engine, TestScaler, watch::Sender<u64>, String) {
    let (push_tx, push_rx) = watch::channel(0);
    let scaler = TestScaler { value: Arc::new(AtomicI64::new(0)), pushes: push_rx, seen: Arc::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let svc = ExternalScalerServer::new(scaler.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder().add_service(svc).serve_with_incoming(tokio_stream_from(listener)).await.unwrap();
    });
    let db = store::connect("sqlite::memory:").await.unwrap();
    store::migrate(&db).await.unwrap();
    store::ensure_tenant(&db, "t", "t").await.unwrap();
    store::ensure_cluster(&db, "sim", "simulated").await.unwrap();
    let mut sim = SimCluster::new(1.0);
    sim.add_deployment("poller", 0, 0.0, 10.0);
    sim.add_deployment("pushed", 0, 0.0, 10.0);
    let engine = Engine::new(db, EngineOptions { sim: Some(Arc::new(Mutex::new(sim))), tick: Duration::from_millis(100), ..Default::default() }).await.unwrap();
    let (stop, rx) = watch::channel(false);
    std::mem::forget(stop);
    engine.spawn(rx);
    (engine, scaler, push_tx, address)
}

/// A listener as the stream of connections tonic serves.
fn tokio_stream_from(listener: tokio::net::TcpListener) -> impl Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _)| s);
        Some((conn, l))
    })
}

fn spec(kind: &str, address: &str, polling: u32) -> engine::spec::ScaledObjectSpec {
    serde_json::from_value(serde_json::json!({
        "scaleTargetRef": {"name": if kind == "external" { "poller" } else { "pushed" }}, "pollingInterval": polling, "minReplicaCount": 0, "maxReplicaCount": 10,
        "triggers": [{"type": kind, "metadata": {"scalerAddress": address, "queue": "orders"}}]
    }))
    .unwrap()
}

async fn wait(engine: &Engine, id: i32, want: i32, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let v = engine.object("t", id).unwrap();
        if v.desired_replicas == Some(want) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "want {want}, have {:?} ({}), error {:?}", v.desired_replicas, v.phase, v.error);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polled_external_scaler_drives_replicas_with_its_own_target() {
    let (engine, scaler, _push, address) = setup().await;
    scaler.value.store(23, Ordering::SeqCst);
    let id = engine.apply("t", "sim", "shop", "poller", "swell", spec("external", &address, 1), "test").await.unwrap();
    // The scaler's target is 5 per replica: ceil(23 / 5) = 5.
    wait(&engine, id, 5, Duration::from_secs(10)).await;
    let seen = scaler.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!((seen.name.as_str(), seen.namespace.as_str()), ("poller", "shop"), "KEDA sends the object's name and namespace");
    assert_eq!(seen.scaler_metadata.get("queue").map(String::as_str), Some("orders"), "metadata is forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_activation_reaches_decide_without_waiting_for_the_poll() {
    let (engine, scaler, push, address) = setup().await;
    let id = engine.apply("t", "sim", "shop", "pushed", "swell", spec("external-push", &address, 60), "test").await.unwrap();
    wait(&engine, id, 0, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // the stream is open
    scaler.value.store(12, Ordering::SeqCst);
    push.send_modify(|n| *n += 1);
    // 60 s polling, yet: activation then ceil(12 / 5) = 3 at once.
    let took = wait(&engine, id, 3, Duration::from_secs(5)).await;
    eprintln!("push to decision: {} ms", took.as_millis());
}
