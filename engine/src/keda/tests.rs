use serde_json::json;

use super::*;

fn so(spec: Value) -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "a", "namespace": "ns", "uid": "1", "finalizers": ["finalizer.keda.sh"]}, "spec": spec, "status": {"hpaName": "keda-hpa-a"}})
}

fn entry<'a>(i: &'a Imported, path: &str) -> &'a Entry {
    i.report.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("no entry for {path}: {:#?}", i.report))
}

#[test]
fn a_plain_scaled_object_is_kept_field_for_field() {
    let i = import(&so(json!({"scaleTargetRef": {"name": "web", "envSourceContainerName": "app"}, "minReplicaCount": 0, "triggers": [{"type": "rabbitmq", "metadata": {"queueName": "q", "value": "5"}, "authenticationRef": {"name": "rmq"}}]}))).unwrap();
    assert_eq!(i.manifest["apiVersion"], SWELL_API_VERSION);
    assert_eq!(entry(&i, "apiVersion").outcome, Outcome::Translated);
    assert_eq!(entry(&i, "spec.triggers[0].metadata.queueName").outcome, Outcome::Kept);
    assert_eq!(entry(&i, "spec.scaleTargetRef.envSourceContainerName").outcome, Outcome::Kept);
    assert_eq!(i.blocking().count(), 0, "{:#?}", i.report);
    // Server-set metadata and status are dropped, but they block nothing.
    assert_eq!(entry(&i, "metadata.uid").outcome, Outcome::Dropped);
    assert_eq!(entry(&i, "status").outcome, Outcome::Dropped);
    assert!(i.manifest.pointer("/metadata/finalizers").is_none());
    let spec: crate::spec::ScaledObjectSpec = serde_json::from_value(i.manifest["spec"].clone()).unwrap();
    assert_eq!(spec.scale_target_ref.env_source_container_name.as_deref(), Some("app"));
}

#[test]
fn unknown_fields_and_values_are_reported_with_the_reason_never_dropped_silently() {
    let i = import(&so(json!({"scaleTargetRef": {"name": "web"}, "fallback": {"failureThreshold": 3, "replicas": 2, "behavior": "scalingModifiers"}, "bogus": {"x": 1}, "triggers": [{"type": "azure-servicebus", "metadata": {}}]}))).unwrap();
    let bogus = entry(&i, "spec.bogus");
    assert_eq!(bogus.outcome, Outcome::Dropped);
    assert!(bogus.reason.contains("no such field"), "{bogus:?}");
    assert_eq!(entry(&i, "spec.fallback.behavior").outcome, Outcome::Dropped);
    let t = entry(&i, "spec.triggers[0].type");
    assert_eq!(t.outcome, Outcome::Unsupported);
    assert!(t.reason.contains("azure-servicebus"), "{t:?}");
    let blocking: Vec<&str> = i.blocking().map(|e| e.path.as_str()).collect();
    assert_eq!(blocking, ["spec.bogus", "spec.fallback.behavior", "spec.triggers[0].type"]);
    assert!(i.manifest.pointer("/spec/bogus").is_none());
    assert_eq!(i.manifest.pointer("/spec/triggers/0/type"), Some(&json!("azure-servicebus")));
}

#[test]
fn azure_identity_fields_move_to_extra_and_back() {
    let doc = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": {"name": "t"}, "spec": {"podIdentity": {"provider": "azure-workload", "identityOwner": "keda", "identityId": "x"}}});
    let i = import(&doc).unwrap();
    let e = entry(&i, "spec.podIdentity.identityOwner");
    assert_eq!((e.outcome, e.to.as_deref()), (Outcome::Translated, Some("spec.podIdentity.extra.identityOwner")));
    assert_eq!(i.manifest.pointer("/spec/podIdentity/extra/identityOwner"), Some(&json!("keda")));
    assert_eq!(export(&i.manifest), doc);
}

#[test]
fn other_documents_are_refused_naming_the_field() {
    let e = import(&json!({"apiVersion": "swell.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "a"}})).unwrap_err();
    assert!(e.to_string().contains("apiVersion"), "{e}");
    let e = import(&json!({"apiVersion": "keda.sh/v1alpha1", "kind": "CloudEventSource", "metadata": {"name": "a"}})).unwrap_err();
    assert!(e.to_string().contains("kind"), "{e}");
    let e = import(&json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {}})).unwrap_err();
    assert!(e.to_string().contains("metadata.name"), "{e}");
}
