//! `swell webhook add`: a webhook source with a new secret, sealed in SQL, shown once.

use engine::crypto::{Sealer, random_hex};
use engine::store;

use crate::config::Config;
use crate::hooks::purpose;

pub async fn add(db: &engine::DatabaseConnection, config: &Config, tenant: &str, source: &str) -> anyhow::Result<Result<(), String>> {
    if source.is_empty() || !source.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Ok(Err(format!("source {source:?} may hold only letters, digits, '-' and '_'")));
    }
    let Some(key) = config.secret_key.as_deref() else {
        return Ok(Err("config key secret_key is not set: give 64 hex characters in SWELL_SECRET_KEY (make one with `openssl rand -hex 32`); it seals webhook secrets in SQL".into()));
    };
    let sealer = match Sealer::from_hex(key) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e.to_string())),
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
