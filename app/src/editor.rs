//! Creating, editing and deleting Swell-made ScaledObjects from the dashboard: the form's
//! fields as YAML (the same code in the browser, for the live preview, and on the server),
//! and the server functions that apply YAML through the engine's own validation.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the form holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FormFields {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    pub target_kind: String,
    pub target_name: String,
    pub min_replicas: String,
    pub max_replicas: String,
    pub polling_interval: String,
    pub cooldown_period: String,
    pub actuation: String,
    pub trigger_type: String,
    /// `key: value` per line.
    pub metadata: String,
}

/// The trigger types the form offers (the engine's scalers).
pub const TRIGGER_TYPES: [&str; 10] = ["aws-sqs-queue", "cron", "external", "external-push", "kafka", "metrics-api", "prometheus", "rabbitmq", "simulated", "webhook"];

fn quoted(s: &str) -> String {
    serde_json::to_string(s.trim()).unwrap_or_default()
}

/// A number field as YAML: as typed when it is a whole number, else quoted (the engine then
/// names the field in its refusal).
fn number(s: &str) -> String {
    let t = s.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '-') { t.to_string() } else { quoted(t) }
}

/// The form as a Swell ScaledObject manifest.
pub fn form_yaml(f: &FormFields) -> String {
    let mut y = String::from("apiVersion: swell.dev/v1alpha1\nkind: ScaledObject\nmetadata:\n");
    y.push_str(&format!("  name: {}\n  namespace: {}\n", quoted(&f.name), quoted(&f.namespace)));
    if !f.cluster.trim().is_empty() {
        y.push_str(&format!("  annotations:\n    swell.dev/cluster: {}\n", quoted(&f.cluster)));
    }
    y.push_str("spec:\n  scaleTargetRef:\n");
    y.push_str(&format!("    kind: {}\n    name: {}\n", quoted(if f.target_kind.trim().is_empty() { "Deployment" } else { &f.target_kind }), quoted(&f.target_name)));
    for (key, value) in [
        ("minReplicaCount", &f.min_replicas),
        ("maxReplicaCount", &f.max_replicas),
        ("pollingInterval", &f.polling_interval),
        ("cooldownPeriod", &f.cooldown_period),
    ] {
        if !value.trim().is_empty() {
            y.push_str(&format!("  {key}: {}\n", number(value)));
        }
    }
    if !f.actuation.trim().is_empty() {
        y.push_str(&format!("  actuation: {}\n", quoted(&f.actuation)));
    }
    y.push_str(&format!("  triggers:\n    - type: {}\n      metadata:", quoted(&f.trigger_type)));
    let pairs: Vec<(&str, &str)> = f.metadata.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).filter(|(k, _)| !k.is_empty()).collect();
    if pairs.is_empty() {
        y.push_str(" {}\n");
    } else {
        y.push('\n');
        for (k, v) in pairs {
            y.push_str(&format!("        {}: {}\n", quoted(k), quoted(v)));
        }
    }
    y
}

/// The annotation naming the cluster an object made in Swell runs on.
pub const CLUSTER_ANNOTATION: &str = "swell.dev/cluster";

/// Creates or replaces a Swell-made ScaledObject from a manifest; returns its id. Objects a
/// cluster manages are refused (they change in the cluster).
#[server(client = crate::client::ApiClient, endpoint = "apply_yaml")]
pub async fn apply_yaml(tenant: String, yaml: String) -> Result<i32, ServerFnError> {
    let who = crate::api::ssr::authorize(&tenant, engine::access::Role::Operator, "apply_yaml").await?;
    apply_manifest(&tenant, &yaml, &who.actor).await
}

/// The form's fields, applied as the manifest [`form_yaml`] makes of them.
#[allow(clippy::too_many_arguments)]
#[server(client = crate::client::ApiClient, endpoint = "apply_form")]
pub async fn apply_form(
    tenant: String,
    cluster: String,
    namespace: String,
    name: String,
    target_kind: String,
    target_name: String,
    min_replicas: String,
    max_replicas: String,
    polling_interval: String,
    cooldown_period: String,
    actuation: String,
    trigger_type: String,
    metadata: String,
) -> Result<i32, ServerFnError> {
    let who = crate::api::ssr::authorize(&tenant, engine::access::Role::Operator, "apply_form").await?;
    let f = FormFields { cluster, namespace, name, target_kind, target_name, min_replicas, max_replicas, polling_interval, cooldown_period, actuation, trigger_type, metadata };
    apply_manifest(&tenant, &form_yaml(&f), &who.actor).await
}

#[cfg(feature = "ssr")]
async fn apply_manifest(tenant: &str, yaml: &str, actor: &str) -> Result<i32, ServerFnError> {
    use crate::api::ssr;
    let tenant = tenant.to_string();
    let engine = ssr::engine()?;
    let doc: serde_json::Value = serde_saphyr::from_str(yaml).map_err(|e| ServerFnError::new(format!("yaml: {e}")))?;
    let text = |path: &[&str]| {
        let mut v = &doc;
        for p in path {
            v = v.get(*p)?;
        }
        v.as_str().map(str::to_string)
    };
    if let Some(kind) = text(&["kind"]).filter(|k| k != "ScaledObject") {
        return Err(ServerFnError::new(format!("kind: {kind:?} is not ScaledObject")));
    }
    let name = text(&["metadata", "name"]).filter(|n| !n.is_empty()).ok_or_else(|| ServerFnError::new("metadata.name: missing; name the object"))?;
    let namespace = text(&["metadata", "namespace"]).filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
    let cluster = match text(&["metadata", "annotations", CLUSTER_ANNOTATION]).filter(|c| !c.is_empty()) {
        Some(c) => c,
        None => engine.clusters_of(&tenant).await.map_err(ssr::fail)?.first().map(|c| c.name.clone()).ok_or_else(|| {
            ServerFnError::new(format!("metadata.annotations.{CLUSTER_ANNOTATION}: tenant {tenant:?} has no cluster yet; register one with `swell cluster add`"))
        })?,
    };
    let spec = doc.get("spec").cloned().ok_or_else(|| ServerFnError::new("spec: missing"))?;
    let spec: engine::spec::ScaledObjectSpec = serde_path_to_error::deserialize(spec).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { "spec".to_string() } else { format!("spec.{path}") };
        ServerFnError::new(format!("{at}: {}", e.into_inner()))
    })?;
    if let Some(existing) = engine.find(&cluster, &namespace, &name) {
        if existing.tenant != tenant {
            return Err(ServerFnError::new(format!("metadata.name: {namespace}/{name} on {cluster} belongs to another tenant")));
        }
        if existing.origin == "cluster" {
            return Err(ServerFnError::new(format!("metadata.name: {namespace}/{name} is managed by cluster {cluster:?}; change it there (only override and pause here)")));
        }
    }
    engine.apply(&tenant, &cluster, &namespace, &name, "swell", spec, actor).await.map_err(ssr::fail)
}

/// A Swell-made object's manifest, for editing.
#[server(client = crate::client::ApiClient, endpoint = "object_yaml")]
pub async fn object_yaml(tenant: String, id: i32) -> Result<String, ServerFnError> {
    use crate::api::ssr;
    ssr::authorize(&tenant, engine::access::Role::Viewer, "object_yaml").await?;
    let v = ssr::engine()?.object(&tenant, id).ok_or_else(|| ssr::not_found(&tenant, id))?;
    let spec = v.spec.as_deref().cloned().ok_or_else(|| ServerFnError::new("spec: not loaded yet"))?;
    let doc = serde_json::json!({
        "apiVersion": "swell.dev/v1alpha1",
        "kind": "ScaledObject",
        "metadata": { "name": v.name, "namespace": v.namespace, "annotations": { CLUSTER_ANNOTATION: v.cluster } },
        "spec": spec,
    });
    serde_saphyr::to_string(&doc).map_err(|e| ServerFnError::new(format!("yaml: {e}")))
}

/// Deletes a Swell-made object; `confirm` must repeat its name.
#[server(client = crate::client::ApiClient, endpoint = "delete_object")]
pub async fn delete_object(tenant: String, id: i32, confirm: String) -> Result<(), ServerFnError> {
    use crate::api::ssr;
    let who = ssr::authorize(&tenant, engine::access::Role::Operator, "delete_object").await?;
    let engine = ssr::engine()?;
    let v = engine.object(&tenant, id).ok_or_else(|| ssr::not_found(&tenant, id))?;
    if v.origin == "cluster" {
        return Err(ServerFnError::new(format!("{}/{} is managed by cluster {:?}: delete it there", v.namespace, v.name, v.cluster)));
    }
    if confirm.trim() != v.name {
        return Err(ServerFnError::new(format!("confirm: type the object's name ({:?}) to delete it", v.name)));
    }
    engine.remove(&tenant, id, &who.actor).await.map(|_| ()).map_err(ssr::fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_manifest_with_quoted_values() {
        let f = FormFields {
            cluster: "simulated".into(),
            namespace: "demo".into(),
            name: "play".into(),
            target_name: "playground".into(),
            min_replicas: "1".into(),
            max_replicas: "ten".into(),
            trigger_type: "simulated".into(),
            metadata: "workload: orders\ntarget: 5\n\n".into(),
            ..Default::default()
        };
        let y = form_yaml(&f);
        assert!(y.contains("  maxReplicaCount: \"ten\"\n"), "{y}");
        assert!(y.contains("  minReplicaCount: 1\n"), "{y}");
        assert!(y.contains("        \"workload\": \"orders\"\n        \"target\": \"5\"\n"), "{y}");
        assert!(y.contains("swell.dev/cluster: \"simulated\""), "{y}");
    }
}
