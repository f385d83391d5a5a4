//! ScaledJob on a real control plane: KEDA's four strategies create the number of Jobs its
//! formulas give for a table of (queue length, running, pending) cases; history limits prune
//! finished Jobs; the sync loop runs ScaledJobs from their CRD and stores them in SQL.

mod common;

use std::time::Duration;

use common::cluster::{MetricEndpoint, Running, eventually, install_swell_crds, namespace};
use engine::actuate::{Fence, KubeCluster, LABEL_SCALED_JOB};
use engine::crd::ScaledJob;
use engine::scaled_job;
use engine::scalers::ScalerContext;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use testenv::ControlPlane;

fn scaled_job(name: &str, url: &str, strategy: serde_json::Value, extra: serde_json::Value) -> ScaledJob {
    let mut spec = serde_json::json!({
        "jobTargetRef": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": "registry.invalid/work:1"}]}}},
        "pollingInterval": 1,
        "maxReplicaCount": 10,
        "scalingStrategy": strategy,
        "triggers": [{"type": "metrics-api", "metadata": {"url": url, "valueLocation": "value", "targetValue": "1"}}]
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        spec[k] = v;
    }
    serde_json::from_value(serde_json::json!({"apiVersion": "swell.dev/v1alpha1", "kind": "ScaledJob", "metadata": {"name": name}, "spec": spec})).unwrap()
}

/// A Job of the ScaledJob that does not start pods by itself (suspended), optionally with a
/// pod of its own that reports Running.
async fn existing_job(client: &Client, ns: &str, sj: &str, i: usize, running_pod: bool) -> String {
    let name = format!("{sj}-pre-{i}");
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let job: Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {LABEL_SCALED_JOB: sj}},
        "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "registry.invalid/w:1"}]}}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    if running_pod {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{name}-pod"), "labels": {LABEL_SCALED_JOB: sj, "job-name": name}},
            "spec": {"containers": [{"name": "w", "image": "registry.invalid/w:1"}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        pods.patch_status(&format!("{name}-pod"), &PatchParams::default(), &Patch::Merge(serde_json::json!({"status": {"phase": "Running"}})))
            .await
            .unwrap();
    }
    name
}

async fn job_count(client: &Client, ns: &str, sj: &str) -> usize {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    jobs.list(&ListParams::default().labels(&format!("{LABEL_SCALED_JOB}={sj}"))).await.unwrap().items.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_strategy_creates_the_jobs_kedas_formulas_give() {
    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    install_swell_crds(&client).await;
    let metric = MetricEndpoint::start(0).await;
    let cluster = KubeCluster::new("east", client.clone(), Fence::always());
    let ctx = ScalerContext::new(None);
    let custom = serde_json::json!({"strategy": "custom", "customScalingQueueLengthDeduction": 1, "customScalingRunningJobPercentage": "0.5"});
    // maxReplicaCount 10, one job per message. Expected counts worked out by hand from
    // keda pkg/scaling/executor/scale_jobs.go (getScalingDecision / the strategies).
    //                       queue running pending  default custom accurate eager
    let table: [(i64, usize, usize, [i64; 4]); 3] = [
        (5, 0, 0, [5, 4, 5, 5]),
        (6, 3, 1, [3, 4, 5, 6]),
        (10, 8, 2, [2, 5, 2, 0]),
    ];
    let strategies = [serde_json::json!({}), custom, serde_json::json!({"strategy": "accurate"}), serde_json::json!({"strategy": "eager"})];
    let names = ["default", "custom", "accurate", "eager"];
    let mut case = 0;
    for (queue, running, pending, expected) in table {
        metric.set(queue);
        for (s, strategy) in strategies.iter().enumerate() {
            case += 1;
            let ns = format!("case-{case}");
            namespace(&client, &ns).await;
            let api: Api<ScaledJob> = Api::namespaced(client.clone(), &ns);
            let sj = api.create(&PostParams::default(), &scaled_job("work", &metric.url, strategy.clone(), serde_json::json!({}))).await.unwrap();
            for i in 0..running {
                existing_job(&client, &ns, "work", i, i >= pending).await;
            }
            let scalers = scaled_job::build_scalers(&sj.spec, &ctx, "team").unwrap();
            let poll = scaled_job::poll_once(&cluster, &sj, engine::keda::SWELL_API_VERSION, &scalers, Duration::from_secs(5)).await.unwrap();
            let what = format!("{} with queue {queue}, {running} running, {pending} pending", names[s]);
            assert_eq!((poll.counts.running, poll.counts.pending), (running as i64, pending as i64), "{what}: counts");
            assert_eq!(poll.created, expected[s], "{what}: {}", poll.explanation);
            assert_eq!(job_count(&client, &ns, "work").await, running + expected[s] as usize, "{what}: Jobs in the cluster");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_limits_prune_finished_jobs_and_the_loop_runs_from_the_crd() {
    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    install_swell_crds(&client).await;
    namespace(&client, "batch").await;
    let metric = MetricEndpoint::start(0).await;

    // Finished Jobs: 3 complete, 2 failed; limits keep 1 and 0.
    let jobs: Api<Job> = Api::namespaced(client.clone(), "batch");
    for (i, outcome) in ["Complete", "Complete", "Complete", "Failed", "Failed"].iter().enumerate() {
        let name = existing_job(&client, "batch", "work", i, false).await;
        jobs.patch(&name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"suspend": false}}))).await.unwrap();
        // The job controller may set startTime (then immutable) once the Job runs. Every
        // attempt reads it and dates the outcome at "now", which is never before it, so the
        // API server's rule completionTime >= startTime holds whoever wrote startTime.
        let mut attempt = 0;
        loop {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let start = match jobs.get(&name).await.unwrap().status.and_then(|s| s.start_time) {
                Some(t) => serde_json::to_value(t).unwrap(),
                None => now.clone().into(),
            };
            let conditions = match *outcome {
                "Complete" => serde_json::json!([
                    {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": now, "lastTransitionTime": now},
                    {"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now}]),
                _ => serde_json::json!([
                    {"type": "FailureTarget", "status": "True", "lastProbeTime": now, "lastTransitionTime": now},
                    {"type": "Failed", "status": "True", "lastProbeTime": now, "lastTransitionTime": now}]),
            };
            // active 0: the job controller may already have started a pod for it.
            let mut status = serde_json::json!({"conditions": conditions, "startTime": start, "active": 0});
            if *outcome == "Complete" {
                status["completionTime"] = now.clone().into();
                status["succeeded"] = 1.into();
            } else {
                status["failed"] = 1.into();
            }
            match jobs.patch_status(&name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"status": status}))).await {
                Ok(_) => break,
                // A write racing the controller's own status update conflicts; read again.
                Err(e) if attempt < 20 => {
                    attempt += 1;
                    eprintln!("marking {name} {outcome}, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("marking {name} {outcome}: {e}"),
            }
        }
    }

    // The loop, from the CRD: 3 messages → 3 Jobs (default strategy), finished ones pruned.
    let running = Running::start(vec![("east", client.clone(), Fence::always())]).await;
    metric.set(3);
    let api: Api<ScaledJob> = Api::namespaced(client.clone(), "batch");
    api.create(
        &PostParams::default(),
        &scaled_job("work", &metric.url, serde_json::json!({}), serde_json::json!({"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 0})),
    )
    .await
    .unwrap();
    let left = eventually("3 new Jobs and 1 finished one left", Duration::from_secs(30), || async {
        let items = jobs.list(&ListParams::default().labels(&format!("{LABEL_SCALED_JOB}=work"))).await.ok()?.items;
        let pre: Vec<String> = items.iter().map(|j| j.name_any()).filter(|n| n.starts_with("work-pre-")).collect();
        (items.len() == 4 && pre.len() == 1).then_some(pre)
    })
    .await;
    assert_eq!(left, vec!["work-pre-2".to_string()], "the newest complete Job is the one kept");
    // Status and SQL.
    eventually("ScaledJob Ready and Active", Duration::from_secs(30), || async {
        let s = api.get("work").await.ok()?.status?;
        let is = |t: &str| s.conditions.iter().any(|c| c.type_ == t && c.status == "True");
        (is("Ready") && is("Active")).then_some(())
    })
    .await;
    // The dashboard's view of it: the Jobs it runs, the finished one kept, in words.
    let view = eventually("the engine's view of the ScaledJob", Duration::from_secs(30), || async {
        running.engine.jobs("team").into_iter().find(|j| j.name == "work" && j.running == 3)
    })
    .await;
    assert_eq!((view.namespace.as_str(), view.strategy.as_str(), view.succeeded, view.max_replicas), ("batch", "default", 1, 10));
    assert!(view.explanation.contains("3 running"), "{}", view.explanation);
    let cluster = engine::store::find_cluster(running.engine.db(), "east").await.unwrap().unwrap();
    assert_eq!(engine::store::scaled_jobs_of(running.engine.db(), cluster.id).await.unwrap(), vec![("batch".to_string(), "work".to_string())]);
    // A bad strategy is reported by field.
    let bad = scaled_job("bad", &metric.url, serde_json::json!({"strategy": "greedy"}), serde_json::json!({}));
    api.create(&PostParams::default(), &bad).await.unwrap();
    let message = eventually("Ready=False on the bad ScaledJob", Duration::from_secs(30), || async {
        api.get("bad").await.ok()?.status?.conditions.into_iter().find(|c| c.type_ == "Ready" && c.status == "False").map(|c| c.message)
    })
    .await;
    assert!(message.contains("spec.scalingStrategy.strategy"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_scaled_job_creates_no_jobs_until_the_annotation_goes() {
    let cp = ControlPlane::start().expect("control plane starts");
    let client = cp.client().await;
    install_swell_crds(&client).await;
    namespace(&client, "batch").await;
    let metric = MetricEndpoint::start(2).await;
    let running = Running::start(vec![("east", client.clone(), Fence::always())]).await;
    let api: Api<ScaledJob> = Api::namespaced(client.clone(), "batch");
    let mut sj = scaled_job("work", &metric.url, serde_json::json!({}), serde_json::json!({}));
    // KEDA reads it with Go's ParseBool.
    sj.metadata.annotations = Some([("autoscaling.keda.sh/paused".to_string(), "True".to_string())].into());
    api.create(&PostParams::default(), &sj).await.unwrap();
    eventually("Paused=True on the ScaledJob", Duration::from_secs(30), || async {
        let s = api.get("work").await.ok()?.status?;
        s.conditions.iter().any(|c| c.type_ == "Paused" && c.status == "True").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(job_count(&client, "batch", "work").await, 0, "a paused ScaledJob created Jobs");
    let metrics = running.engine.metrics().encode();
    assert!(metrics.contains(r#"swell_scaled_object_paused{cluster="east",namespace="batch",scaled_object="work",type="scaledjob"} 1"#), "{metrics}");
    // Unpaused: the queue of 2 becomes 2 Jobs, and an event says so.
    api.patch("work", &PatchParams::default(), &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused": null}}})))
        .await
        .unwrap();
    eventually("2 Jobs once unpaused", Duration::from_secs(30), || async { (job_count(&client, "batch", "work").await == 2).then_some(()) }).await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "batch");
    eventually("a ScaledJobScaled event", Duration::from_secs(30), || async {
        events.list(&ListParams::default()).await.ok()?.items.iter().any(|e| e.reason.as_deref() == Some("ScaledJobScaled")).then_some(())
    })
    .await;
}
