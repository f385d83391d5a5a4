//! A real cluster through kube-rs: the scale subresource of any scalable kind, and the HPA
//! Swell owns in `hpa` mode.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, ExternalMetricSource, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec as HpaMetricSpec, MetricTarget,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use tokio::sync::Mutex;

use super::Fence;
use crate::external::HpaMetric;
use crate::spec::{MetricType, ScaleTargetRef, ScaledObjectSpec, ScalingRules};
use crate::{Error, Result};

/// Names of the HPAs Swell creates: `swell-hpa-<scaledobject>` (KEDA: `keda-hpa-…`).
pub const HPA_PREFIX: &str = "swell-hpa-";
/// Labels on Swell's HPAs and in their external metric selectors.
pub const LABEL_OBJECT: &str = "scaledobject.swell.dev/name";
pub const LABEL_CLUSTER: &str = "scaledobject.swell.dev/cluster";
const FIELD_MANAGER: &str = "swell";

/// The HPA's name for a ScaledObject (`advanced.horizontalPodAutoscalerConfig.name` wins).
pub fn hpa_name(object: &str, spec: &ScaledObjectSpec) -> String {
    spec.advanced
        .as_ref()
        .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
        .and_then(|h| h.name.clone())
        .unwrap_or_else(|| format!("{HPA_PREFIX}{object}"))
}

pub use crate::external::external_metric_name;

/// A quantity string for a metric value: whole numbers as they are, else milli-units.
pub fn quantity(v: f64) -> Quantity {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        Quantity(format!("{}", v as i64))
    } else {
        Quantity(format!("{}m", (v * 1000.0).round() as i64))
    }
}

pub struct KubeCluster {
    pub name: String,
    client: Client,
    fence: Fence,
    /// (apiVersion, kind) → resolved API resource, from discovery.
    kinds: Mutex<HashMap<(String, String), ApiResource>>,
    /// The field manager of scale writes: `swell-<instance>`, so the target's managedFields
    /// show which instance wrote last.
    field_manager: String,
    /// Swell's own namespace (Secrets of ClusterTriggerAuthentications, the lease).
    namespace: String,
    /// Watch caches of Deployments and StatefulSets: replicas without a request per poll.
    targets: super::targets::TargetCache,
}

impl KubeCluster {
    pub fn new(name: impl Into<String>, client: Client, fence: Fence) -> Self {
        KubeCluster {
            name: name.into(),
            client,
            fence,
            kinds: Mutex::new(HashMap::new()),
            field_manager: FIELD_MANAGER.into(),
            namespace: "swell".into(),
            targets: Default::default(),
        }
    }

    /// Sets Swell's own namespace (default `swell`).
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.into();
        self
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Names this instance in the field manager of its scale writes.
    pub fn with_instance(mut self, instance: &str) -> Self {
        self.field_manager = format!("{FIELD_MANAGER}-{instance}");
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    pub(crate) fn fenced(&self, target: &str) -> Result<()> {
        if self.fence.holds() {
            Ok(())
        } else {
            Err(Error::Actuation { target: target.into(), message: "this instance does not hold the leader lease; not writing".into() })
        }
    }

    /// The plural resource name of a target kind (`deployments`), through discovery.
    pub async fn plural(&self, target: &ScaleTargetRef) -> Option<String> {
        self.resource(target).await.ok().map(|ar| ar.plural)
    }

    /// The API resource of a target kind, resolved once through discovery.
    async fn resource(&self, target: &ScaleTargetRef) -> Result<ApiResource> {
        let key = (target.api_version.clone(), target.kind.clone());
        if let Some(ar) = self.kinds.lock().await.get(&key) {
            return Ok(ar.clone());
        }
        let (group, version) = match target.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", target.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &target.kind);
        let (ar, _) = kube::discovery::pinned_kind(&self.client, &gvk).await.map_err(|e| {
            Error::invalid(
                "spec.scaleTargetRef.kind",
                format!("{} {} is not served by cluster {} ({}); check kind and apiVersion", target.api_version, target.kind, self.name, short(&e)),
            )
        })?;
        self.kinds.lock().await.insert(key, ar.clone());
        Ok(ar)
    }

    /// (spec replicas, observed replicas) of the target: from the watch cache for
    /// Deployments and StatefulSets, else from its scale subresource.
    pub async fn replicas(&self, namespace: &str, target: &ScaleTargetRef) -> Result<(i32, i32)> {
        if let Some(r) = self.targets.replicas(&self.client, namespace, target) {
            return Ok(r);
        }
        self.read_scale(namespace, target).await
    }

    /// (spec replicas, observed replicas) from the target's scale subresource (a request).
    pub async fn read_scale(&self, namespace: &str, target: &ScaleTargetRef) -> Result<(i32, i32)> {
        let ar = self.resource(target).await?;
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &ar);
        match api.get_scale(&target.name).await {
            Ok(scale) => Ok((
                scale.spec.and_then(|s| s.replicas).unwrap_or(0),
                scale.status.map(|s| s.replicas).unwrap_or(0),
            )),
            Err(e) if is_not_found(&e) => {
                // Tell a missing target from a kind that cannot be scaled.
                match api.get_opt(&target.name).await {
                    Ok(None) => Err(Error::invalid(
                        "spec.scaleTargetRef.name",
                        format!("{} {namespace}/{} does not exist in cluster {}", target.kind, target.name, self.name),
                    )),
                    Ok(Some(_)) => Err(Error::invalid(
                        "spec.scaleTargetRef.kind",
                        format!("{} has no scale subresource; target a Deployment, StatefulSet or a resource with /scale", target.kind),
                    )),
                    Err(e) => Err(self.actuation_error(namespace, target, &e)),
                }
            }
            Err(e) => Err(self.actuation_error(namespace, target, &e)),
        }
    }

    /// Sets the target's replicas through its scale subresource.
    pub async fn scale(&self, namespace: &str, target: &ScaleTargetRef, replicas: i32) -> Result<()> {
        self.fenced(&format!("{}/{namespace}/{}", self.name, target.name))?;
        let ar = self.resource(target).await?;
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &ar);
        let patch = serde_json::json!({ "spec": { "replicas": replicas } });
        let params = PatchParams { field_manager: Some(self.field_manager.clone()), ..Default::default() };
        api.patch_scale(&target.name, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| self.actuation_error(namespace, target, &e))
    }

    /// Creates or updates the HPA of an `hpa`-mode ScaledObject (server-side apply): it
    /// reads its External metrics (one per trigger, or the composite) from Swell's metrics API.
    pub async fn apply_hpa(
        &self,
        namespace: &str,
        object: &str,
        spec: &ScaledObjectSpec,
        metrics: &[HpaMetric],
        owner: Option<OwnerReference>,
        paused: (bool, bool),
    ) -> Result<()> {
        let name = hpa_name(object, spec);
        self.fenced(&format!("{}/{namespace}/{name}", self.name))?;
        let labels: BTreeMap<String, String> = [
            ("app.kubernetes.io/managed-by".to_string(), "swell".to_string()),
            (LABEL_OBJECT.to_string(), object.to_string()),
        ]
        .into();
        let selector: BTreeMap<String, String> =
            [(LABEL_OBJECT.to_string(), object.to_string()), (LABEL_CLUSTER.to_string(), self.name.clone())].into();
        let hpa_metrics = metrics
            .iter()
            .map(|m| HpaMetricSpec {
                type_: "External".into(),
                external: Some(ExternalMetricSource {
                    metric: MetricIdentifier {
                        name: m.name.clone(),
                        selector: Some(LabelSelector { match_labels: Some(selector.clone()), ..Default::default() }),
                    },
                    target: match m.metric_type {
                        MetricType::Value => MetricTarget { type_: "Value".into(), value: Some(quantity(m.target)), ..Default::default() },
                        _ => MetricTarget { type_: "AverageValue".into(), average_value: Some(quantity(m.target)), ..Default::default() },
                    },
                }),
                ..Default::default()
            })
            .collect();
        // KEDA's HPA: the behaviour as given, else none at all, so the HPA controller takes its
        // own default path (scale-up to max(2 × current, 4) at every sync, scale-down after its
        // downscale stabilization); spelling the defaults out instead moves it to the
        // behaviour path, whose 15 s periods make 1 → 10 take two periods. Paused scale-in or
        // -out disables that direction (KEDA's annotations).
        let given = spec.advanced.as_ref().and_then(|a| a.horizontal_pod_autoscaler_config.as_ref()).and_then(|h| h.behavior.as_ref());
        let mut behavior = given.map(|b| HorizontalPodAutoscalerBehavior { scale_up: b.scale_up.as_ref().map(rules), scale_down: b.scale_down.as_ref().map(rules) });
        let (scale_in_paused, scale_out_paused) = paused;
        if scale_in_paused {
            behavior.get_or_insert_default().scale_down.get_or_insert_default().select_policy = Some("Disabled".into());
        }
        if scale_out_paused {
            behavior.get_or_insert_default().scale_up.get_or_insert_default().select_policy = Some("Disabled".into());
        }
        let hpa = HorizontalPodAutoscaler {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.into()),
                labels: Some(labels),
                owner_references: owner.map(|o| vec![o]),
                ..Default::default()
            },
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some(spec.scale_target_ref.api_version.clone()),
                    kind: spec.scale_target_ref.kind.clone(),
                    name: spec.scale_target_ref.name.clone(),
                },
                min_replicas: Some(spec.min_replica_count.max(1)),
                max_replicas: spec.max_replica_count,
                metrics: Some(hpa_metrics),
                behavior,
            },
            status: None,
        };
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), namespace);
        api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&hpa))
            .await
            .map(|_| ())
            .map_err(|e| Error::Actuation { target: format!("{}/{namespace}/{name}", self.name), message: short(&e) })
    }

    /// The name of an HPA in `namespace` that scales `target` and that was not made for this
    /// object (`own` is its HPA's name, `owner_uid` the object's uid in the cluster).
    pub async fn foreign_hpa(&self, namespace: &str, target: &ScaleTargetRef, own: &str, owner_uid: Option<&str>) -> Result<Option<String>> {
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), namespace);
        let list = api
            .list(&Default::default())
            .await
            .map_err(|e| Error::Actuation { target: format!("{}/{namespace}/HorizontalPodAutoscaler", self.name), message: short(&e) })?;
        Ok(list.items.into_iter().find_map(|h| {
            let name = h.metadata.name.clone().unwrap_or_default();
            let r = &h.spec.scale_target_ref;
            if r.name != target.name || r.kind != target.kind {
                return None;
            }
            let ours = h.metadata.labels.as_ref().and_then(|l| l.get("app.kubernetes.io/managed-by")).is_some_and(|m| m == FIELD_MANAGER);
            // Made for this very object (its owner is the object), by Swell or by KEDA before
            // it: KEDA's `keda-hpa-<name>` of a keda.sh object is taken over in place.
            let owned = owner_uid.is_some_and(|uid| h.metadata.owner_references.iter().flatten().any(|o| o.uid == uid));
            (!((ours || owned) && name == own)).then_some(name)
        }))
    }

    /// Deletes Swell's HPA of an object, if there is one.
    pub async fn delete_hpa(&self, namespace: &str, object: &str, spec: &ScaledObjectSpec) -> Result<()> {
        let name = hpa_name(object, spec);
        self.fenced(&format!("{}/{namespace}/{name}", self.name))?;
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(self.client.clone(), namespace);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::Actuation { target: format!("{}/{namespace}/{name}", self.name), message: short(&e) }),
        }
    }

    fn actuation_error(&self, namespace: &str, target: &ScaleTargetRef, e: &kube::Error) -> Error {
        Error::Actuation { target: format!("{}/{namespace}/{}/{}", self.name, target.kind, target.name), message: short(e) }
    }
}

fn rules(r: &ScalingRules) -> HPAScalingRules {
    HPAScalingRules {
        stabilization_window_seconds: r.stabilization_window_seconds,
        select_policy: r.select_policy.map(|p| format!("{p:?}")),
        policies: r.policies.as_ref().map(|ps| {
            ps.iter().map(|p| HPAScalingPolicy { type_: format!("{:?}", p.policy_type), value: p.value, period_seconds: p.period_seconds }).collect()
        }),
        tolerance: None,
    }
}

pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// A one-line error without the request dump kube's Display can carry.
pub(crate) fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}
