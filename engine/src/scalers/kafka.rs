//! `kafka`: consumer-group lag (keda `pkg/scalers/kafka_scaler.go`), through librdkafka
//! (rdkafka): per partition, latest offset − committed offset, with KEDA's rules for missing
//! commits (`offsetResetPolicy`, `scaleToZeroOnInvalidOffset`), `excludePersistentLag`, and
//! the cap at partitions × `lagThreshold` unless `allowIdleConsumers` (or the partitions
//! with lag under `limitToPartitionsWithLag`).
//! Keys: `bootstrapServers`, `consumerGroup`, `topic`, `lagThreshold` (10),
//! `activationLagThreshold` (0), `offsetResetPolicy` (latest | earliest),
//! `allowIdleConsumers`, `scaleToZeroOnInvalidOffset`, `excludePersistentLag`,
//! `limitToPartitionsWithLag` (all false), `sasl` (none | plaintext | scram_sha256 |
//! scram_sha512) with `username` / `password`, `tls` (enable | disable) with `ca`, `cert`,
//! `key` (PEM), `unsafeSsl`.
//!
//! Why librdkafka: the pure-Rust clients lack the consumer-group offset fetch (rskafka) or
//! SASL (kafka-rust); librdkafka has every piece KEDA uses (OffsetFetch, watermarks, SASL
//! PLAIN/SCRAM, TLS) and is the most used Kafka client there is. Its C build costs about two
//! minutes once per cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::pool_use::{PoolUse, Shrink, Users};
use super::{MetricSpec, MetricValue, Scaler, ScalerContext, boolean, number, required};
use crate::{Error, Result};

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetPolicy {
    Latest,
    Earliest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sasl {
    None,
    Plain,
    ScramSha256,
    ScramSha512,
}

#[derive(Clone, PartialEq)]
pub struct KafkaMetadata {
    pub bootstrap_servers: String,
    pub consumer_group: String,
    pub topic: String,
    pub lag_threshold: f64,
    pub activation_lag_threshold: f64,
    pub offset_reset_policy: ResetPolicy,
    pub allow_idle_consumers: bool,
    pub scale_to_zero_on_invalid_offset: bool,
    pub exclude_persistent_lag: bool,
    pub limit_to_partitions_with_lag: bool,
    pub sasl: Sasl,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: bool,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub unsafe_ssl: bool,
}

impl std::fmt::Debug for KafkaMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaMetadata")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("consumer_group", &self.consumer_group)
            .field("topic", &self.topic)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl KafkaMetadata {
    pub fn parse(field: &str, metadata: &BTreeMap<String, String>) -> Result<Self> {
        let key = |k: &str| format!("{field}.metadata.{k}");
        let bootstrap_servers = required(field, metadata, "bootstrapServers")?.trim().to_string();
        if bootstrap_servers.split(',').any(|s| s.trim().rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())) {
            return Err(Error::invalid(key("bootstrapServers"), "must be host:port[,host:port…]"));
        }
        let consumer_group = required(field, metadata, "consumerGroup")?.trim().to_string();
        let topic = required(field, metadata, "topic")?.trim().to_string();
        let lag_threshold = number(field, metadata, "lagThreshold", 10.0)?;
        if !(lag_threshold > 0.0) {
            return Err(Error::invalid(key("lagThreshold"), "must be a number above 0"));
        }
        let activation_lag_threshold = number(field, metadata, "activationLagThreshold", 0.0)?;
        if activation_lag_threshold < 0.0 {
            return Err(Error::invalid(key("activationLagThreshold"), "must be 0 or more"));
        }
        let offset_reset_policy = match metadata.get("offsetResetPolicy").map(|v| v.trim()) {
            None | Some("") | Some("latest") => ResetPolicy::Latest,
            Some("earliest") => ResetPolicy::Earliest,
            Some(other) => return Err(Error::invalid(key("offsetResetPolicy"), format!("{other:?} is not latest or earliest"))),
        };
        let allow_idle_consumers = boolean(field, metadata, "allowIdleConsumers", false)?;
        let limit_to_partitions_with_lag = boolean(field, metadata, "limitToPartitionsWithLag", false)?;
        if allow_idle_consumers && limit_to_partitions_with_lag {
            return Err(Error::invalid(key("limitToPartitionsWithLag"), "cannot be true together with allowIdleConsumers"));
        }
        let sasl = match metadata.get("sasl").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("none") => Sasl::None,
            Some("plaintext") => Sasl::Plain,
            Some("scram_sha256") => Sasl::ScramSha256,
            Some("scram_sha512") => Sasl::ScramSha512,
            Some(other) => return Err(Error::invalid(key("sasl"), format!("{other:?} is not none, plaintext, scram_sha256 or scram_sha512"))),
        };
        let get = |k: &str| metadata.get(k).map(|v| v.to_string()).filter(|v| !v.trim().is_empty());
        let (username, password) = (get("username"), get("password"));
        if sasl != Sasl::None {
            if username.is_none() {
                return Err(Error::invalid(key("username"), "is required with sasl (from a TriggerAuthentication)"));
            }
            if password.is_none() {
                return Err(Error::invalid(key("password"), "is required with sasl (from a TriggerAuthentication)"));
            }
        }
        let tls = match metadata.get("tls").map(|v| v.trim()) {
            None | Some("") | Some("disable") => false,
            Some("enable") => true,
            Some(other) => return Err(Error::invalid(key("tls"), format!("{other:?} is not enable or disable"))),
        };
        let (ca, cert, tls_key) = (get("ca"), get("cert"), get("key"));
        if cert.is_some() != tls_key.is_some() {
            return Err(Error::invalid(key(if cert.is_some() { "key" } else { "cert" }), "cert and key go together"));
        }
        if !tls && (ca.is_some() || cert.is_some()) {
            return Err(Error::invalid(key("tls"), "must be enable to use ca, cert or key"));
        }
        Ok(KafkaMetadata {
            bootstrap_servers,
            consumer_group,
            topic,
            lag_threshold,
            activation_lag_threshold,
            offset_reset_policy,
            allow_idle_consumers,
            scale_to_zero_on_invalid_offset: boolean(field, metadata, "scaleToZeroOnInvalidOffset", false)?,
            exclude_persistent_lag: boolean(field, metadata, "excludePersistentLag", false)?,
            limit_to_partitions_with_lag,
            sasl,
            username,
            password,
            tls,
            ca,
            cert,
            key: tls_key,
            unsafe_ssl: boolean(field, metadata, "unsafeSsl", false)?,
        })
    }

    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("group.id", &self.consumer_group)
            .set("enable.auto.commit", "false")
            .set("socket.timeout.ms", "5000")
            .set("reconnect.backoff.ms", "200")
            .set("reconnect.backoff.max.ms", "30000");
        let protocol = match (self.sasl != Sasl::None, self.tls) {
            (false, false) => "plaintext",
            (false, true) => "ssl",
            (true, false) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        if self.sasl != Sasl::None {
            let mechanism = match self.sasl {
                Sasl::Plain => "PLAIN",
                Sasl::ScramSha256 => "SCRAM-SHA-256",
                _ => "SCRAM-SHA-512",
            };
            c.set("sasl.mechanism", mechanism);
            c.set("sasl.username", self.username.as_deref().unwrap_or_default());
            c.set("sasl.password", self.password.as_deref().unwrap_or_default());
        }
        if let Some(ca) = &self.ca {
            c.set("ssl.ca.pem", ca);
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            c.set("ssl.certificate.pem", cert).set("ssl.key.pem", key);
        }
        if self.unsafe_ssl {
            c.set("enable.ssl.certificate.verification", "false");
        }
        c
    }

    /// The pool key: one client per broker list, group and credentials.
    fn pool_key(&self) -> String {
        format!("{}|{}|{:?}|{}|{:?}", self.bootstrap_servers, self.consumer_group, self.sasl, self.tls, self.username)
    }
}

/// One partition as read from the broker: its latest offset and the group's commit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PartitionOffsets {
    pub partition: i32,
    pub latest: i64,
    pub committed: Option<i64>,
}

/// KEDA's lag rules. Returns (the metric: lag for scaling, capped; the lag for activation,
/// persistent lag included). `previous` holds each partition's last committed offset, for
/// `excludePersistentLag`.
pub fn total_lag(parts: &[PartitionOffsets], previous: &mut HashMap<i32, i64>, m: &KafkaMetadata) -> (f64, f64) {
    let (mut lag, mut with_persistent, mut with_lag) = (0i64, 0i64, 0i64);
    for p in parts {
        let (l, wp) = match p.committed {
            None => match (m.offset_reset_policy, m.scale_to_zero_on_invalid_offset) {
                // No commit yet: latest means the group starts at the end — one replica to start it.
                (ResetPolicy::Latest, false) => (1, 1),
                (ResetPolicy::Latest, true) => (0, 0),
                (ResetPolicy::Earliest, false) => (p.latest, p.latest),
                (ResetPolicy::Earliest, true) => (0, 0),
            },
            Some(committed) => {
                let l = (p.latest - committed).max(0);
                if m.exclude_persistent_lag {
                    match previous.insert(p.partition, committed) {
                        Some(prev) if prev == committed && l > 0 => (0, l),
                        _ => (l, l),
                    }
                } else {
                    (l, l)
                }
            }
        };
        if l > 0 {
            with_lag += 1;
        }
        lag += l;
        with_persistent += wp;
    }
    let mut metric = lag as f64;
    if !m.allow_idle_consumers || m.limit_to_partitions_with_lag {
        let upper = if m.limit_to_partitions_with_lag { with_lag } else { parts.len() as i64 };
        if (lag as f64 / m.lag_threshold).floor() > upper as f64 {
            metric = upper as f64 * m.lag_threshold;
        }
    }
    (metric, with_persistent as f64)
}

/// Offsets read within this long are shared by every scaler of the same group and topic.
pub const SHARED_READ: Duration = Duration::from_millis(500);

/// One librdkafka client per (brokers, group, credentials), shared by every scaler; and one
/// offset read in flight per (client, topic), its result shared for [`SHARED_READ`], so a
/// thousand objects on one group cost one read per half second, not a thousand.
pub struct KafkaPool {
    clients: Mutex<HashMap<String, Arc<BaseConsumer>>>,
    reads: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<(std::time::Instant, Vec<PartitionOffsets>)>>>>>,
    shared_read: Duration,
    /// Users per read key (`<client key>\0<topic>`).
    users: Users,
}

impl Shrink for KafkaPool {
    fn users(&self) -> &Users {
        &self.users
    }

    /// The last scaler of a group and topic went: its shared read goes, and the client too
    /// once no topic of it is read (destroyed off the async threads: librdkafka blocks).
    fn drop_entry(&self, key: &str, in_use: &HashMap<String, usize>) {
        self.reads.lock().expect("kafka reads lock").remove(key);
        let client_key = key.split('\0').next().unwrap_or(key);
        let still_read = in_use.keys().any(|k| k.split('\0').next() == Some(client_key));
        if !still_read {
            if let Some(client) = self.clients.lock().expect("kafka pool lock").remove(client_key) {
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => drop(rt.spawn_blocking(move || drop(client))),
                    Err(_) => drop(client),
                }
            }
        }
    }
}

impl Default for KafkaPool {
    fn default() -> Self {
        KafkaPool::with_shared_read(SHARED_READ)
    }
}

impl KafkaPool {
    fn client(&self, m: &KafkaMetadata) -> Result<Arc<BaseConsumer>> {
        let mut clients = self.clients.lock().expect("kafka pool lock");
        if let Some(c) = clients.get(&m.pool_key()) {
            return Ok(c.clone());
        }
        let c: BaseConsumer = m.client_config().create().map_err(|e| Error::Scaler { scaler: "kafka".into(), message: format!("client: {e}") })?;
        let c = Arc::new(c);
        clients.insert(m.pool_key(), c.clone());
        Ok(c)
    }

    /// A pool whose reads are shared for `shared_read` (zero: every poll reads the broker).
    pub fn with_shared_read(shared_read: Duration) -> Self {
        KafkaPool { clients: Mutex::default(), reads: Mutex::default(), shared_read, users: Users::default() }
    }

    /// Registers a scaler of `m`'s group and topic: the pool keeps its client while it lives.
    pub fn register(self: &Arc<Self>, m: &KafkaMetadata) -> PoolUse {
        PoolUse::new(self.clone(), read_key(m))
    }

    pub fn clients(&self) -> usize {
        self.clients.lock().expect("kafka pool lock").len()
    }

    /// The partitions' offsets of `m`'s group and topic: fresh, or shared from a read less
    /// than [`SHARED_READ`] old (one read in flight at a time).
    async fn offsets(&self, m: &KafkaMetadata) -> std::result::Result<Vec<PartitionOffsets>, String> {
        let key = read_key(m);
        let slot = self.reads.lock().expect("kafka reads lock").entry(key).or_default().clone();
        let mut cached = slot.lock().await;
        if let Some((at, parts)) = cached.as_ref() {
            if at.elapsed() < self.shared_read {
                return Ok(parts.clone());
            }
        }
        let client = self.client(m).map_err(|e| e.to_string())?;
        let topic = m.topic.clone();
        let parts = tokio::task::spawn_blocking(move || read_offsets(&client, &topic)).await.map_err(|e| format!("offset read task: {e}"))??;
        *cached = Some((std::time::Instant::now(), parts.clone()));
        Ok(parts)
    }
}

/// The key of one group and topic's shared read.
fn read_key(m: &KafkaMetadata) -> String {
    format!("{}\0{}", m.pool_key(), m.topic)
}

pub struct KafkaScaler {
    metadata: KafkaMetadata,
    metric_name: String,
    pool: Arc<KafkaPool>,
    previous: Mutex<HashMap<i32, i64>>,
    _use: PoolUse,
}

impl KafkaScaler {
    pub fn new(field: &str, metric_name: String, metadata: &BTreeMap<String, String>, ctx: &ScalerContext) -> Result<Self> {
        let metadata = KafkaMetadata::parse(field, metadata)?;
        let _use = ctx.kafka.register(&metadata);
        Ok(KafkaScaler { metadata, metric_name, pool: ctx.kafka.clone(), previous: Mutex::default(), _use })
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Scaler { scaler: self.metric_name.clone(), message: message.into() }
    }
}

/// Reads every partition's latest and committed offsets (blocking librdkafka calls).
fn read_offsets(client: &BaseConsumer, topic: &str) -> std::result::Result<Vec<PartitionOffsets>, String> {
    let md = client.fetch_metadata(Some(topic), TIMEOUT).map_err(|e| format!("metadata: {e}"))?;
    let t = md.topics().iter().find(|t| t.name() == topic).ok_or_else(|| format!("topic {topic:?} not in the metadata"))?;
    if let Some(e) = t.error() {
        return Err(format!("topic {topic:?}: {e:?}"));
    }
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        tpl.add_partition(topic, p.id());
    }
    let committed = client.committed_offsets(tpl, TIMEOUT).map_err(|e| format!("committed offsets: {e}"))?;
    let mut out = Vec::new();
    for e in committed.elements() {
        let (_, latest) = client.fetch_watermarks(topic, e.partition(), TIMEOUT).map_err(|err| format!("watermarks of partition {}: {err}", e.partition()))?;
        let committed = match e.offset() {
            Offset::Offset(n) if n >= 0 => Some(n),
            _ => None,
        };
        out.push(PartitionOffsets { partition: e.partition(), latest, committed });
    }
    Ok(out)
}

#[async_trait]
impl Scaler for KafkaScaler {
    async fn metrics_and_activity(&self) -> Result<(Vec<MetricValue>, bool)> {
        let parts = self
            .pool
            .offsets(&self.metadata)
            .await
            .map_err(|e| self.error(format!("{} group {:?}: {e}", self.metadata.bootstrap_servers, self.metadata.consumer_group)))?;
        let (metric, activity) = total_lag(&parts, &mut self.previous.lock().expect("previous offsets lock"), &self.metadata);
        Ok((vec![MetricValue { name: self.metric_name.clone(), value: metric }], activity > self.metadata.activation_lag_threshold))
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec { name: self.metric_name.clone(), target: self.metadata.lag_threshold, activation_target: self.metadata.activation_lag_threshold }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const B: (&str, &str) = ("bootstrapServers", "127.0.0.1:9092");
    const G: (&str, &str) = ("consumerGroup", "workers");
    const T: (&str, &str) = ("topic", "orders");

    fn meta(extra: &[(&str, &str)]) -> KafkaMetadata {
        let mut pairs = vec![B, G, T];
        pairs.extend_from_slice(extra);
        KafkaMetadata::parse("t", &map(&pairs)).unwrap()
    }

    #[test]
    fn every_key_has_a_bad_case_naming_it() {
        let m = meta(&[]);
        assert_eq!((m.lag_threshold, m.activation_lag_threshold, m.offset_reset_policy, m.sasl, m.tls), (10.0, 0.0, ResetPolicy::Latest, Sasl::None, false));
        let ok = meta(&[("sasl", "scram_sha512"), ("username", "u"), ("password", "hunter2"), ("tls", "enable"), ("ca", "PEM"), ("cert", "C"), ("key", "K")]);
        assert_eq!(ok.client_config().get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(ok.client_config().get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert!(!format!("{ok:?}").contains("hunter2"));
        let cases: [(&[(&str, &str)], &str); 17] = [
            (&[G, T], "t.metadata.bootstrapServers"),
            (&[("bootstrapServers", "localhost"), G, T], "t.metadata.bootstrapServers"),
            (&[B, T], "t.metadata.consumerGroup"),
            (&[B, G], "t.metadata.topic"),
            (&[B, G, T, ("lagThreshold", "0")], "t.metadata.lagThreshold"),
            (&[B, G, T, ("activationLagThreshold", "-1")], "t.metadata.activationLagThreshold"),
            (&[B, G, T, ("offsetResetPolicy", "middle")], "t.metadata.offsetResetPolicy"),
            (&[B, G, T, ("allowIdleConsumers", "yes")], "t.metadata.allowIdleConsumers"),
            (&[B, G, T, ("allowIdleConsumers", "true"), ("limitToPartitionsWithLag", "true")], "t.metadata.limitToPartitionsWithLag"),
            (&[B, G, T, ("scaleToZeroOnInvalidOffset", "1")], "t.metadata.scaleToZeroOnInvalidOffset"),
            (&[B, G, T, ("excludePersistentLag", "no")], "t.metadata.excludePersistentLag"),
            (&[B, G, T, ("sasl", "kerberos")], "t.metadata.sasl"),
            (&[B, G, T, ("sasl", "plaintext"), ("password", "p")], "t.metadata.username"),
            (&[B, G, T, ("sasl", "plaintext"), ("username", "u")], "t.metadata.password"),
            (&[B, G, T, ("tls", "on")], "t.metadata.tls"),
            (&[B, G, T, ("ca", "PEM")], "t.metadata.tls"),
            (&[B, G, T, ("unsafeSsl", "perhaps")], "t.metadata.unsafeSsl"),
        ];
        for (pairs, field) in cases {
            let err = KafkaMetadata::parse("t", &map(pairs)).unwrap_err().to_string();
            assert!(err.starts_with(field), "{pairs:?}: {err}");
        }
        let err = KafkaMetadata::parse("t", &map(&[B, G, T, ("tls", "enable"), ("cert", "C")])).unwrap_err().to_string();
        assert!(err.starts_with("t.metadata.key"), "{err}");
    }

    fn p(partition: i32, latest: i64, committed: Option<i64>) -> PartitionOffsets {
        PartitionOffsets { partition, latest, committed }
    }

    #[test]
    fn kedas_lag_rules() {
        let mut prev = HashMap::new();
        // Plain lag, summed: (100-95) + (10-0) = 15, under the cap of 2 partitions × 10.
        assert_eq!(total_lag(&[p(0, 100, Some(95)), p(1, 10, Some(0))], &mut prev, &meta(&[])), (15.0, 15.0));
        // Capped at partitions × threshold: 2 partitions × 10 = 20, unless allowIdleConsumers.
        assert_eq!(total_lag(&[p(0, 500, Some(0)), p(1, 10, Some(10))], &mut prev, &meta(&[])), (20.0, 500.0));
        assert_eq!(total_lag(&[p(0, 500, Some(0)), p(1, 10, Some(10))], &mut prev, &meta(&[("allowIdleConsumers", "true")])), (500.0, 500.0));
        // limitToPartitionsWithLag: only 1 partition has lag → cap 10.
        assert_eq!(total_lag(&[p(0, 500, Some(0)), p(1, 10, Some(10))], &mut prev, &meta(&[("limitToPartitionsWithLag", "true")])), (10.0, 500.0));
        // No commit: latest → 1 (or 0 with scaleToZeroOnInvalidOffset); earliest → the whole partition (or 0).
        assert_eq!(total_lag(&[p(0, 7, None)], &mut prev, &meta(&[])), (1.0, 1.0));
        assert_eq!(total_lag(&[p(0, 7, None)], &mut prev, &meta(&[("scaleToZeroOnInvalidOffset", "true")])), (0.0, 0.0));
        assert_eq!(total_lag(&[p(0, 7, None)], &mut prev, &meta(&[("offsetResetPolicy", "earliest")])), (7.0, 7.0));
        assert_eq!(total_lag(&[p(0, 7, None)], &mut prev, &meta(&[("offsetResetPolicy", "earliest"), ("scaleToZeroOnInvalidOffset", "true")])), (0.0, 0.0));
        // excludePersistentLag: a commit that did not move since the last poll does not scale,
        // but still counts for activation.
        let m = meta(&[("excludePersistentLag", "true"), ("allowIdleConsumers", "true")]);
        let mut prev = HashMap::new();
        assert_eq!(total_lag(&[p(0, 50, Some(20))], &mut prev, &m), (30.0, 30.0));
        assert_eq!(total_lag(&[p(0, 60, Some(20))], &mut prev, &m), (0.0, 40.0));
        assert_eq!(total_lag(&[p(0, 60, Some(25))], &mut prev, &m), (35.0, 35.0));
    }
}
