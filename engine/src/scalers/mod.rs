//! Event sources. One file per source; `build` is the one alphabetical registry.
//! How to add a source: see README.md beside this file.

mod aws_sqs;
mod cron;
pub mod external;
pub mod kafka;
mod metrics_api;
pub mod pool_use;
mod prometheus;
pub mod rabbitmq;
pub mod simulated;
mod webhook;

use async_trait::async_trait;

use crate::sim::SharedSim;
use crate::spec::Trigger;
use crate::{Error, Result};

/// One metric value a scaler read.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricValue {
    pub name: String,
    pub value: f64,
}

/// What the engine needs to turn a metric into replicas (KEDA's GetMetricSpecForScaling).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSpec {
    pub name: String,
    /// The value one replica should handle (`AverageValue` target).
    pub target: f64,
    /// Above this the source counts as active (KEDA's activation threshold).
    pub activation_target: f64,
}

/// A polled source (KEDA's `Scaler`).
#[async_trait]
pub trait Scaler: Send + Sync {
    /// The current metric values and whether the source is active.
    async fn metrics_and_activity(&self) -> Result<(Vec<MetricValue>, bool)>;
    fn metric_spec(&self) -> MetricSpec;
    async fn close(&self) {}
    /// The push side of this scaler, if it has one.
    fn as_push(&self) -> Option<&dyn PushScaler> {
        None
    }
}

/// A source that pushes (KEDA's `PushScaler`): besides being polled like any scaler, it
/// hands out a stream of change notifications; the engine polls the object at once on each.
pub trait PushScaler: Send + Sync {
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// What scalers share: one HTTP connection pool, the simulated cluster.
#[derive(Clone)]
pub struct ScalerContext {
    pub sim: Option<SharedSim>,
    pub http: reqwest::Client,
    /// Values pushed through webhooks.
    pub push: std::sync::Arc<crate::push::PushBoard>,
    /// One AMQP connection per RabbitMQ broker.
    pub amqp: std::sync::Arc<rabbitmq::AmqpPool>,
    /// One Kafka client per broker list and consumer group.
    pub kafka: std::sync::Arc<kafka::KafkaPool>,
    /// One gRPC channel per external scaler address.
    pub external: external::SharedExternalPool,
}

impl ScalerContext {
    pub fn new(sim: Option<SharedSim>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("an HTTP client with default TLS settings builds");
        ScalerContext { sim, http, push: Default::default(), amqp: Default::default(), kafka: Default::default(), external: Default::default() }
    }

    /// The shared HTTP client, or, with `unsafeSsl: true`, one that skips certificate checks.
    pub fn http_client(&self, field: &str, unsafe_ssl: bool) -> Result<reqwest::Client> {
        if !unsafe_ssl {
            return Ok(self.http.clone());
        }
        reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| Error::invalid(format!("{field}.metadata.unsafeSsl"), e.to_string()))
    }
}

pub const KNOWN_TYPES: &[&str] = &["aws-sqs-queue", "cron", "external", "external-push", "kafka", "metrics-api", "prometheus", "rabbitmq", "simulated", "webhook"];

/// Whose trigger a scaler serves: external scalers are told the object's name and namespace.
#[derive(Clone, Copy, Debug, Default)]
pub struct Owner<'a> {
    pub tenant: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The trigger with resolved authentication parameters (secret values) merged into its
/// metadata, for building its scaler only: the stored spec never holds them.
pub fn with_auth<'a>(trigger: &'a Trigger, params: Option<&std::collections::BTreeMap<String, String>>) -> std::borrow::Cow<'a, Trigger> {
    match params.filter(|p| !p.is_empty()) {
        Some(params) => {
            let mut t = trigger.clone();
            t.metadata.extend(params.clone());
            std::borrow::Cow::Owned(t)
        }
        None => std::borrow::Cow::Borrowed(trigger),
    }
}

/// Builds the scaler for trigger number `index` of a spec owned by `tenant`.
pub fn build(trigger: &Trigger, index: usize, ctx: &ScalerContext, tenant: &str) -> Result<Box<dyn Scaler>> {
    build_for(trigger, index, ctx, Owner { tenant, ..Default::default() })
}

/// Builds the scaler for trigger number `index` of the object `owner`.
pub fn build_for(trigger: &Trigger, index: usize, ctx: &ScalerContext, owner: Owner<'_>) -> Result<Box<dyn Scaler>> {
    let tenant = owner.tenant;
    let field = format!("spec.triggers[{index}]");
    let metric_name = trigger.metric_name(index);
    match trigger.trigger_type.as_str() {
        "aws-sqs-queue" => Ok(Box::new(aws_sqs::SqsScaler::new(&field, metric_name, &trigger.metadata)?)),
        "cron" => Ok(Box::new(cron::CronScaler::new(&field, metric_name, &trigger.metadata)?)),
        "external" => Ok(Box::new(external::ExternalScaler::new(&field, metric_name, &trigger.metadata, ctx, (owner.namespace, owner.name), false)?)),
        "external-push" => Ok(Box::new(external::ExternalScaler::new(&field, metric_name, &trigger.metadata, ctx, (owner.namespace, owner.name), true)?)),
        "kafka" => Ok(Box::new(kafka::KafkaScaler::new(&field, metric_name, &trigger.metadata, ctx)?)),
        "metrics-api" => Ok(Box::new(metrics_api::MetricsApiScaler::new(&field, metric_name, &trigger.metadata, ctx)?)),
        "prometheus" => Ok(Box::new(prometheus::PrometheusScaler::new(&field, metric_name, &trigger.metadata, ctx)?)),
        "rabbitmq" => Ok(Box::new(rabbitmq::RabbitMqScaler::new(&field, metric_name, &trigger.metadata, ctx)?)),
        "simulated" => Ok(Box::new(simulated::SimulatedScaler::new(&field, metric_name, &trigger.metadata, ctx)?)),
        "webhook" => Ok(Box::new(webhook::WebhookScaler::new(&field, metric_name, &trigger.metadata, ctx, tenant)?)),
        other => Err(Error::invalid(
            format!("{field}.type"),
            format!("unknown trigger type {other:?}; known types: {}", KNOWN_TYPES.join(", ")),
        )),
    }
}

/// Reads a required metadata key.
pub(crate) fn required<'a>(
    field: &str,
    metadata: &'a std::collections::BTreeMap<String, String>,
    key: &str,
) -> Result<&'a str> {
    metadata
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Error::invalid(format!("{field}.metadata.{key}"), "is required"))
}

/// Parses an optional number, with a default.
pub(crate) fn number(
    field: &str,
    metadata: &std::collections::BTreeMap<String, String>,
    key: &str,
    default: f64,
) -> Result<f64> {
    match metadata.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| Error::invalid(format!("{field}.metadata.{key}"), format!("{v:?} is not a number"))),
    }
}

/// Parses an optional `true`/`false`, with a default.
pub(crate) fn boolean(field: &str, metadata: &std::collections::BTreeMap<String, String>, key: &str, default: bool) -> Result<bool> {
    match metadata.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(Error::invalid(format!("{field}.metadata.{key}"), format!("{v:?} must be true or false"))),
    }
}
