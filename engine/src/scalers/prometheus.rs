//! `prometheus`: the value of an instant PromQL query (keda `pkg/scalers/prometheus_scaler.go`).
//! Keys: `serverAddress`, `query`, `threshold` (value per replica), `activationThreshold`
//! (default 0), `ignoreNullValues` (default true: an empty result or NaN counts as 0),
//! `unsafeSsl` (default false), `customHeaders` (`name=value,name=value`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;

use super::{MetricSpec, MetricValue, Scaler, ScalerContext, boolean, number, required};
use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct PrometheusMetadata {
    pub server_address: url::Url,
    pub query: String,
    pub threshold: f64,
    pub activation_threshold: f64,
    pub ignore_null_values: bool,
    pub unsafe_ssl: bool,
    pub custom_headers: Vec<(String, String)>,
}

impl PrometheusMetadata {
    pub fn parse(field: &str, metadata: &BTreeMap<String, String>) -> Result<Self> {
        let key = |k: &str| format!("{field}.metadata.{k}");
        let address = required(field, metadata, "serverAddress")?;
        let server_address = url::Url::parse(address.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::invalid(key("serverAddress"), format!("{address:?} is not an http(s) URL")))?;
        let query = required(field, metadata, "query")?.to_string();
        let threshold = number(field, metadata, "threshold", f64::NAN)?;
        if !(threshold > 0.0) {
            return Err(Error::invalid(key("threshold"), "is required and must be a number above 0"));
        }
        let activation_threshold = number(field, metadata, "activationThreshold", 0.0)?;
        let mut custom_headers = Vec::new();
        if let Some(raw) = metadata.get("customHeaders").filter(|v| !v.trim().is_empty()) {
            for pair in raw.split(',') {
                let (name, value) = pair
                    .split_once('=')
                    .filter(|(n, _)| !n.trim().is_empty())
                    .ok_or_else(|| Error::invalid(key("customHeaders"), format!("{pair:?} is not name=value")))?;
                custom_headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        Ok(PrometheusMetadata {
            server_address,
            query,
            threshold,
            activation_threshold,
            ignore_null_values: boolean(field, metadata, "ignoreNullValues", true)?,
            unsafe_ssl: boolean(field, metadata, "unsafeSsl", false)?,
            custom_headers,
        })
    }
}

pub struct PrometheusScaler {
    metadata: PrometheusMetadata,
    metric_name: String,
    http: reqwest::Client,
}

impl PrometheusScaler {
    pub fn new(field: &str, metric_name: String, metadata: &BTreeMap<String, String>, ctx: &ScalerContext) -> Result<Self> {
        let metadata = PrometheusMetadata::parse(field, metadata)?;
        let http = ctx.http_client(field, metadata.unsafe_ssl)?;
        Ok(PrometheusScaler { metadata, metric_name, http })
    }

    fn failed(&self, message: impl Into<String>) -> Error {
        Error::Scaler { scaler: self.metric_name.clone(), message: message.into() }
    }

    async fn query(&self) -> Result<f64> {
        let mut url = self.metadata.server_address.clone();
        url.path_segments_mut().map_err(|_| self.failed("serverAddress cannot take a path"))?.pop_if_empty().extend(["api", "v1", "query"]);
        let mut request = self.http.get(url).query(&[("query", self.metadata.query.as_str())]);
        for (name, value) in &self.metadata.custom_headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| self.failed(format!("prometheus unreachable: {e}")))?;
        let status = response.status();
        let body: QueryResponse = response.json().await.map_err(|e| self.failed(format!("prometheus answered {status} with an unreadable body: {e}")))?;
        if body.status != "success" {
            return Err(self.failed(format!("prometheus query failed: {}", body.error.unwrap_or_else(|| status.to_string()))));
        }
        let data = body.data.ok_or_else(|| self.failed("prometheus answered without data"))?;
        let value = match data.result_type.as_str() {
            "scalar" => data.result.get(1).cloned(),
            "vector" => {
                let items = data.result.as_array().cloned().unwrap_or_default();
                if items.len() > 1 {
                    return Err(self.failed(format!("the query returned {} series; it must return one (wrap it in sum() or similar)", items.len())));
                }
                items.first().and_then(|i| i.get("value")).and_then(|v| v.get(1)).cloned()
            }
            other => return Err(self.failed(format!("result type {other:?} is not supported; use an instant vector or scalar"))),
        };
        let parsed = value.as_ref().and_then(|v| v.as_str()).and_then(|s| s.parse::<f64>().ok());
        match parsed {
            Some(v) if v.is_finite() => Ok(v),
            _ if self.metadata.ignore_null_values => Ok(0.0),
            None => Err(self.failed("the query returned no value (set ignoreNullValues to treat that as 0)")),
            Some(v) => Err(self.failed(format!("the query returned {v} (set ignoreNullValues to treat that as 0)"))),
        }
    }
}

#[derive(Deserialize)]
struct QueryResponse {
    status: String,
    data: Option<QueryData>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[async_trait]
impl Scaler for PrometheusScaler {
    async fn metrics_and_activity(&self) -> Result<(Vec<MetricValue>, bool)> {
        let value = self.query().await?;
        Ok((vec![MetricValue { name: self.metric_name.clone(), value }], value > self.metadata.activation_threshold))
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec { name: self.metric_name.clone(), target: self.metadata.threshold, activation_target: self.metadata.activation_threshold }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> BTreeMap<String, String> {
        [("serverAddress", "http://127.0.0.1:9090"), ("query", "sum(rate(http_requests_total[1m]))"), ("threshold", "100")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn metadata_table() {
        let m = PrometheusMetadata::parse("t", &good()).unwrap();
        assert_eq!((m.threshold, m.activation_threshold, m.ignore_null_values, m.unsafe_ssl), (100.0, 0.0, true, false));
        let with = |pairs: &[(&str, &str)]| {
            let mut m = good();
            for (k, v) in pairs {
                m.insert(k.to_string(), v.to_string());
            }
            m
        };
        let m = PrometheusMetadata::parse("t", &with(&[("activationThreshold", "5"), ("ignoreNullValues", "false"), ("unsafeSsl", "true"), ("customHeaders", "X-Scope-OrgID=team-a, X-Other = b")])).unwrap();
        assert_eq!((m.activation_threshold, m.ignore_null_values, m.unsafe_ssl), (5.0, false, true));
        assert_eq!(m.custom_headers, [("X-Scope-OrgID".to_string(), "team-a".to_string()), ("X-Other".to_string(), "b".to_string())]);
        let without = |k: &str| {
            let mut m = good();
            m.remove(k);
            m
        };
        let bad = [
            (without("serverAddress"), "t.metadata.serverAddress"),
            (with(&[("serverAddress", "ftp://x")]), "t.metadata.serverAddress"),
            (with(&[("serverAddress", "not a url")]), "t.metadata.serverAddress"),
            (without("query"), "t.metadata.query"),
            (without("threshold"), "t.metadata.threshold"),
            (with(&[("threshold", "0")]), "t.metadata.threshold"),
            (with(&[("threshold", "many")]), "t.metadata.threshold"),
            (with(&[("activationThreshold", "x")]), "t.metadata.activationThreshold"),
            (with(&[("ignoreNullValues", "maybe")]), "t.metadata.ignoreNullValues"),
            (with(&[("unsafeSsl", "1")]), "t.metadata.unsafeSsl"),
            (with(&[("customHeaders", "novalue")]), "t.metadata.customHeaders"),
        ];
        for (m, field) in bad {
            let err = PrometheusMetadata::parse("t", &m).unwrap_err().to_string();
            assert!(err.starts_with(field), "{m:?}: {err}");
        }
    }
}
