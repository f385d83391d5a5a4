//! `cron`: a desired replica count inside a time window given by two cron patterns
//! (keda `pkg/scalers/cron_scaler.go`). Keys: `timezone` (IANA name), `start`, `end`
//! (five-field cron patterns), `desiredReplicas`. The metric is `desiredReplicas` inside the
//! window and 1 outside, against a target of 1 per replica, so the HPA formula yields
//! exactly `desiredReplicas`.

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

use super::{MetricSpec, MetricValue, Scaler, required};
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct CronMetadata {
    pub timezone: Tz,
    pub start: Cron,
    pub end: Cron,
    pub desired_replicas: i64,
}

impl CronMetadata {
    pub fn parse(field: &str, metadata: &BTreeMap<String, String>) -> Result<Self> {
        let key = |k: &str| format!("{field}.metadata.{k}");
        let tz_name = required(field, metadata, "timezone")?;
        let timezone = Tz::from_str(tz_name.trim())
            .map_err(|_| Error::invalid(key("timezone"), format!("{tz_name:?} is not an IANA time zone such as Europe/Paris or UTC")))?;
        let pattern = |k: &str| -> Result<Cron> {
            let p = required(field, metadata, k)?;
            if p.split_whitespace().count() != 5 {
                return Err(Error::invalid(key(k), format!("{p:?} must have five fields: minute hour day-of-month month day-of-week")));
            }
            Cron::from_str(p).map_err(|e| Error::invalid(key(k), format!("{p:?} is not a cron pattern: {e}")))
        };
        let start = pattern("start")?;
        let end = pattern("end")?;
        if metadata.get("start").map(|s| s.trim()) == metadata.get("end").map(|s| s.trim()) {
            return Err(Error::invalid(key("end"), "must differ from start"));
        }
        let desired = required(field, metadata, "desiredReplicas")?;
        let desired_replicas = desired
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::invalid(key("desiredReplicas"), format!("{desired:?} must be a whole number above 0")))?;
        Ok(CronMetadata { timezone, start, end, desired_replicas })
    }

    /// KEDA: inside the window when the next end comes before the next start.
    pub fn in_window(&self, now: DateTime<Utc>) -> Result<bool> {
        let local = now.with_timezone(&self.timezone);
        let next = |c: &Cron| c.find_next_occurrence(&local, false).map_err(|e| Error::Scaler { scaler: "cron".into(), message: e.to_string() });
        let (next_start, next_end) = (next(&self.start)?, next(&self.end)?);
        Ok(next_end < next_start)
    }
}

pub struct CronScaler {
    metadata: CronMetadata,
    metric_name: String,
}

impl CronScaler {
    pub fn new(field: &str, metric_name: String, metadata: &BTreeMap<String, String>) -> Result<Self> {
        Ok(CronScaler { metadata: CronMetadata::parse(field, metadata)?, metric_name })
    }
}

#[async_trait]
impl Scaler for CronScaler {
    async fn metrics_and_activity(&self) -> Result<(Vec<MetricValue>, bool)> {
        let active = self.metadata.in_window(Utc::now())?;
        let value = if active { self.metadata.desired_replicas as f64 } else { 1.0 };
        Ok((vec![MetricValue { name: self.metric_name.clone(), value }], active))
    }

    fn metric_spec(&self) -> MetricSpec {
        MetricSpec { name: self.metric_name.clone(), target: 1.0, activation_target: 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn good() -> BTreeMap<String, String> {
        map(&[("timezone", "Europe/Paris"), ("start", "0 8 * * 1-5"), ("end", "0 18 * * 1-5"), ("desiredReplicas", "5")])
    }

    #[test]
    fn metadata_table() {
        let m = CronMetadata::parse("t", &good()).unwrap();
        assert_eq!((m.timezone, m.desired_replicas), (chrono_tz::Europe::Paris, 5));
        let with = |k: &str, v: &str| {
            let mut m = good();
            m.insert(k.into(), v.into());
            m
        };
        let without = |k: &str| {
            let mut m = good();
            m.remove(k);
            m
        };
        let bad = [
            (without("timezone"), "t.metadata.timezone"),
            (with("timezone", "Mars/Olympus"), "t.metadata.timezone"),
            (without("start"), "t.metadata.start"),
            (with("start", "0 8 * *"), "t.metadata.start"),
            (with("start", "99 8 * * *"), "t.metadata.start"),
            (without("end"), "t.metadata.end"),
            (with("end", "0 8 * * 1-5"), "t.metadata.end"),
            (without("desiredReplicas"), "t.metadata.desiredReplicas"),
            (with("desiredReplicas", "0"), "t.metadata.desiredReplicas"),
            (with("desiredReplicas", "five"), "t.metadata.desiredReplicas"),
        ];
        for (m, field) in bad {
            let err = CronMetadata::parse("t", &m).unwrap_err().to_string();
            assert!(err.starts_with(field), "{m:?}: {err}");
        }
    }

    #[test]
    fn window_follows_the_time_zone() {
        let m = CronMetadata::parse("t", &good()).unwrap();
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Wednesday 2026-07-01; Paris is UTC+2 in summer.
        assert!(!m.in_window(utc("2026-07-01T05:59:00Z")).unwrap(), "07:59 Paris: before");
        assert!(m.in_window(utc("2026-07-01T06:00:00Z")).unwrap(), "08:00 Paris: starts");
        assert!(m.in_window(utc("2026-07-01T15:59:00Z")).unwrap(), "17:59 Paris: inside");
        assert!(!m.in_window(utc("2026-07-01T16:00:00Z")).unwrap(), "18:00 Paris: ended");
        assert!(!m.in_window(utc("2026-07-04T10:00:00Z")).unwrap(), "Saturday: outside");
    }
}
