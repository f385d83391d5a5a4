//! The CLI's own file: the Swell servers it knows (contexts, like kubeconfig's) with their
//! API tokens, in `$XDG_CONFIG_HOME/swell/config.toml` (else `~/.config/swell/config.toml`),
//! readable by its owner only.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Failure;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// `http(s)://host:port` of a running `swell serve`.
    pub url: String,
    /// The tenant commands act in unless `--tenant` says otherwise.
    pub tenant: String,
    pub token: String,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("url", &self.url).field("tenant", &self.tenant).field("token", &"***").finish()
    }
}

/// Where the file lives.
pub fn path() -> Result<PathBuf, Failure> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| Failure::Error("HOME is not set: set HOME or XDG_CONFIG_HOME for the CLI's config file".into()))?).join(".config"),
    };
    Ok(base.join("swell").join("config.toml"))
}

pub fn load() -> Result<ClientConfig, Failure> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| Failure::Error(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ClientConfig::default()),
        Err(e) => Err(Failure::Error(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Writes the file whole (a temporary file renamed over it), mode 0600 from the start.
pub fn save(config: &ClientConfig) -> Result<PathBuf, Failure> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = path()?;
    let dir = path.parent().expect("the path has a folder");
    let fail = |what: &str, e: std::io::Error| Failure::Error(format!("cannot {what} {}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(|e| fail("create the folder of", e))?;
    let text = toml::to_string(config).map_err(|e| Failure::Error(format!("config: {e}")))?;
    let tmp = dir.join(format!(".config.toml.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(|e| fail("write", e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| fail("write", e))?;
    file.write_all(text.as_bytes()).and_then(|_| file.sync_all()).map_err(|e| fail("write", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| fail("write", e))?;
    Ok(path)
}

impl ClientConfig {
    /// The context named, else the current one.
    pub fn context(&self, name: Option<&str>) -> Result<(String, Context), Failure> {
        let name = match name.or(self.current_context.as_deref()) {
            Some(n) => n.to_string(),
            None => return Err(Failure::Error("no Swell server yet: run `swell login URL --token-stdin` first".into())),
        };
        let ctx = self.contexts.get(&name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.contexts.keys().map(String::as_str).collect();
            Failure::NotFound(format!("context {name:?}: not in the config file (known: {}); `swell login URL --context {name}` adds it", known.join(", ")))
        })?;
        Ok((name, ctx))
    }
}

/// The context name `login` gives a server when none is asked for: its host and port.
pub fn default_name(url: &str) -> String {
    url.split_once("://").map_or(url, |(_, rest)| rest).trim_end_matches('/').to_string()
}
