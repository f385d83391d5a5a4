//! `webhook`: values pushed to `POST /hooks/{tenant}/{source}` (HMAC-signed; see the server's
//! `hooks.rs`). A push scaler: every push wakes the object's poll at once.
//! Keys: `source` (the webhook source name, required), `targetValue` (value per replica,
//! required), `activationTargetValue` (default 0).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{MetricSpec, MetricValue, PushScaler, Scaler, ScalerContext, number, required};
use crate::push::PushBoard;
use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookMetadata {
    pub source: String,
    pub target_value: f64,
    pub activation_target_value: f64,
}

impl WebhookMetadata {
    pub fn parse(field: &str, metadata: &BTreeMap<String, String>) -> Result<Self> {
        let key = |k: &str| format!("{field}.metadata.{k}");
        let source = required(field, metadata, "source")?.trim().to_string();
        if !source.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(Error::invalid(key("source"), format!("{source:?} may hold only letters, digits, '-' and '_'")));
        }
        let target_value = number(field, metadata, "targetValue", f64::NAN)?;
        if !(target_value > 0.0) {
            return Err(Error::invalid(key("targetValue"), "is required and must be a number above 0"));
        }
        let activation_target_value = number(field, metadata, "activationTargetValue", 0.0)?;
        if activation_target_value < 0.0 {
            return Err(Error::invalid(key("activationTargetValue"), "must be 0 or more"));
        }
        Ok(WebhookMetadata { source, target_value, activation_target_value })
    }
}

pub struct WebhookScaler {
    metadata: WebhookMetadata,
    metric_name: String,
    tenant: String,
    board: Arc<PushBoard>,
}

impl WebhookScaler {
    pub fn new(field: &str, metric_name: String, metadata: &BTreeMap<String, String>, ctx: &ScalerContext, tenant: &str) -> Result<Self> {
        Ok(WebhookScaler { metadata: WebhookMetadata::parse(field, metadata)?, metric_name, tenant: tenant.into(), board: ctx.push.clone() })
    }
}

#[async_trait]
impl Scaler for WebhookScaler {
    async fn metrics_and_activity(&self) -> Result<(Vec<MetricValue>, bool)> {
        let value = self.board.value(&self.tenant, &self.metadata.source);
        Ok((vec![MetricValue { name: self.metric_name.clone(), value }], value > self.metadata.activation_target_value))
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec { name: self.metric_name.clone(), target: self.metadata.target_value, activation_target: self.metadata.activation_target_value }
    }

    fn as_push(&self) -> Option<&dyn PushScaler> {
        Some(self)
    }
}

impl PushScaler for WebhookScaler {
    fn changes(&self) -> watch::Receiver<u64> {
        self.board.subscribe(&self.tenant, &self.metadata.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn metadata_table() {
        let ok = WebhookMetadata::parse("t", &map(&[("source", "orders"), ("targetValue", "10"), ("activationTargetValue", "2")])).unwrap();
        assert_eq!(ok, WebhookMetadata { source: "orders".into(), target_value: 10.0, activation_target_value: 2.0 });
        let bad = [
            (map(&[("targetValue", "10")]), "t.metadata.source"),
            (map(&[("source", "a/b"), ("targetValue", "10")]), "t.metadata.source"),
            (map(&[("source", "s")]), "t.metadata.targetValue"),
            (map(&[("source", "s"), ("targetValue", "-1")]), "t.metadata.targetValue"),
            (map(&[("source", "s"), ("targetValue", "1"), ("activationTargetValue", "x")]), "t.metadata.activationTargetValue"),
            (map(&[("source", "s"), ("targetValue", "1"), ("activationTargetValue", "-1")]), "t.metadata.activationTargetValue"),
        ];
        for (m, field) in bad {
            let err = WebhookMetadata::parse("t", &m).unwrap_err().to_string();
            assert!(err.starts_with(field), "{m:?}: {err}");
        }
    }

    #[tokio::test]
    async fn reads_the_pushed_value_of_its_own_tenant() {
        let ctx = ScalerContext::new(None);
        let s = WebhookScaler::new("t", "m".into(), &map(&[("source", "orders"), ("targetValue", "10")]), &ctx, "shop").unwrap();
        let changes = s.as_push().unwrap().changes();
        ctx.push.push("other", "orders", crate::push::PushUpdate::Set(99.0));
        assert_eq!(s.metrics_and_activity().await.unwrap(), (vec![MetricValue { name: "m".into(), value: 0.0 }], false));
        ctx.push.push("shop", "orders", crate::push::PushUpdate::Set(35.0));
        assert!(changes.has_changed().unwrap());
        assert_eq!(s.metrics_and_activity().await.unwrap(), (vec![MetricValue { name: "m".into(), value: 35.0 }], true));
    }
}
