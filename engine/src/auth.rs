//! Trigger authentication for objects synced from a cluster: a trigger's `authenticationRef`
//! names a TriggerAuthentication (in the object's namespace) or a
//! ClusterTriggerAuthentication (its Secrets in Swell's namespace); `secretTargetRef` reads
//! Secret keys, `env` reads the scale target's container environment (literal values and
//! `secretKeyRef`), `podIdentity` selects the provider's default chain. The values go to the
//! scaler in memory only: never into SQL, logs, errors, metrics or pages. Errors name the
//! field and the object, never a value.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, Secret};
use kube::Client;
use kube::api::Api;

use crate::crd::{ClusterTriggerAuthentication, TriggerAuthentication, TriggerAuthenticationSpec};
use crate::spec::ScaledObjectSpec;
use crate::{Error, Result};

fn kube_error(field: &str, what: &str, e: &kube::Error) -> Error {
    match e {
        kube::Error::Api(s) if s.code == 403 => {
            Error::invalid(field, format!("Swell may not read {what}: grant it (the Helm chart binds its secrets-reader ClusterRole in each namespace of rbac.secretNamespaces)"))
        }
        other => Error::invalid(field, format!("reading {what}: {other}")),
    }
}

async fn secret_value(client: &Client, namespace: &str, name: &str, key: &str, field: &str) -> Result<String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let what = format!("Secret {namespace}/{name}");
    let secret = api.get_opt(name).await.map_err(|e| kube_error(field, &what, &e))?.ok_or_else(|| Error::invalid(field, format!("{what} does not exist")))?;
    let bytes = secret.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone());
    let bytes = bytes
        .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(key)).map(|s| s.clone().into_bytes()))
        .ok_or_else(|| Error::invalid(field, format!("{what} has no key {key:?}")))?;
    String::from_utf8(bytes).map_err(|_| Error::invalid(field, format!("{what} key {key:?} is not UTF-8 text")))
}

/// The scale target's containers (Deployment or StatefulSet), for `env` references.
async fn target_containers(client: &Client, namespace: &str, spec: &ScaledObjectSpec, field: &str) -> Result<Vec<Container>> {
    let t = &spec.scale_target_ref;
    let what = format!("{} {namespace}/{}", t.kind, t.name);
    let pod = match t.kind.as_str() {
        "Deployment" => Api::<Deployment>::namespaced(client.clone(), namespace).get_opt(&t.name).await.map(|d| d.and_then(|d| d.spec).map(|s| s.template)),
        "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), namespace).get_opt(&t.name).await.map(|d| d.and_then(|d| d.spec).map(|s| s.template)),
        other => return Err(Error::invalid(field, format!("env references need a Deployment or StatefulSet target, not {other}"))),
    }
    .map_err(|e| kube_error(field, &what, &e))?
    .ok_or_else(|| Error::invalid(field, format!("{what} does not exist")))?;
    Ok(pod.spec.map(|s| s.containers).unwrap_or_default())
}

/// Something a resolved authentication was read from; when it changes, the object's
/// scalers are built again (rotation without a restart).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthSource {
    TriggerAuthentication { namespace: String, name: String },
    ClusterTriggerAuthentication { name: String },
    Secret { namespace: String, name: String },
}

/// Where `env` references read container environments from.
pub enum EnvFrom<'a> {
    /// A ScaledObject's scale target (Deployment or StatefulSet), read when needed.
    Target(&'a ScaledObjectSpec),
    /// A ScaledJob's Job template.
    Containers(Vec<Container>),
}

/// KEDA's own (Cluster)TriggerAuthentication of that name, translated, when Swell's does not
/// exist: a cluster moving from KEDA keeps its `keda.sh` credentials objects. None when
/// there is none (or KEDA's CRDs are not installed).
async fn keda_trigger_auth(client: &Client, namespace: Option<&str>, name: &str, field: &str) -> Result<Option<TriggerAuthenticationSpec>> {
    use crate::keda::Kind;
    let kind = if namespace.is_some() { Kind::TriggerAuthentication } else { Kind::ClusterTriggerAuthentication };
    let ar = crate::keda::resource(kind);
    let api: Api<kube::api::DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let what = format!("keda.sh {} {}{name}", kind.as_str(), namespace.map(|n| format!("{n}/")).unwrap_or_default());
    // A fallback only: no KEDA CRDs, or no right to read them, is "there is none".
    let obj = match api.get_opt(name).await {
        Ok(Some(obj)) => obj,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::debug!(error = %e, "{what}: not readable");
            return Ok(None);
        }
    };
    let manifest = crate::keda::translate_object(&obj, kind).map_err(|e| Error::invalid(field, format!("{what}: {e}")))?;
    let spec = manifest.get("spec").cloned().unwrap_or_else(|| serde_json::json!({}));
    let spec: TriggerAuthenticationSpec = serde_json::from_value(spec).map_err(|e| Error::invalid(field, format!("{what}: {e}")))?;
    Ok(Some(spec))
}

/// Resolves every trigger's `authenticationRef` (empty maps for triggers without one).
pub async fn resolve(client: &Client, namespace: &str, swell_namespace: &str, spec: &ScaledObjectSpec) -> Result<Vec<BTreeMap<String, String>>> {
    let mut sources = std::collections::BTreeSet::new();
    resolve_tracked(client, namespace, swell_namespace, &spec.triggers, EnvFrom::Target(spec), &mut sources).await
}

/// [`resolve`] for any triggers, recording in `sources` every object the values came from
/// (also when it fails: a missing Secret that appears later is a change too).
pub async fn resolve_tracked(
    client: &Client,
    namespace: &str,
    swell_namespace: &str,
    triggers: &[crate::spec::Trigger],
    env_from: EnvFrom<'_>,
    sources: &mut std::collections::BTreeSet<AuthSource>,
) -> Result<Vec<BTreeMap<String, String>>> {
    let mut out = Vec::with_capacity(triggers.len());
    for (i, trigger) in triggers.iter().enumerate() {
        let Some(r) = &trigger.authentication_ref else {
            out.push(BTreeMap::new());
            continue;
        };
        let field = format!("spec.triggers[{i}].authenticationRef");
        let (auth, secret_ns): (TriggerAuthenticationSpec, &str) = match r.kind.as_deref().unwrap_or("TriggerAuthentication") {
            "TriggerAuthentication" => {
                sources.insert(AuthSource::TriggerAuthentication { namespace: namespace.into(), name: r.name.clone() });
                let what = format!("TriggerAuthentication {namespace}/{}", r.name);
                let ta = Api::<TriggerAuthentication>::namespaced(client.clone(), namespace).get_opt(&r.name).await.map_err(|e| kube_error(&field, &what, &e))?;
                let spec = match ta {
                    Some(ta) => Some(ta.spec),
                    None => keda_trigger_auth(client, Some(namespace), &r.name, &field).await?,
                };
                (spec.ok_or_else(|| Error::invalid(format!("{field}.name"), format!("{what} does not exist")))?, namespace)
            }
            "ClusterTriggerAuthentication" => {
                sources.insert(AuthSource::ClusterTriggerAuthentication { name: r.name.clone() });
                let what = format!("ClusterTriggerAuthentication {}", r.name);
                let cta = Api::<ClusterTriggerAuthentication>::all(client.clone()).get_opt(&r.name).await.map_err(|e| kube_error(&field, &what, &e))?;
                let spec = match cta {
                    Some(cta) => Some(cta.spec.inner),
                    None => keda_trigger_auth(client, None, &r.name, &field).await?,
                };
                (spec.ok_or_else(|| Error::invalid(format!("{field}.name"), format!("{what} does not exist")))?, swell_namespace)
            }
            other => return Err(Error::invalid(format!("{field}.kind"), format!("{other:?} is not TriggerAuthentication or ClusterTriggerAuthentication"))),
        };
        let mut params = BTreeMap::new();
        for (j, s) in auth.secret_target_ref.iter().enumerate() {
            let f = format!("{field} → secretTargetRef[{j}] ({})", s.parameter);
            sources.insert(AuthSource::Secret { namespace: secret_ns.into(), name: s.name.clone() });
            params.insert(s.parameter.clone(), secret_value(client, secret_ns, &s.name, &s.key, &f).await?);
        }
        if !auth.env.is_empty() {
            let containers = match &env_from {
                EnvFrom::Target(spec) => target_containers(client, namespace, spec, &field).await?,
                EnvFrom::Containers(c) => c.clone(),
            };
            for (j, e) in auth.env.iter().enumerate() {
                let f = format!("{field} → env[{j}] ({})", e.parameter);
                // KEDA: a ref without a container reads the target's envSourceContainerName.
                let default_container = match &env_from {
                    EnvFrom::Target(spec) => spec.scale_target_ref.env_source_container_name.as_ref(),
                    EnvFrom::Containers(_) => None,
                };
                let container = match e.container_name.as_ref().or(default_container) {
                    Some(name) => containers.iter().find(|c| &c.name == name).ok_or_else(|| Error::invalid(&f, format!("no container {name:?} in the target")))?,
                    None => containers.first().ok_or_else(|| Error::invalid(&f, "the target has no containers"))?,
                };
                let var = container.env.iter().flatten().find(|v| v.name == e.name).ok_or_else(|| Error::invalid(&f, format!("container {:?} has no env {:?}", container.name, e.name)))?;
                let value = match (&var.value, var.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref())) {
                    (Some(v), _) => v.clone(),
                    (None, Some(sk)) => {
                        sources.insert(AuthSource::Secret { namespace: namespace.into(), name: sk.name.clone() });
                        secret_value(client, namespace, &sk.name, &sk.key, &f).await?
                    }
                    (None, None) => return Err(Error::invalid(&f, format!("env {:?} has neither a value nor a secretKeyRef", e.name))),
                };
                params.insert(e.parameter.clone(), value);
            }
        }
        if let Some(p) = &auth.pod_identity {
            match p.provider.as_str() {
                // The provider's default chain (IRSA for aws) applies when no keys are given.
                "none" | "aws" => {
                    if let Some(arn) = &p.role_arn {
                        params.entry("awsRoleArn".into()).or_insert_with(|| arn.clone());
                    }
                }
                other => return Err(Error::invalid(format!("{field} → podIdentity.provider"), format!("{other:?} is not supported yet (none, aws)"))),
            }
        }
        out.push(params);
    }
    Ok(out)
}
