//! KEDA manifests (`keda.sh/v1alpha1`) into Swell's and back: every field is kept,
//! translated, kept but unsupported, or dropped with the reason. Used by `swell import-keda`,
//! `swell apply` and the compatibility mode's watcher.

pub mod lease;
mod walk;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Error, Result};

pub const KEDA_GROUP: &str = "keda.sh";
pub const KEDA_API_VERSION: &str = "keda.sh/v1alpha1";
pub const SWELL_API_VERSION: &str = "swell.dev/v1alpha1";
/// The HPA name KEDA gives a ScaledObject's HPA (keda `pkg/scaling/resolver`): compatibility
/// mode keeps it, so KEDA's HPA is taken over rather than a second one made beside it.
pub const KEDA_HPA_PREFIX: &str = "keda-hpa-";

/// What became of one field of the KEDA manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// In Swell's manifest under the same path, meaning the same.
    Kept,
    /// In Swell's manifest under another path or value (`to`).
    Translated,
    /// In Swell's manifest as it was, but Swell refuses the object until it is changed.
    Unsupported,
    /// Not in Swell's manifest (`reason` says why).
    Dropped,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    pub path: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The kinds of `keda.sh/v1alpha1` that Swell has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Kind {
    ScaledObject,
    ScaledJob,
    TriggerAuthentication,
    ClusterTriggerAuthentication,
}

impl Kind {
    pub fn parse(kind: &str) -> Option<Kind> {
        Some(match kind {
            "ScaledObject" => Kind::ScaledObject,
            "ScaledJob" => Kind::ScaledJob,
            "TriggerAuthentication" => Kind::TriggerAuthentication,
            "ClusterTriggerAuthentication" => Kind::ClusterTriggerAuthentication,
            _ => return None,
        })
    }

    /// The plural of the kind's API resource (`scaledobjects`).
    pub fn plural(self) -> String {
        format!("{}s", self.as_str().to_ascii_lowercase())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ScaledObject => "ScaledObject",
            Kind::ScaledJob => "ScaledJob",
            Kind::TriggerAuthentication => "TriggerAuthentication",
            Kind::ClusterTriggerAuthentication => "ClusterTriggerAuthentication",
        }
    }
}

/// A KEDA manifest as Swell's, with the report.
#[derive(Clone, Debug)]
pub struct Imported {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
    pub manifest: Value,
    pub report: Vec<Entry>,
}

impl Imported {
    /// The fields that did not make it, or that Swell will refuse.
    pub fn losses(&self) -> impl Iterator<Item = &Entry> {
        self.report.iter().filter(|e| matches!(e.outcome, Outcome::Dropped | Outcome::Unsupported))
    }

    /// The losses that matter for running the object: server-set metadata and status are
    /// dropped from every object read from a cluster, by design.
    pub fn blocking(&self) -> impl Iterator<Item = &Entry> {
        self.losses().filter(|e| !walk::is_bookkeeping(&e.path))
    }

    /// `namespace/name`, or the name of a cluster-scoped object.
    pub fn display_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Translates one `keda.sh/v1alpha1` document into the `swell.dev/v1alpha1` one.
pub fn import(doc: &Value) -> Result<Imported> {
    let obj = doc.as_object().ok_or_else(|| Error::invalid("(document)", "is not a mapping; a KEDA manifest has apiVersion, kind, metadata and spec"))?;
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if api_version != KEDA_API_VERSION {
        return Err(Error::invalid("apiVersion", format!("{api_version:?} is not {KEDA_API_VERSION}; only KEDA manifests are imported")));
    }
    let kind_text = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let kind = Kind::parse(kind_text).ok_or_else(|| {
        Error::invalid("kind", format!("{kind_text:?}: Swell has ScaledObject, ScaledJob, TriggerAuthentication and ClusterTriggerAuthentication"))
    })?;
    let text = |pointer: &str| doc.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    let name = text("/metadata/name").ok_or_else(|| Error::invalid("metadata.name", "missing; name the object"))?;
    let namespace = text("/metadata/namespace");
    let mut report = Vec::new();
    let mut out = Map::new();
    for (key, value) in obj {
        match key.as_str() {
            "apiVersion" => {
                out.insert(key.clone(), SWELL_API_VERSION.into());
                report.push(Entry { path: "apiVersion".into(), outcome: Outcome::Translated, to: Some(SWELL_API_VERSION.into()), reason: String::new() });
            }
            "kind" => {
                out.insert(key.clone(), value.clone());
                report.push(Entry { path: "kind".into(), outcome: Outcome::Kept, to: None, reason: String::new() });
            }
            "metadata" => {
                if let Some(m) = walk::metadata(value, &mut report) {
                    out.insert(key.clone(), m);
                }
            }
            "spec" => {
                if let Some(spec) = walk::spec(kind, value, &mut report) {
                    out.insert(key.clone(), spec);
                }
            }
            "status" => report.push(walk::dropped("status", "written by the controller; Swell writes its own")),
            other => report.push(walk::dropped(other, "not a field of a Kubernetes object")),
        }
    }
    let manifest = Value::Object(out);
    report.extend(walk::typed_check(kind, &manifest));
    Ok(Imported { kind, namespace, name, manifest, report })
}

/// A Swell manifest back in KEDA's form: the inverse of [`import`] on what it kept.
pub fn export(doc: &Value) -> Value {
    let mut out = doc.clone();
    if let Some(o) = out.as_object_mut() {
        o.insert("apiVersion".into(), KEDA_API_VERSION.into());
    }
    if let Some(identity) = out.pointer_mut("/spec/podIdentity").and_then(Value::as_object_mut)
        && let Some(Value::Object(moved)) = identity.remove("extra")
    {
        for (k, v) in moved {
            identity.insert(k, v);
        }
    }
    out
}

/// KEDA's API resource of `kind`.
pub fn resource(kind: Kind) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(KEDA_GROUP, "v1alpha1", kind.as_str()), &kind.plural())
}

/// A `keda.sh` object read from a cluster, as Swell's manifest with nothing that matters lost:
/// the first field Swell would drop or refuses is the error (`path: reason`). Of KEDA's status
/// it keeps what Swell reads of its own, `lastActiveTime`.
pub fn translate_object(obj: &DynamicObject, kind: Kind) -> std::result::Result<Value, String> {
    let mut doc = serde_json::to_value(obj).map_err(|e| e.to_string())?;
    doc["apiVersion"] = KEDA_API_VERSION.into();
    doc["kind"] = kind.as_str().into();
    let imported = import(&doc).map_err(|e| e.to_string())?;
    if let Some(lost) = imported.blocking().next() {
        return Err(format!("{}: {}", lost.path, lost.reason));
    }
    let mut manifest = imported.manifest;
    if let Some(t) = doc.pointer("/status/lastActiveTime") {
        manifest["status"] = serde_json::json!({ "lastActiveTime": t });
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests;
