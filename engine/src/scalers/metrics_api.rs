//! `metrics-api`: a number from any HTTP JSON endpoint (keda `pkg/scalers/metrics_api_scaler.go`).
//! Keys: `url`, `valueLocation` (a GJSON-style path: `a.b.0.c`), `targetValue` (value per
//! replica), `activationTargetValue` (default 0), `unsafeSsl` (default false). The value may
//! be a JSON number or a quantity string ("5", "500m", "2k").

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{MetricSpec, MetricValue, Scaler, ScalerContext, boolean, number, required};
use crate::spec::parse_quantity;
use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct MetricsApiMetadata {
    pub url: url::Url,
    pub value_location: Vec<String>,
    pub target_value: f64,
    pub activation_target_value: f64,
    pub unsafe_ssl: bool,
}

impl MetricsApiMetadata {
    pub fn parse(field: &str, metadata: &BTreeMap<String, String>) -> Result<Self> {
        let key = |k: &str| format!("{field}.metadata.{k}");
        let raw = required(field, metadata, "url")?;
        let url = url::Url::parse(raw.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::invalid(key("url"), format!("{raw:?} is not an http(s) URL")))?;
        let location = required(field, metadata, "valueLocation")?;
        let value_location: Vec<String> = location.trim().split('.').map(str::to_string).collect();
        if value_location.iter().any(|p| p.is_empty()) {
            return Err(Error::invalid(key("valueLocation"), format!("{location:?} has an empty path segment")));
        }
        let target_value = number(field, metadata, "targetValue", f64::NAN)?;
        if !(target_value > 0.0) {
            return Err(Error::invalid(key("targetValue"), "is required and must be a number above 0"));
        }
        let activation_target_value = number(field, metadata, "activationTargetValue", 0.0)?;
        if activation_target_value < 0.0 {
            return Err(Error::invalid(key("activationTargetValue"), "must be 0 or more"));
        }
        Ok(MetricsApiMetadata { url, value_location, target_value, activation_target_value, unsafe_ssl: boolean(field, metadata, "unsafeSsl", false)? })
    }
}

pub struct MetricsApiScaler {
    metadata: MetricsApiMetadata,
    metric_name: String,
    http: reqwest::Client,
}

impl MetricsApiScaler {
    pub fn new(field: &str, metric_name: String, metadata: &BTreeMap<String, String>, ctx: &ScalerContext) -> Result<Self> {
        let metadata = MetricsApiMetadata::parse(field, metadata)?;
        let http = ctx.http_client(field, metadata.unsafe_ssl)?;
        Ok(MetricsApiScaler { metadata, metric_name, http })
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Scaler { scaler: self.metric_name.clone(), message: message.into() }
    }
}

/// Follows `path` into `doc`; numeric segments index arrays.
fn locate<'a>(doc: &'a serde_json::Value, path: &[String]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(doc, |v, seg| match v {
        serde_json::Value::Array(items) => items.get(seg.parse::<usize>().ok()?),
        serde_json::Value::Object(map) => map.get(seg),
        _ => None,
    })
}

#[async_trait]
impl Scaler for MetricsApiScaler {
    async fn metrics_and_activity(&self) -> Result<(Vec<MetricValue>, bool)> {
        let response = self.http.get(self.metadata.url.clone()).send().await.map_err(|e| self.error(format!("GET {}: {e}", self.metadata.url.path())))?;
        if !response.status().is_success() {
            return Err(self.error(format!("GET {} answered {}", self.metadata.url.path(), response.status())));
        }
        let doc: serde_json::Value = response.json().await.map_err(|e| self.error(format!("the answer is not JSON: {e}")))?;
        let found = locate(&doc, &self.metadata.value_location)
            .ok_or_else(|| self.error(format!("valueLocation {:?} is not in the answer", self.metadata.value_location.join("."))))?;
        let value = match found {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => parse_quantity(s),
            _ => None,
        }
        .filter(|v| v.is_finite())
        .ok_or_else(|| self.error(format!("the value at {:?} is not a number", self.metadata.value_location.join("."))))?;
        Ok((vec![MetricValue { name: self.metric_name.clone(), value }], value > self.metadata.activation_target_value))
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec { name: self.metric_name.clone(), target: self.metadata.target_value, activation_target: self.metadata.activation_target_value }
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
        let ok = MetricsApiMetadata::parse("t", &map(&[("url", "http://127.0.0.1:1/m"), ("valueLocation", "a.0.b"), ("targetValue", "5")])).unwrap();
        assert_eq!(ok.value_location, vec!["a", "0", "b"]);
        assert_eq!((ok.target_value, ok.activation_target_value, ok.unsafe_ssl), (5.0, 0.0, false));
        let bad = [
            (map(&[("valueLocation", "v"), ("targetValue", "5")]), "t.metadata.url"),
            (map(&[("url", "ftp://x"), ("valueLocation", "v"), ("targetValue", "5")]), "t.metadata.url"),
            (map(&[("url", "http://x"), ("targetValue", "5")]), "t.metadata.valueLocation"),
            (map(&[("url", "http://x"), ("valueLocation", "a..b"), ("targetValue", "5")]), "t.metadata.valueLocation"),
            (map(&[("url", "http://x"), ("valueLocation", "v")]), "t.metadata.targetValue"),
            (map(&[("url", "http://x"), ("valueLocation", "v"), ("targetValue", "0")]), "t.metadata.targetValue"),
            (map(&[("url", "http://x"), ("valueLocation", "v"), ("targetValue", "1"), ("activationTargetValue", "-1")]), "t.metadata.activationTargetValue"),
            (map(&[("url", "http://x"), ("valueLocation", "v"), ("targetValue", "1"), ("unsafeSsl", "maybe")]), "t.metadata.unsafeSsl"),
        ];
        for (m, field) in bad {
            let err = MetricsApiMetadata::parse("t", &m).unwrap_err().to_string();
            assert!(err.starts_with(field), "{m:?}: {err}");
        }
    }

    #[test]
    fn locate_follows_objects_and_arrays() {
        let doc = serde_json::json!({"a": [{"b": 3}, {"b": "7"}]});
        let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(locate(&doc, &path("a.0.b")), Some(&serde_json::json!(3)));
        assert_eq!(locate(&doc, &path("a.1.b")), Some(&serde_json::json!("7")));
        assert_eq!(locate(&doc, &path("a.2.b")), None);
        assert_eq!(locate(&doc, &path("a.x")), None);
    }
}
