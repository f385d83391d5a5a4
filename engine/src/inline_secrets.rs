//! Credentials written inline in a Swell-made object's trigger metadata (a password, a token,
//! a broker URL with its password): split off before the spec is stored or audited, sealed
//! like a trigger authentication (as `inline/<object>` in the object's namespace), and merged
//! back into the scalers' metadata in memory only.

use std::collections::BTreeMap;

use crate::crd::ScaledJobSpec;
use crate::spec::{ScaledObjectSpec, Trigger};

/// The name the sealed inline credentials of `object` are kept under.
pub fn auth_name(object: &str) -> String {
    format!("inline/{object}")
}

/// Whether a metadata entry carries a credential: by its key (password, secret, token, API
/// or access key, credentials) or by its value (a URL with a password in it).
pub fn is_secret(key: &str, value: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let by_key = ["password", "secret", "token", "apikey", "accesskey", "credential", "sasl"].iter().any(|w| k.contains(w))
        && !k.ends_with("fromenv")
        && !k.ends_with("file");
    by_key || value.contains("://") && url::Url::parse(value.trim()).is_ok_and(|u| url_has_credential(&u))
}

/// A URL with a password, or with a query parameter named like a credential
/// (`?token=…`, `?api_key=…`, `?sig=…`).
fn url_has_credential(u: &url::Url) -> bool {
    let named = |k: &str| {
        let k = k.to_ascii_lowercase().replace(['_', '-'], "");
        ["password", "secret", "token", "key", "sig", "auth", "credential"].iter().any(|w| k.contains(w))
    };
    u.password().is_some() || u.query_pairs().any(|(k, _)| named(&k))
}

/// The spec without its inline credentials, and those credentials per trigger index.
pub fn split(spec: &ScaledObjectSpec) -> (ScaledObjectSpec, BTreeMap<usize, BTreeMap<String, String>>) {
    let mut clean = spec.clone();
    let secrets = split_triggers(&mut clean.triggers);
    (clean, secrets)
}

/// A ScaledJob's spec as Swell keeps a copy of it: without the triggers' inline credentials
/// and with the literal `env[].value`s of its Job template hidden (the cluster has them).
pub fn scrubbed_job_spec(spec: &ScaledJobSpec) -> serde_json::Value {
    let mut clean = spec.clone();
    split_triggers(&mut clean.triggers);
    fn hide_env(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if let (true, serde_json::Value::Array(items)) = (k == "env", &mut *child) {
                        for item in items.iter_mut().filter_map(|i| i.as_object_mut()) {
                            if item.get("value").is_some_and(serde_json::Value::is_string) {
                                item.insert("value".into(), "(hidden)".into());
                            }
                        }
                    } else {
                        hide_env(child);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(hide_env),
            _ => {}
        }
    }
    hide_env(&mut clean.job_target_ref);
    serde_json::to_value(&clean).unwrap_or_default()
}

/// Removes the credentials from the triggers' metadata; returns them per trigger index.
fn split_triggers(triggers: &mut [Trigger]) -> BTreeMap<usize, BTreeMap<String, String>> {
    let mut secrets: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    for (i, t) in triggers.iter_mut().enumerate() {
        let keys: Vec<String> = t.metadata.iter().filter(|(k, v)| is_secret(k, v)).map(|(k, _)| k.clone()).collect();
        for k in keys {
            if let Some(v) = t.metadata.remove(&k) {
                secrets.entry(i).or_default().insert(k, v);
            }
        }
    }
    secrets
}

/// The sealed form: `{"<index>/<key>": value}`.
pub fn flatten(secrets: &BTreeMap<usize, BTreeMap<String, String>>) -> BTreeMap<String, String> {
    secrets.iter().flat_map(|(i, m)| m.iter().map(move |(k, v)| (format!("{i}/{k}"), v.clone()))).collect()
}

/// Back from the sealed form, per trigger index.
pub fn unflatten(flat: &BTreeMap<String, String>) -> BTreeMap<usize, BTreeMap<String, String>> {
    let mut out: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    for (k, v) in flat {
        if let Some((i, key)) = k.split_once('/').and_then(|(i, key)| Some((i.parse().ok()?, key))) {
            out.entry(i).or_default().insert(key.to_string(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_off_and_come_back_per_trigger() {
        let spec: ScaledObjectSpec = serde_json::from_value(serde_json::json!({"scaleTargetRef": {"name": "w"}, "triggers": [
            {"type": "rabbitmq", "metadata": {"host": "amqp://guest:s3cret@10.0.0.1/", "queueName": "jobs", "value": "5"}},
            {"type": "aws-sqs-queue", "metadata": {"queueURL": "https://sqs/q", "awsAccessKeyID": "AKID", "awsSecretAccessKey": "s3cret", "awsRegion": "eu"}},
            {"type": "metrics-api", "metadata": {"url": "http://h/m", "valueLocation": "v", "targetValue": "1"}}]}))
        .unwrap();
        let (clean, secrets) = split(&spec);
        let stored = serde_json::to_string(&clean).unwrap();
        assert!(!stored.contains("s3cret") && !stored.contains("AKID"), "{stored}");
        assert_eq!(clean.triggers[0].metadata.get("queueName").map(String::as_str), Some("jobs"));
        assert_eq!(secrets.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(secrets[&1].keys().cloned().collect::<Vec<_>>(), vec!["awsAccessKeyID".to_string(), "awsSecretAccessKey".to_string()]);
        assert_eq!(unflatten(&flatten(&secrets)), secrets);
        // Settings that name where a credential is, not the credential, stay.
        assert!(!is_secret("passwordFromEnv", "BROKER_PASSWORD") && !is_secret("url", "http://h/m") && is_secret("url", "http://u:p@h/m"));
        assert!(is_secret("url", "http://h/m?api_key=k") && is_secret("url", "https://h/m?x=1&access-token=t") && !is_secret("url", "http://h/m?page=2"));
    }

    #[test]
    fn a_kept_scaled_job_has_neither_inline_credentials_nor_literal_env() {
        let spec: ScaledJobSpec = serde_json::from_value(serde_json::json!({
            "jobTargetRef": {"template": {"spec": {"containers": [{"name": "w", "image": "w:1", "env": [
                {"name": "BROKER", "value": "amqp://u:s3cret@h/"}, {"name": "FROM", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}}},
            "triggers": [{"type": "rabbitmq", "metadata": {"host": "amqp://u:s3cret@h/", "queueName": "jobs"}}]}))
        .unwrap();
        let kept = serde_json::to_string(&scrubbed_job_spec(&spec)).unwrap();
        assert!(!kept.contains("s3cret"), "{kept}");
        assert!(kept.contains("queueName") && kept.contains("secretKeyRef") && kept.contains("BROKER"), "{kept}");
    }
}
