//! Layered configuration: defaults → `swell.toml` → `SWELL_*` env (`__` nests) → flags.
//! Unknown keys and bad values are errors that name the key and where it came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub const DEFAULT_CONFIG_FILE: &str = "swell.toml";
const KNOWN_KEYS: &[&str] = &[
    "bind",
    "database_url",
    "site_root",
    "log",
    "retention_days",
    "secret_key",
    "metrics_api_bind",
    "metrics_api_tls_cert",
    "metrics_api_tls_key",
    "leader_election",
    "lease_namespace",
    "lease_name",
    "lease_duration_secs",
    "lease_grace_secs",
    "instance",
    "previous_secret_keys",
    "public_url",
    "cookie_secure",
    "session_ttl_secs",
    "session_cleanup_secs",
    "keda_compat",
];

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the web server listens on.
    pub bind: SocketAddr,
    /// `sqlite://path` (default `./data/swell.db`) or `postgres://user:pass@host/db`.
    pub database_url: String,
    /// Where the built site (`pkg/` with the wasm, js and css) is served from.
    pub site_root: PathBuf,
    /// A tracing filter, e.g. `info` or `swell=debug,info`.
    pub log: String,
    /// Days of decisions and metric samples kept in SQL.
    pub retention_days: u32,
    /// 64 hex characters: the key that seals kubeconfigs and other secrets in SQL. Give it
    /// through the environment (`SWELL_SECRET_KEY`), never in a file under version control.
    pub secret_key: Option<String>,
    /// Where the external metrics API (`external.metrics.k8s.io`, HTTPS) listens for the HPA
    /// controller; served when at least one real cluster is registered.
    pub metrics_api_bind: SocketAddr,
    /// PEM certificate (chain) the external metrics API serves, e.g. from the Helm chart's
    /// Secret, so the APIService can check it against its caBundle. Without it (and
    /// `metrics_api_tls_key`) a self-signed certificate is made at start.
    pub metrics_api_tls_cert: Option<PathBuf>,
    /// PEM private key of `metrics_api_tls_cert`.
    pub metrics_api_tls_key: Option<PathBuf>,
    /// Elect one leader among Swell instances on a Lease in the home cluster (the first
    /// registered); only the leader actuates.
    pub leader_election: bool,
    pub lease_namespace: String,
    pub lease_name: String,
    pub lease_duration_secs: u64,
    pub lease_grace_secs: u64,
    /// This instance's name in the lease (default: host name and process id).
    pub instance: Option<String>,
    /// Keys that sealed secrets before `secret_key` and still open them until retired (left
    /// out); `swell secrets rotate` re-seals everything under `secret_key`.
    pub previous_secret_keys: Vec<String>,
    /// The address users reach the dashboard at (default `http://{bind}`): OIDC redirects
    /// come back to `{public_url}/auth/callback` and Origin checks compare against it.
    pub public_url: Option<String>,
    /// Mark the session cookie Secure even when a request did not come over TLS (behind a
    /// proxy that terminates it and sends no `X-Forwarded-Proto`).
    pub cookie_secure: bool,
    /// How long a sign-in lasts.
    pub session_ttl_secs: u64,
    /// How often expired sessions are deleted from SQL.
    pub session_cleanup_secs: u64,
    /// Also manage KEDA's `keda.sh/v1alpha1` ScaledObjects as Swell's own (a cluster moves
    /// from KEDA by stopping KEDA, no manifest edited). Swell refuses to start while KEDA's
    /// operator holds its leader lease.
    pub keda_compat: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 3000)),
            database_url: "sqlite://data/swell.db".into(),
            site_root: PathBuf::from("target/site"),
            log: "info".into(),
            retention_days: 7,
            secret_key: None,
            metrics_api_bind: SocketAddr::from(([127, 0, 0, 1], 6443)),
            metrics_api_tls_cert: None,
            metrics_api_tls_key: None,
            leader_election: false,
            lease_namespace: "swell".into(),
            lease_name: "swell-leader".into(),
            lease_duration_secs: 15,
            lease_grace_secs: 5,
            instance: None,
            previous_secret_keys: Vec::new(),
            public_url: None,
            cookie_secure: false,
            session_ttl_secs: 43_200,
            session_cleanup_secs: 300,
            keda_compat: false,
        }
    }
}

impl Config {
    /// The sealer of secrets in SQL: `secret_key`, opening also under `previous_secret_keys`.
    /// None when no key is set; a bad key is an error naming its config key.
    pub fn sealer(&self) -> Result<Option<engine::crypto::Sealer>, String> {
        let Some(key) = self.secret_key.as_deref() else {
            return if self.previous_secret_keys.is_empty() { Ok(None) } else { Err("previous_secret_keys is set but secret_key is not: set the new key in SWELL_SECRET_KEY".into()) };
        };
        engine::crypto::Sealer::from_hex(key).and_then(|s| s.with_previous(&self.previous_secret_keys)).map(Some).map_err(|e| e.to_string())
    }

    /// Like [`Config::sealer`], but a missing key is an error saying what it seals (`what`).
    pub fn require_sealer(&self, what: &str) -> Result<engine::crypto::Sealer, String> {
        self.sealer()?.ok_or_else(|| format!("config key secret_key is not set: give 64 hex characters in SWELL_SECRET_KEY (make one with `openssl rand -hex 32`); it seals {what} in SQL"))
    }
}

/// Never print a database password.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("site_root", &self.site_root)
            .field("log", &self.log)
            .field("retention_days", &self.retention_days)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("metrics_api_bind", &self.metrics_api_bind)
            .field("metrics_api_tls_cert", &self.metrics_api_tls_cert)
            .field("leader_election", &self.leader_election)
            .field("keda_compat", &self.keda_compat)
            .field("instance", &self.instance)
            .field("previous_secret_keys", &self.previous_secret_keys.iter().map(|_| "***").collect::<Vec<_>>())
            .field("public_url", &self.public_url)
            .field("cookie_secure", &self.cookie_secure)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .finish()
    }
}

/// The URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL we can parse: show only the scheme, in case the rest holds a secret.
        Err(_) => format!("{}:…", url.split(':').next().unwrap_or("?")),
    }
}

/// Values given as command-line flags (only those actually given override the rest).
#[derive(Default, Serialize)]
pub struct Flags {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// Loads the configuration. `file` is the path given with `--config`; without it
/// `swell.toml` in the working directory is read if present.
pub fn load(file: Option<&Path>, flags: &Flags) -> Result<Config, String> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    match file {
        Some(path) if !path.exists() => {
            return Err(format!("config file {} does not exist (given with --config)", path.display()));
        }
        Some(path) => figment = figment.merge(Toml::file_exact(path)),
        None => figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
    }
    figment = figment.merge(Env::prefixed("SWELL_").split("__")).merge(Serialized::globals(flags));
    extract(figment)
}

/// The configuration a TOML text gives over the defaults (no file, environment or flags);
/// the fuzz target for config files (fuzz/) reads them through it.
#[allow(dead_code)]
pub fn from_toml(text: &str) -> Result<Config, String> {
    extract(Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)))
}

/// The merged layers as a Config, or one line per bad key naming it and its source.
fn extract(figment: Figment) -> Result<Config, String> {
    figment.extract::<Config>().map_err(|errors| {
        errors
            .into_iter()
            .map(|e| {
                // Figment's messages name the key and its source; the value itself is left
                // out because it may be a secret.
                let key = e.path.join(".");
                let source = match &e.metadata {
                    Some(m) => match &m.source {
                        Some(figment::Source::File(path)) => format!("{} {}", m.name, path.display()),
                        _ if m.name.contains("Flags") => "command-line flags".into(),
                        _ => m.name.to_string(),
                    },
                    None => "defaults".into(),
                };
                let what = match &e.kind {
                    figment::error::Kind::UnknownField(field, _) => {
                        let key = if key.is_empty() { field.clone() } else { key };
                        return format!(
                            "unknown config key `{key}` (from {source}); known keys: {}",
                            KNOWN_KEYS.join(", ")
                        );
                    }
                    kind => kind.to_string(),
                };
                format!("bad value for config key `{key}` (from {source}): {what}")
            })
            .collect::<Vec<_>>()
            .join("; ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_documented_with_its_default() {
        let doc = include_str!("../../docs/configuration.md");
        let defaults = serde_json::to_value(Config::default()).unwrap();
        for key in KNOWN_KEYS {
            let row = doc.lines().find(|l| l.starts_with(&format!("| `{key}` |"))).unwrap_or_else(|| panic!("docs/configuration.md has no row for `{key}`"));
            let default = row.split('|').nth(2).unwrap().trim();
            // A default made at start (the host name, the bind address) reads "none (…)".
            if defaults[*key].is_null() {
                assert!(default.starts_with("none"), "docs/configuration.md: the default of `{key}` is none");
                continue;
            }
            let expected = match &defaults[*key] {
                serde_json::Value::String(s) => format!("`{s}`"),
                serde_json::Value::Array(a) if a.is_empty() => "`[]`".to_string(),
                other => format!("`{other}`"),
            };
            assert_eq!(default, expected, "docs/configuration.md: the default of `{key}`");
        }
        let struct_keys = defaults.as_object().unwrap().keys().count();
        assert_eq!(struct_keys, KNOWN_KEYS.len(), "KNOWN_KEYS lists every key of Config");
    }

    #[test]
    fn layers_override_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("swell.toml", "bind = \"127.0.0.1:4000\"\nlog = \"debug\"\nretention_days = 3\n")?;
            jail.set_env("SWELL_LOG", "warn");
            let flags = Flags { bind: Some("127.0.0.1:5000".into()), ..Default::default() };
            let c = load(None, &flags).unwrap();
            assert_eq!(c.bind.port(), 5000, "flag beats file");
            assert_eq!(c.log, "warn", "env beats file");
            assert_eq!(c.retention_days, 3, "file beats default");
            assert_eq!(c.database_url, "sqlite://data/swell.db", "default");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_named_with_their_source() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("swell.toml", "bnd = \"127.0.0.1:4000\"\n")?;
            let err = load(None, &Flags::default()).unwrap_err();
            assert!(err.contains("unknown config key `bnd`") && err.contains("swell.toml"), "{err}");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("SWELL_DATABSE_URL", "sqlite::memory:");
            let err = load(None, &Flags::default()).unwrap_err();
            assert!(err.contains("`databse_url`") && err.contains("SWELL_"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SWELL_BIND", "not-an-address");
            let err = load(None, &Flags::default()).unwrap_err();
            assert!(err.contains("config key `bind`"), "{err}");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.create_file("swell.toml", "retention_days = -1\n")?;
            let err = load(None, &Flags::default()).unwrap_err();
            assert!(err.contains("config key `retention_days`"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn passwords_never_print() {
        assert_eq!(redact_url("postgres://swell:hunter2@db:5432/swell"), "postgres://swell:***@db:5432/swell");
        assert_eq!(redact_url("sqlite://data/swell.db"), "sqlite://data/swell.db");
        let c = Config { database_url: "postgres://u:hunter2@h/db".into(), secret_key: Some("00ff".repeat(16)), ..Default::default() };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("00ff00ff"), "{shown}");
    }
}
