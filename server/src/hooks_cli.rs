//! `swell webhook add`: a webhook source with a new secret, sealed in SQL, shown once.

use engine::crypto::random_hex;
use engine::store;

use crate::config::Config;
use crate::hooks::purpose;

pub async fn add(db: &engine::DatabaseConnection, config: &Config, tenant: &str, source: &str) -> anyhow::Result<Result<(), String>> {
    if source.is_empty() || !source.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Ok(Err(format!("source {source:?} may hold only letters, digits, '-' and '_'")));
    }
    let sealer = match config.require_sealer("webhook secrets") {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let secret = random_hex(32)?;
    let t = store::ensure_tenant(db, tenant, tenant).await?;
    store::put_webhook_source(db, t.id, source, sealer.seal(&purpose(tenant, source), secret.as_bytes())?, "cli").await?;
    println!("{secret}");
    eprintln!(
        "webhook source {tenant}/{source} ready: POST /hooks/{tenant}/{source} with X-Swell-Timestamp: <unix seconds> and \
         X-Swell-Signature: sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\" keyed with the secret above>; body {{\"value\": n}} or {{\"add\": n}}. \
         The secret is shown only now."
    );
    Ok(Ok(()))
}

/// `swell auth add`: parameters read from files, sealed as one JSON map in SQL.
pub async fn add_auth(
    db: &engine::DatabaseConnection,
    config: &Config,
    tenant: &str,
    namespace: &str,
    name: &str,
    param_files: &[String],
) -> anyhow::Result<Result<(), String>> {
    if param_files.is_empty() {
        return Ok(Err("--param-file key=path is required (at least one)".into()));
    }
    let mut params = std::collections::BTreeMap::new();
    for p in param_files {
        let Some((key, path)) = p.split_once('=').filter(|(k, p)| !k.trim().is_empty() && !p.trim().is_empty()) else {
            return Ok(Err(format!("--param-file {p:?} must be key=path")));
        };
        match std::fs::read_to_string(path.trim()) {
            Ok(v) => params.insert(key.trim().to_string(), v.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => return Ok(Err(format!("--param-file {key}: cannot read {path}: {e}"))),
        };
    }
    let sealer = match config.require_sealer("trigger authentication") {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let sealed = sealer.seal(&store::trigger_auth_purpose(tenant, namespace, name), &serde_json::to_vec(&params)?)?;
    let t = store::ensure_tenant(db, tenant, tenant).await?;
    let keys: Vec<String> = params.keys().cloned().collect();
    store::put_trigger_auth(db, t.id, namespace, name, &keys, sealed, "cli").await?;
    eprintln!("trigger authentication {namespace}/{name} stored for tenant {tenant} with parameters: {}", keys.join(", "));
    Ok(Ok(()))
}
