//! `external` and `external-push`: scalers that speak KEDA's external scaler gRPC protocol
//! (proto/externalscaler.proto), so any scaler written for KEDA plugs into Swell.
//! Keys: `scalerAddress` (host:port, required); every key is also sent to the scaler as
//! `scalerMetadata`, as KEDA does. `external-push` also holds a `StreamIsActive` stream
//! open and polls the object at once whenever the scaler pushes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};

use super::{MetricSpec, MetricValue, PushScaler, Scaler, ScalerContext, required};
use crate::{Error, Result};

pub mod proto {
    tonic::include_proto!("externalscaler");
}

use proto::external_scaler_client::ExternalScalerClient;

/// One gRPC channel (HTTP/2, multiplexed) per scaler address.
#[derive(Default)]
pub struct ExternalPool {
    channels: Mutex<HashMap<String, Channel>>,
}

impl ExternalPool {
    fn channel(&self, address: &str) -> Result<Channel> {
        let mut channels = self.channels.lock().expect("external pool lock");
        if let Some(c) = channels.get(address) {
            return Ok(c.clone());
        }
        let uri = if address.contains("://") { address.to_string() } else { format!("http://{address}") };
        let channel = Endpoint::from_shared(uri)
            .map_err(|e| Error::invalid("scalerAddress", format!("{address:?}: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        channels.insert(address.to_string(), channel.clone());
        Ok(channel)
    }
}

pub struct ExternalScaler {
    reference: proto::ScaledObjectRef,
    metric_name: String,
    client: ExternalScalerClient<Channel>,
    /// The scaler's own metric spec, asked once (GetMetricSpec).
    spec: Mutex<Option<(String, f64)>>,
    push: Option<(watch::Receiver<u64>, tokio::task::JoinHandle<()>)>,
}

impl Drop for ExternalScaler {
    fn drop(&mut self) {
        if let Some((_, task)) = &self.push {
            task.abort();
        }
    }
}

impl ExternalScaler {
    /// `object` is (namespace, name) of the ScaledObject, sent to the scaler as KEDA does.
    pub fn new(field: &str, metric_name: String, metadata: &BTreeMap<String, String>, ctx: &ScalerContext, object: (&str, &str), push: bool) -> Result<Self> {
        let address = required(field, metadata, "scalerAddress")?.trim().to_string();
        let channel = ctx.external.channel(&address).map_err(|e| match e {
            Error::Invalid { message, .. } => Error::invalid(format!("{field}.metadata.scalerAddress"), message),
            other => other,
        })?;
        let reference = proto::ScaledObjectRef {
            name: object.1.to_string(),
            namespace: object.0.to_string(),
            scaler_metadata: metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        let client = ExternalScalerClient::new(channel);
        let push = push.then(|| {
            let (tx, rx) = watch::channel(0u64);
            let (mut client, reference) = (client.clone(), reference.clone());
            let task = tokio::spawn(async move {
                let mut failures = 0u32;
                loop {
                    if let Ok(response) = client.stream_is_active(reference.clone()).await {
                        failures = 0;
                        let mut stream = response.into_inner();
                        while let Ok(Some(_)) = stream.message().await {
                            tx.send_modify(|n| *n += 1);
                        }
                    }
                    // The stream ended or could not start: reconnect with backoff and jitter.
                    failures += 1;
                    let delay = crate::backoff(failures, Duration::from_millis(200), Duration::from_secs(30));
                    tokio::time::sleep(delay).await;
                }
            });
            (rx, task)
        });
        Ok(ExternalScaler { reference, metric_name, client, spec: Mutex::new(None), push })
    }

    fn error(&self, what: &str, status: tonic::Status) -> Error {
        Error::Scaler { scaler: self.metric_name.clone(), message: format!("{what}: {} ({:?})", status.message(), status.code()) }
    }

    async fn spec(&self) -> Result<(String, f64)> {
        if let Some(s) = self.spec.lock().expect("spec lock").clone() {
            return Ok(s);
        }
        let resp = self.client.clone().get_metric_spec(self.reference.clone()).await.map_err(|s| self.error("GetMetricSpec", s))?.into_inner();
        let first = resp.metric_specs.first().ok_or_else(|| Error::Scaler { scaler: self.metric_name.clone(), message: "GetMetricSpec returned no metric".into() })?;
        let target = if first.target_size_float > 0.0 { first.target_size_float } else { first.target_size as f64 };
        if !(target > 0.0) {
            return Err(Error::Scaler { scaler: self.metric_name.clone(), message: format!("metric {} has target {target}; it must be above 0", first.metric_name) });
        }
        let s = (first.metric_name.clone(), target);
        *self.spec.lock().expect("spec lock") = Some(s.clone());
        Ok(s)
    }
}

#[async_trait]
impl Scaler for ExternalScaler {
    async fn metrics_and_activity(&self) -> Result<(Vec<MetricValue>, bool)> {
        let (name, _) = self.spec().await?;
        let mut client = self.client.clone();
        let request = proto::GetMetricsRequest { scaled_object_ref: Some(self.reference.clone()), metric_name: name };
        let metrics = client.get_metrics(request).await.map_err(|s| self.error("GetMetrics", s))?.into_inner();
        let value: f64 = metrics.metric_values.iter().map(|v| if v.metric_value_float != 0.0 { v.metric_value_float } else { v.metric_value as f64 }).sum();
        let active = client.is_active(self.reference.clone()).await.map_err(|s| self.error("IsActive", s))?.into_inner().result;
        Ok((vec![MetricValue { name: self.metric_name.clone(), value }], active))
    }

    fn metric_spec(&self) -> MetricSpec {
        let target = self.spec.lock().expect("spec lock").as_ref().map_or(1.0, |s| s.1);
        MetricSpec { name: self.metric_name.clone(), target, activation_target: 0.0 }
    }

    fn as_push(&self) -> Option<&dyn PushScaler> {
        self.push.as_ref().map(|_| self as &dyn PushScaler)
    }
}

impl PushScaler for ExternalScaler {
    fn changes(&self) -> watch::Receiver<u64> {
        self.push.as_ref().map(|(rx, _)| rx.clone()).expect("only push scalers are asked for changes")
    }
}

/// A channel pool shared through the scaler context.
pub type SharedExternalPool = Arc<ExternalPool>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scaler_address_is_required_and_must_be_a_uri() {
        let ctx = ScalerContext::new(None);
        let build = |pairs: &[(&str, &str)]| {
            let m: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            ExternalScaler::new("t", "m".into(), &m, &ctx, ("ns", "o"), false).map(|_| ())
        };
        assert!(build(&[("scalerAddress", "127.0.0.1:9000"), ("anything", "goes")]).is_ok());
        for (pairs, want) in [(&[][..], "t.metadata.scalerAddress"), (&[("scalerAddress", "not a uri")][..], "t.metadata.scalerAddress")] {
            let err = build(pairs).unwrap_err().to_string();
            assert!(err.starts_with(want), "{pairs:?}: {err}");
        }
    }
}
