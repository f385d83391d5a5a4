//! `rabbitmq`: queue length or publish rate (keda `pkg/scalers/rabbitmq_scaler.go`).
//! Keys: `host` (amqp[s]://… or http[s]://… with credentials and vhost), `protocol`
//! (auto | amqp | http; auto picks by the host's scheme), `queueName`, `mode` (QueueLength |
//! MessageRate; with `value`; default QueueLength 20; the old `queueLength` key still
//! works), `activationValue` (0), `excludeUnacknowledged` (false, http), `useRegex` (false,
//! http) with `operation` (sum | max | avg) and `pageSize` (100), `vhostName`, `unsafeSsl`.
//!
//! AMQP: one connection per broker for all objects (the pool in [`AmqpPool`]) with a few
//! shared channels, a passive declare per poll (ready messages). HTTP: the management API through
//! the shared HTTP pool.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use super::pool_use::{PoolUse, Shrink, Users};
use super::{MetricSpec, MetricValue, Scaler, ScalerContext, boolean, number, required};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Amqp,
    Http,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    QueueLength,
    MessageRate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Sum,
    Max,
    Avg,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RabbitMqMetadata {
    pub host: url::Url,
    pub protocol: Protocol,
    pub queue_name: String,
    pub mode: Mode,
    pub value: f64,
    pub activation_value: f64,
    pub exclude_unacknowledged: bool,
    pub use_regex: bool,
    pub operation: Operation,
    pub page_size: u32,
    pub vhost: String,
    pub unsafe_ssl: bool,
}

/// The URL with its password hidden, for messages.
fn redacted(u: &url::Url) -> String {
    let mut u = u.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

impl RabbitMqMetadata {
    pub fn parse(field: &str, metadata: &BTreeMap<String, String>) -> Result<Self> {
        let key = |k: &str| format!("{field}.metadata.{k}");
        let raw = required(field, metadata, "host")?;
        let host = url::Url::parse(raw.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "amqp" | "amqps" | "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| Error::invalid(key("host"), "must be an amqp://, amqps://, http:// or https:// URL with a host"))?;
        let by_scheme = if host.scheme().starts_with("http") { Protocol::Http } else { Protocol::Amqp };
        let protocol = match metadata.get("protocol").map(|p| p.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("auto") => by_scheme,
            Some("amqp") => Protocol::Amqp,
            Some("http") => Protocol::Http,
            Some(other) => return Err(Error::invalid(key("protocol"), format!("{other:?} is not auto, amqp or http"))),
        };
        if protocol != by_scheme {
            return Err(Error::invalid(key("protocol"), format!("{protocol:?} does not match the host's scheme {}", host.scheme())));
        }
        let queue_name = required(field, metadata, "queueName")?.to_string();
        let (mode, value) = match (metadata.get("mode").map(|m| m.trim()), metadata.get("queueLength")) {
            (Some("QueueLength"), _) => (Mode::QueueLength, number(field, metadata, "value", f64::NAN)?),
            (Some("MessageRate"), _) => (Mode::MessageRate, number(field, metadata, "value", f64::NAN)?),
            (Some(other), _) => return Err(Error::invalid(key("mode"), format!("{other:?} is not QueueLength or MessageRate"))),
            (None, Some(_)) => (Mode::QueueLength, number(field, metadata, "queueLength", f64::NAN)?),
            (None, None) if metadata.contains_key("value") => {
                return Err(Error::invalid(key("mode"), "is required with value: QueueLength or MessageRate"));
            }
            (None, None) => (Mode::QueueLength, 20.0),
        };
        if !(value > 0.0) {
            let k = if metadata.contains_key("queueLength") && !metadata.contains_key("mode") { "queueLength" } else { "value" };
            return Err(Error::invalid(key(k), "is required with mode and must be a number above 0"));
        }
        let activation_value = number(field, metadata, "activationValue", 0.0)?;
        if activation_value < 0.0 {
            return Err(Error::invalid(key("activationValue"), "must be 0 or more"));
        }
        let exclude_unacknowledged = boolean(field, metadata, "excludeUnacknowledged", false)?;
        let use_regex = boolean(field, metadata, "useRegex", false)?;
        let operation = match metadata.get("operation").map(|o| o.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("sum") => Operation::Sum,
            Some("max") => Operation::Max,
            Some("avg") => Operation::Avg,
            Some(other) => return Err(Error::invalid(key("operation"), format!("{other:?} is not sum, max or avg"))),
        };
        let page_size = number(field, metadata, "pageSize", 100.0)?;
        if !(1.0..=10_000.0).contains(&page_size) || page_size.fract() != 0.0 {
            return Err(Error::invalid(key("pageSize"), "must be a whole number from 1 to 10000"));
        }
        if protocol == Protocol::Amqp {
            for (k, on) in [("mode", mode == Mode::MessageRate), ("excludeUnacknowledged", exclude_unacknowledged), ("useRegex", use_regex)] {
                if on {
                    return Err(Error::invalid(key(k), "needs the management API: use an http:// host (protocol http)"));
                }
            }
        }
        let from_path = percent_decode(host.path().trim_start_matches('/'));
        let vhost = match metadata.get("vhostName").map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(v) => v.to_string(),
            None if from_path.is_empty() => "/".into(),
            None => from_path,
        };
        Ok(RabbitMqMetadata {
            host,
            protocol,
            queue_name,
            mode,
            value,
            activation_value,
            exclude_unacknowledged,
            use_regex,
            operation,
            page_size: page_size as u32,
            vhost,
            unsafe_ssl: boolean(field, metadata, "unsafeSsl", false)?,
        })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={}", s.replace('+', "%2B")).as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

fn percent_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// One AMQP connection per broker URL, shared by every scaler; reconnects with exponential
/// backoff and jitter after a failure. The map's lock is never held across a connect: each
/// broker has its own lock, so a slow broker stalls only the scalers that use it.
#[derive(Default)]
pub struct AmqpPool {
    brokers: std::sync::Mutex<HashMap<String, Arc<Mutex<Broker>>>>,
    users: Users,
}

impl Shrink for AmqpPool {
    fn users(&self) -> &Users {
        &self.users
    }

    /// The broker's last scaler went: its connection (and channels) close in the background.
    fn drop_entry(&self, key: &str, _in_use: &HashMap<String, usize>) {
        let Some(broker) = self.brokers.lock().expect("brokers lock").remove(key) else { return };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let connection = broker.lock().await.connection.take();
                if let Some(c) = connection.filter(|c| c.status().connected()) {
                    let _ = c.close(200, "no scaler uses this broker".into()).await;
                }
            });
        }
    }
}

#[derive(Default)]
struct Broker {
    connection: Option<Arc<Connection>>,
    failures: u32,
    next_attempt: Option<Instant>,
    /// A few channels shared by every scaler of this broker, handed out in turn (a channel
    /// per object would hit the broker's channel_max, 2,047 by default, near 2,000 objects).
    channels: Vec<Option<Channel>>,
    next_channel: usize,
}

/// Channels per broker connection. A passive declare of a missing queue closes its channel,
/// so the pool drops and reopens that one; the others go on.
const CHANNELS_PER_BROKER: usize = 8;

/// The URI to dial: as the AMQP URI spec and KEDA (Go's amqp091) read it, an empty path or
/// a lone "/" is the default vhost "/", which lapin would otherwise take as vhost "".
pub(crate) fn connect_uri(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.path().is_empty() || u.path() == "/" {
        u.set_path("/%2f");
    }
    u.to_string()
}

impl AmqpPool {
    /// Registers a scaler of the broker at `url`: the pool keeps the broker while it lives.
    pub fn register(self: &Arc<Self>, url: &url::Url) -> PoolUse {
        PoolUse::new(self.clone(), connect_uri(url))
    }

    /// Brokers the pool holds (for tests and benchmarks).
    pub fn brokers(&self) -> usize {
        self.brokers.lock().expect("brokers lock").len()
    }

    /// The live connection to `url`, connecting if there is none (unless backing off).
    pub async fn connection(&self, url: &url::Url) -> Result<Arc<Connection>> {
        let key = connect_uri(url);
        let broker = self.brokers.lock().expect("brokers lock").entry(key.clone()).or_default().clone();
        let mut broker = broker.lock().await;
        if let Some(c) = &broker.connection {
            if c.status().connected() {
                return Ok(c.clone());
            }
            broker.connection = None;
        }
        if let Some(at) = broker.next_attempt.filter(|at| *at > Instant::now()) {
            return Err(Error::Scaler {
                scaler: "rabbitmq".into(),
                message: format!("{} unreachable; reconnecting in {} ms", redacted(url), at.saturating_duration_since(Instant::now()).as_millis()),
            });
        }
        let attempt = tokio::time::timeout(Duration::from_secs(5), Connection::connect(&key, ConnectionProperties::default())).await;
        match attempt {
            Ok(Ok(c)) => {
                let c = Arc::new(c);
                // A new connection: the old one's channels are gone with it.
                *broker = Broker { connection: Some(c.clone()), ..Default::default() };
                Ok(c)
            }
            failed => {
                broker.failures += 1;
                broker.next_attempt = Some(Instant::now() + backoff(broker.failures));
                let why = match failed {
                    Ok(Err(e)) => crate::redact::redact(&e.to_string()),
                    _ => "timed out after 5 s".into(),
                };
                Err(Error::Scaler { scaler: "rabbitmq".into(), message: format!("cannot connect to {}: {why}", redacted(url)) })
            }
        }
    }

    /// A channel on the broker's connection, from its small shared pool.
    pub async fn channel(&self, url: &url::Url) -> Result<Channel> {
        let connection = self.connection(url).await?;
        let broker = self.brokers.lock().expect("brokers lock").get(&connect_uri(url)).cloned().expect("connection() made the entry");
        let mut broker = broker.lock().await;
        if broker.channels.len() != CHANNELS_PER_BROKER {
            broker.channels = vec![None; CHANNELS_PER_BROKER];
        }
        let i = broker.next_channel % CHANNELS_PER_BROKER;
        broker.next_channel = broker.next_channel.wrapping_add(1);
        if let Some(ch) = broker.channels[i].as_ref().filter(|c| c.status().connected()) {
            return Ok(ch.clone());
        }
        let ch = connection
            .create_channel()
            .await
            .map_err(|e| Error::Scaler { scaler: "rabbitmq".into(), message: format!("opening a channel on {}: {e}", redacted(url)) })?;
        broker.channels[i] = Some(ch.clone());
        Ok(ch)
    }

    /// How many channels are open across brokers (for benchmarks and tests).
    pub async fn open_channels(&self) -> usize {
        let brokers: Vec<_> = self.brokers.lock().expect("brokers lock").values().cloned().collect();
        let mut open = 0;
        for b in brokers {
            open += b.lock().await.channels.iter().flatten().filter(|c| c.status().connected()).count();
        }
        open
    }

    /// How many broker connections are open (for benchmarks and tests).
    pub async fn open_connections(&self) -> usize {
        let brokers: Vec<_> = self.brokers.lock().expect("brokers lock").values().cloned().collect();
        let mut open = 0;
        for b in brokers {
            open += b.lock().await.connection.as_ref().is_some_and(|c| c.status().connected()) as usize;
        }
        open
    }
}

/// Exponential from 200 ms to 30 s, with jitter.
fn backoff(failures: u32) -> Duration {
    crate::backoff(failures, Duration::from_millis(200), Duration::from_secs(30))
}

pub struct RabbitMqScaler {
    metadata: RabbitMqMetadata,
    metric_name: String,
    http: reqwest::Client,
    pool: Arc<AmqpPool>,
    /// Keeps this scaler's broker in the pool (AMQP only).
    _use: Option<PoolUse>,
}

impl RabbitMqScaler {
    pub fn new(field: &str, metric_name: String, metadata: &BTreeMap<String, String>, ctx: &ScalerContext) -> Result<Self> {
        let metadata = RabbitMqMetadata::parse(field, metadata)?;
        let http = ctx.http_client(field, metadata.unsafe_ssl)?;
        let _use = (metadata.protocol == Protocol::Amqp).then(|| ctx.amqp.register(&metadata.host));
        Ok(RabbitMqScaler { metadata, metric_name, http, pool: ctx.amqp.clone(), _use })
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Scaler { scaler: self.metric_name.clone(), message: message.into() }
    }

    async fn amqp_value(&self) -> Result<f64> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ch = self.pool.channel(&self.metadata.host).await.map_err(|e| self.error(e.to_string()))?;
            let declared = ch
                .queue_declare(self.metadata.queue_name.as_str().into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default())
                .await;
            match declared {
                Ok(q) => return Ok(q.message_count() as f64),
                // Another object's failed declare closed this shared channel under us: once
                // more on a fresh one. The broker's own answer (no such queue) is final.
                Err(e) if attempt == 1 && !ch.status().connected() && !e.to_string().contains("NOT_FOUND") => continue,
                Err(e) => return Err(self.error(format!("queue {:?} in vhost {:?}: {e}", self.metadata.queue_name, self.metadata.vhost))),
            }
        }
    }

    async fn http_value(&self) -> Result<f64> {
        let m = &self.metadata;
        let mut base = m.host.clone();
        let (user, password) = (base.username().to_string(), base.password().map(str::to_string));
        let _ = base.set_username("");
        let _ = base.set_password(None);
        base.set_path("");
        let vhost = percent_encode(&m.vhost);
        let url = if m.use_regex {
            format!(
                "{}api/queues/{vhost}?page=1&use_regex=true&pagination=true&page_size={}&name={}",
                base,
                m.page_size,
                percent_encode(&m.queue_name)
            )
        } else {
            format!("{}api/queues/{vhost}/{}", base, percent_encode(&m.queue_name))
        };
        let mut req = self.http.get(&url);
        if !user.is_empty() {
            req = req.basic_auth(percent_decode(&user), password.map(|p| percent_decode(&p)));
        }
        let resp = req.send().await.map_err(|e| self.error(format!("management API at {}: {}", redacted(&m.host), e.without_url())))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.error(format!("management API answered {status} for queue {:?} in vhost {:?}", m.queue_name, m.vhost)));
        }
        let doc: serde_json::Value = resp.json().await.map_err(|e| self.error(format!("management API answer is not JSON: {e}")))?;
        let one = |q: &serde_json::Value| -> f64 {
            match m.mode {
                Mode::QueueLength if m.exclude_unacknowledged => q["messages_ready"].as_f64().unwrap_or(0.0),
                Mode::QueueLength => q["messages"].as_f64().unwrap_or(0.0),
                Mode::MessageRate => q["message_stats"]["publish_details"]["rate"].as_f64().unwrap_or(0.0),
            }
        };
        if !m.use_regex {
            return Ok(one(&doc));
        }
        let values: Vec<f64> = doc["items"].as_array().map(|items| items.iter().map(one).collect()).unwrap_or_default();
        if values.is_empty() {
            return Ok(0.0);
        }
        Ok(match m.operation {
            Operation::Sum => values.iter().sum(),
            Operation::Max => values.iter().cloned().fold(f64::MIN, f64::max),
            Operation::Avg => values.iter().sum::<f64>() / values.len() as f64,
        })
    }
}

#[async_trait]
impl Scaler for RabbitMqScaler {
    async fn metrics_and_activity(&self) -> Result<(Vec<MetricValue>, bool)> {
        let value = match self.metadata.protocol {
            Protocol::Amqp => self.amqp_value().await?,
            Protocol::Http => self.http_value().await?,
        };
        Ok((vec![MetricValue { name: self.metric_name.clone(), value }], value > self.metadata.activation_value))
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec { name: self.metric_name.clone(), target: self.metadata.value, activation_target: self.metadata.activation_value }
    }

    // The connection and its channels are shared by every scaler of the broker; the last
    // scaler's PoolUse closes them when it goes.
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const AMQP: (&str, &str) = ("host", "amqp://u:p@127.0.0.1:5672/%2f");
    const HTTP: (&str, &str) = ("host", "http://u:p@127.0.0.1:15672/shop");
    const Q: (&str, &str) = ("queueName", "orders");

    #[test]
    fn defaults_and_good_keys() {
        let m = RabbitMqMetadata::parse("t", &map(&[AMQP, Q])).unwrap();
        assert_eq!((m.protocol, m.mode, m.value, m.activation_value, m.vhost.as_str()), (Protocol::Amqp, Mode::QueueLength, 20.0, 0.0, "/"));
        let m = RabbitMqMetadata::parse(
            "t",
            &map(&[HTTP, Q, ("mode", "MessageRate"), ("value", "50"), ("activationValue", "2"), ("useRegex", "true"), ("operation", "max"), ("pageSize", "10"), ("excludeUnacknowledged", "true")]),
        )
        .unwrap();
        assert_eq!((m.protocol, m.mode, m.value, m.operation, m.page_size, m.vhost.as_str()), (Protocol::Http, Mode::MessageRate, 50.0, Operation::Max, 10, "shop"));
        let m = RabbitMqMetadata::parse("t", &map(&[HTTP, Q, ("queueLength", "7"), ("vhostName", "other")])).unwrap();
        assert_eq!((m.mode, m.value, m.vhost.as_str()), (Mode::QueueLength, 7.0, "other"));
        assert_eq!(RabbitMqMetadata::parse("t", &map(&[HTTP, Q, ("protocol", "http")])).unwrap().protocol, Protocol::Http);
    }

    #[test]
    fn every_key_has_a_bad_case_naming_it() {
        let cases = [
            (map(&[Q]), "t.metadata.host"),
            (map(&[("host", "redis://x"), Q]), "t.metadata.host"),
            (map(&[AMQP, Q, ("protocol", "http")]), "t.metadata.protocol"),
            (map(&[AMQP, Q, ("protocol", "stomp")]), "t.metadata.protocol"),
            (map(&[AMQP]), "t.metadata.queueName"),
            (map(&[AMQP, Q, ("mode", "Bytes"), ("value", "1")]), "t.metadata.mode"),
            (map(&[AMQP, Q, ("value", "5")]), "t.metadata.mode"),
            (map(&[AMQP, Q, ("mode", "QueueLength")]), "t.metadata.value"),
            (map(&[AMQP, Q, ("mode", "QueueLength"), ("value", "-3")]), "t.metadata.value"),
            (map(&[AMQP, Q, ("queueLength", "zero")]), "t.metadata.queueLength"),
            (map(&[AMQP, Q, ("activationValue", "-1")]), "t.metadata.activationValue"),
            (map(&[AMQP, Q, ("mode", "MessageRate"), ("value", "5")]), "t.metadata.mode"),
            (map(&[AMQP, Q, ("excludeUnacknowledged", "true")]), "t.metadata.excludeUnacknowledged"),
            (map(&[HTTP, Q, ("excludeUnacknowledged", "yes")]), "t.metadata.excludeUnacknowledged"),
            (map(&[AMQP, Q, ("useRegex", "true")]), "t.metadata.useRegex"),
            (map(&[HTTP, Q, ("operation", "median")]), "t.metadata.operation"),
            (map(&[HTTP, Q, ("pageSize", "0")]), "t.metadata.pageSize"),
            (map(&[HTTP, Q, ("unsafeSsl", "sometimes")]), "t.metadata.unsafeSsl"),
        ];
        for (m, field) in cases {
            let err = RabbitMqMetadata::parse("t", &m).unwrap_err().to_string();
            assert!(err.starts_with(field), "{m:?}: {err}");
            assert!(!err.contains(":p@"), "password in {err}");
        }
    }

    #[test]
    fn a_trailing_slash_is_the_default_vhost_as_in_keda() {
        let u = |s: &str| super::connect_uri(&url::Url::parse(s).unwrap());
        assert_eq!(u("amqp://guest:guest@127.0.0.1:5672/"), "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(u("amqp://guest:guest@127.0.0.1:5672"), "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(u("amqp://guest:guest@127.0.0.1:5672/shop"), "amqp://guest:guest@127.0.0.1:5672/shop");
        assert_eq!(u("amqp://guest:guest@127.0.0.1:5672/%2f"), "amqp://guest:guest@127.0.0.1:5672/%2f");
    }
}
