//! The two API groups whose ScaledObjects a cluster's sync manages: Swell's own, and KEDA's
//! (`keda_compat`), read through KEDA's translation and given KEDA's status shape.

use kube::api::{ApiResource, DynamicObject};
use kube::core::ObjectMeta;
use serde_json::{Value, json};

use crate::crd::ScaledObjectStatus;
use crate::keda;
use crate::spec::{ScaledObject, ScaledObjectSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    Swell,
    Keda,
}

/// One watched object, read as Swell's ScaledObject or with the reason it could not be.
pub struct Read {
    pub meta: ObjectMeta,
    pub object: Result<ScaledObject, String>,
}

impl Group {
    pub fn api_version(self) -> &'static str {
        match self {
            Group::Swell => keda::SWELL_API_VERSION,
            Group::Keda => keda::KEDA_API_VERSION,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Group::Swell => "swell.dev",
            Group::Keda => "keda.sh",
        }
    }

    /// The group's ScaledJob resource.
    pub fn job_resource(self) -> ApiResource {
        match self {
            Group::Swell => ApiResource::erase::<crate::crd::ScaledJob>(&()),
            Group::Keda => keda::resource(keda::Kind::ScaledJob),
        }
    }

    /// A watched ScaledJob as Swell's, its metadata as the cluster has it (uid, annotations).
    pub fn read_job(self, obj: DynamicObject) -> Result<crate::crd::ScaledJob, String> {
        let doc = match self {
            Group::Swell => {
                let mut doc = serde_json::to_value(&obj).map_err(|e| e.to_string())?;
                doc["apiVersion"] = self.api_version().into();
                doc["kind"] = "ScaledJob".into();
                doc
            }
            Group::Keda => keda::translate_object(&obj, keda::Kind::ScaledJob)?,
        };
        let mut sj: crate::crd::ScaledJob = serde_json::from_value(doc).map_err(|e| format!("spec: {e}"))?;
        sj.metadata = obj.metadata;
        Ok(sj)
    }

    /// The finalizers Swell takes off a deleted object: its own, and on KEDA's objects KEDA's
    /// too (KEDA is stopped; Swell has done the cleanup KEDA's finalizer stands for).
    pub fn finalizers(self) -> &'static [&'static str] {
        match self {
            Group::Swell => &[super::FINALIZER],
            Group::Keda => &[super::FINALIZER, "finalizer.keda.sh"],
        }
    }

    pub fn resource(self) -> ApiResource {
        match self {
            Group::Swell => ApiResource::erase::<ScaledObject>(&()),
            Group::Keda => keda::resource(keda::Kind::ScaledObject),
        }
    }

    /// The object as Swell's ScaledObject. KEDA's goes through the same translation as
    /// `swell import-keda`; a field Swell would drop or refuses makes it rejected, naming it.
    /// KEDA's HPA name is kept unless the manifest names one, so KEDA's HPA is taken over.
    pub fn read(self, obj: DynamicObject) -> Read {
        let meta = obj.metadata.clone();
        let object = match self {
            Group::Swell => serde_json::to_value(&obj).map_err(|e| e.to_string()).and_then(|mut doc| {
                doc["apiVersion"] = self.api_version().into();
                doc["kind"] = "ScaledObject".into();
                serde_json::from_value::<ScaledObject>(doc).map_err(|e| format!("spec: {e}"))
            }),
            Group::Keda => keda::translate_object(&obj, keda::Kind::ScaledObject).and_then(|manifest| {
                let mut so = serde_json::from_value::<ScaledObject>(manifest).map_err(|e| format!("spec: {e}"))?;
                let hpa = so.spec.advanced.get_or_insert_default().horizontal_pod_autoscaler_config.get_or_insert_default();
                hpa.name.get_or_insert_with(|| format!("{}{}", keda::KEDA_HPA_PREFIX, meta.name.clone().unwrap_or_default()));
                Ok(so)
            }),
        };
        Read { meta, object }
    }

    /// The status to write: Swell's as it is, or KEDA's fields only, in KEDA's formats.
    pub fn status_patch(self, status: &ScaledObjectStatus, spec: Option<&ScaledObjectSpec>, plural: Option<String>) -> Value {
        match self {
            Group::Swell => json!({ "status": status }),
            Group::Keda => json!({ "status": keda_status(status, spec, plural) }),
        }
    }
}

/// KEDA's `ScaledObjectStatus` (keda `apis/keda/v1alpha1/scaledobject_types.go`): its fields
/// and formats only, so tools that read KEDA's status read Swell's.
fn keda_status(status: &ScaledObjectStatus, spec: Option<&ScaledObjectSpec>, plural: Option<String>) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(target) = spec.map(|s| &s.scale_target_ref) {
        let (group, version) = target.api_version.split_once('/').unwrap_or(("", target.api_version.as_str()));
        out.insert("scaleTargetKind".into(), format!("{}.{}", target.api_version, target.kind).into());
        let resource = plural.unwrap_or_else(|| format!("{}s", target.kind.to_ascii_lowercase()));
        out.insert("scaleTargetGVKR".into(), json!({"group": group, "version": version, "kind": target.kind, "resource": resource}));
    }
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            out.insert(k.into(), v);
        }
    };
    put("originalReplicaCount", json!(status.original_replica_count));
    put("lastActiveTime", json!(status.last_active_time));
    if !status.external_metric_names.is_empty() {
        put("externalMetricNames", json!(status.external_metric_names));
    }
    if !status.health.is_empty() {
        put("health", json!(status.health));
    }
    put("pausedReplicaCount", json!(status.paused_replica_count));
    put("hpaName", json!(status.hpa_name));
    put("triggersTypes", json!(status.triggers_types));
    put("authenticationsTypes", json!(status.authentications_types));
    // KEDA's conditions carry type, status, reason and message.
    let conditions: Vec<Value> = status.conditions.iter().map(|c| json!({"type": c.type_, "status": c.status, "reason": c.reason, "message": c.message})).collect();
    put("conditions", json!(conditions));
    Value::Object(out)
}

/// The watch failed because the cluster does not serve the group's CRD (KEDA's CRDs not
/// installed): the group counts as listed, with nothing in it, so Swell's own objects that
/// vanished while it was away are still forgotten.
pub fn not_installed(e: &kube::runtime::watcher::Error) -> bool {
    matches!(e, kube::runtime::watcher::Error::InitialListFailed(kube::Error::Api(s)) if s.code == 404)
}

/// The key of a watched object.
pub fn key_of(meta: &ObjectMeta) -> (String, String) {
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keda_object_reads_as_swells_with_kedas_hpa_name_and_its_status_in_kedas_shape() {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "orders", "namespace": "shop", "uid": "u1", "finalizers": ["finalizer.keda.sh"]},
            "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 * * * *", "end": "30 * * * *", "desiredReplicas": "3"}}]},
            "status": {"lastActiveTime": "2026-01-01T00:00:00Z"}
        }))
        .unwrap();
        let so = Group::Keda.read(obj).object.unwrap();
        assert_eq!(crate::actuate::hpa_name("orders", &so.spec), "keda-hpa-orders");
        assert_eq!(so.status.and_then(|s| s.last_active_time).as_deref(), Some("2026-01-01T00:00:00Z"));
        let status = ScaledObjectStatus {
            target: Some("Deployment/web".into()),
            desired_replicas: Some(3),
            hpa_name: Some("keda-hpa-orders".into()),
            conditions: vec![crate::crd::Condition { last_transition_time: Some("t".into()), ..crate::crd::Condition::new("Ready", true, "ScaledObjectReady", "ok") }],
            ..Default::default()
        };
        let v = Group::Keda.status_patch(&status, Some(&so.spec), Some("deployments".into()));
        assert_eq!(v["status"]["scaleTargetKind"], "apps/v1.Deployment");
        assert_eq!(v["status"]["scaleTargetGVKR"], json!({"group": "apps", "version": "v1", "kind": "Deployment", "resource": "deployments"}));
        assert_eq!(v["status"]["conditions"][0], json!({"type": "Ready", "status": "True", "reason": "ScaledObjectReady", "message": "ok"}));
        assert!(v["status"].get("desiredReplicas").is_none() && v["status"].get("target").is_none(), "{v}");
    }

    #[test]
    fn only_a_404_on_the_first_list_means_the_crd_is_not_installed() {
        use kube::runtime::watcher::Error as W;
        let api = |code: u16| kube::Error::Api(Box::new(serde_json::from_value(json!({"code": code, "reason": "NotFound"})).unwrap()));
        assert!(not_installed(&W::InitialListFailed(api(404))));
        assert!(!not_installed(&W::InitialListFailed(api(403))), "no right to list is not absence");
        assert!(!not_installed(&W::WatchFailed(api(404))), "a watch that lost its object is not absence");
    }

    #[test]
    fn a_keda_object_with_a_field_swell_cannot_take_is_rejected_naming_it() {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "a", "namespace": "n"},
            "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "azure-queue", "metadata": {}}]}
        }))
        .unwrap();
        let e = Group::Keda.read(obj).object.unwrap_err();
        assert!(e.contains("spec.triggers[0].type") && e.contains("azure-queue"), "{e}");
    }
}
