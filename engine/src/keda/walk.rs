//! The field-by-field walk of a KEDA manifest against Swell's own CRD schemas (generated from
//! the Rust types): a field Swell's schema has is kept, a few are translated, the rest are
//! dropped with the reason.

use std::sync::OnceLock;

use kube::CustomResourceExt;
use serde_json::{Map, Value};

use super::{Entry, Kind, Outcome};

/// Metadata the API server sets: dropped from every object read from a cluster.
const SERVER_SET: &[&str] = &["uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"];
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// KEDA's podIdentity fields that Swell keeps in `podIdentity.extra`.
const POD_IDENTITY_EXTRA: &[&str] = &["identityOwner", "identityTenantId", "identityAuthorityHost", "externalID"];

pub(super) fn dropped(path: &str, reason: &str) -> Entry {
    Entry { path: path.into(), outcome: Outcome::Dropped, to: None, reason: reason.into() }
}

fn kept(path: &str) -> Entry {
    Entry { path: path.into(), outcome: Outcome::Kept, to: None, reason: String::new() }
}

/// Dropped by design from any object read from a cluster (not a loss of configuration).
pub(super) fn is_bookkeeping(path: &str) -> bool {
    path == "status"
        || path == "metadata.finalizers"
        || path == format!("metadata.annotations.{LAST_APPLIED}")
        || path.strip_prefix("metadata.").is_some_and(|f| SERVER_SET.contains(&f))
}

pub(super) fn metadata(value: &Value, report: &mut Vec<Entry>) -> Option<Value> {
    let Some(obj) = value.as_object() else {
        report.push(dropped("metadata", "is not a mapping"));
        return None;
    };
    let mut out = Map::new();
    for (key, v) in obj {
        let path = format!("metadata.{key}");
        if SERVER_SET.contains(&key.as_str()) {
            report.push(dropped(&path, "set by the API server"));
        } else if key == "finalizers" {
            report.push(dropped(&path, "KEDA's finalizer; Swell adds its own"));
        } else if let ("labels" | "annotations", Some(map)) = (key.as_str(), v.as_object()) {
            let mut kept_map = Map::new();
            for (k, item) in map {
                let p = format!("{path}.{k}");
                if k == LAST_APPLIED {
                    report.push(dropped(&p, "kubectl's copy of the KEDA manifest"));
                } else {
                    kept_map.insert(k.clone(), item.clone());
                    report.push(kept(&p));
                }
            }
            out.insert(key.clone(), Value::Object(kept_map));
        } else {
            out.insert(key.clone(), v.clone());
            report.push(kept(&path));
        }
    }
    Some(Value::Object(out))
}

/// The `spec` schema of Swell's CRD of `kind`.
fn schema(kind: Kind) -> &'static Value {
    static SCHEMAS: OnceLock<[Value; 4]> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| {
        let spec = |crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
            let v = serde_json::to_value(crd).expect("a CRD serializes");
            v.pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec").cloned().unwrap_or(Value::Null)
        };
        [
            spec(crate::spec::ScaledObject::crd()),
            spec(crate::crd::ScaledJob::crd()),
            spec(crate::crd::TriggerAuthentication::crd()),
            spec(crate::crd::ClusterTriggerAuthentication::crd()),
        ]
    });
    &all[kind as usize]
}

pub(super) fn spec(kind: Kind, value: &Value, report: &mut Vec<Entry>) -> Option<Value> {
    let mut walker = Walker { kind, report };
    walker.value(value, schema(kind), "spec", "spec")
}

struct Walker<'a> {
    kind: Kind,
    report: &'a mut Vec<Entry>,
}

impl Walker<'_> {
    /// `path` names the field (`spec.triggers[0].type`), `pattern` its place in the schema
    /// (`spec.triggers[].type`).
    fn value(&mut self, v: &Value, schema: &Value, path: &str, pattern: &str) -> Option<Value> {
        if let Some(entry) = self.rule(v, path, pattern) {
            let keep = entry.outcome != Outcome::Dropped;
            self.report.push(entry);
            return keep.then(|| v.clone());
        }
        let preserve = schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        match v {
            Value::Object(obj) if properties.is_some() || additional.is_some() => {
                let mut obj = obj.clone();
                let mut out = Map::new();
                if pattern == "spec.podIdentity" {
                    self.pod_identity_extra(&mut obj, &mut out, path);
                }
                if obj.is_empty() && out.is_empty() {
                    self.report.push(kept(path));
                }
                for (k, item) in &obj {
                    let (p, pat) = (format!("{path}.{k}"), format!("{pattern}.{k}"));
                    let child = properties.and_then(|ps| ps.get(k)).or(additional);
                    match child {
                        Some(child) => {
                            if let Some(x) = self.value(item, child, &p, &pat) {
                                out.insert(k.clone(), x);
                            }
                        }
                        None if preserve => {
                            out.insert(k.clone(), item.clone());
                            self.report.push(kept(&p));
                        }
                        None => self.report.push(dropped(&p, &format!("Swell's {} has no such field", self.kind.as_str()))),
                    }
                }
                Some(Value::Object(out))
            }
            Value::Array(items) if schema.get("items").is_some() => {
                if items.is_empty() {
                    self.report.push(kept(path));
                }
                let item_schema = &schema["items"];
                let out = items.iter().enumerate().filter_map(|(i, item)| self.value(item, item_schema, &format!("{path}[{i}]"), &format!("{pattern}[]"))).collect();
                Some(Value::Array(out))
            }
            _ => {
                if let Some(allowed) = schema.get("enum").and_then(Value::as_array).filter(|_| !v.is_null())
                    && !allowed.contains(v)
                {
                    let names: Vec<String> = allowed.iter().filter_map(|a| a.as_str().map(str::to_string)).collect();
                    self.report.push(dropped(path, &format!("Swell takes one of {}", names.join(", "))));
                    return None;
                }
                self.report.push(kept(path));
                Some(v.clone())
            }
        }
    }

    /// KEDA's fields whose meaning Swell does not have.
    fn rule(&self, v: &Value, path: &str, pattern: &str) -> Option<Entry> {
        match pattern {
            "spec.fallback.behavior" if v.as_str() == Some("scalingModifiers") => {
                Some(dropped(path, "Swell has no scalingModifiers fallback behaviour; the fallback replicas are used as they are (static)"))
            }
            "spec.triggers[].type" => {
                let t = v.as_str().unwrap_or("");
                (!crate::scalers::KNOWN_TYPES.contains(&t)).then(|| Entry {
                    path: path.into(),
                    outcome: Outcome::Unsupported,
                    to: None,
                    reason: format!("Swell has no {t:?} scaler (it has {}); Swell refuses the object until this trigger is replaced", crate::scalers::KNOWN_TYPES.join(", ")),
                })
            }
            _ => None,
        }
    }

    /// KEDA's Azure identity fields go to Swell's `podIdentity.extra`.
    fn pod_identity_extra(&mut self, obj: &mut Map<String, Value>, out: &mut Map<String, Value>, path: &str) {
        for key in POD_IDENTITY_EXTRA {
            if let Some(v) = obj.remove(*key) {
                let to = format!("{path}.extra.{key}");
                self.report.push(Entry { path: format!("{path}.{key}"), outcome: Outcome::Translated, to: Some(to), reason: String::new() });
                out.entry("extra").or_insert_with(|| Value::Object(Map::new())).as_object_mut().expect("extra is a map").insert((*key).into(), v);
            }
        }
    }
}

/// Reads Swell's manifest as Swell's typed resource; a field it cannot take is reported
/// (KEDA's own API server refuses most of these too, e.g. a podIdentity without a provider).
pub(super) fn typed_check(kind: Kind, manifest: &Value) -> Option<Entry> {
    fn read<T: serde::de::DeserializeOwned>(v: &Value) -> Result<(), serde_path_to_error::Error<serde_json::Error>> {
        serde_path_to_error::deserialize::<_, T>(v.clone()).map(|_| ())
    }
    let result = match kind {
        Kind::ScaledObject => read::<crate::spec::ScaledObject>(manifest),
        Kind::ScaledJob => read::<crate::crd::ScaledJob>(manifest),
        Kind::TriggerAuthentication => read::<crate::crd::TriggerAuthentication>(manifest),
        Kind::ClusterTriggerAuthentication => read::<crate::crd::ClusterTriggerAuthentication>(manifest),
    };
    let e = result.err()?;
    let path = e.path().to_string();
    Some(Entry {
        path: if path == "." { "(document)".into() } else { path },
        outcome: Outcome::Unsupported,
        to: None,
        reason: format!("Swell refuses it: {}", e.into_inner()),
    })
}
