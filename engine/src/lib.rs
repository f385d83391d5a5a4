//! Swell's scaling engine: specs, scalers, decisions, actuation, storage. No web code.

pub mod access;
pub mod actuate;
pub mod auth;
pub mod crd;
pub mod crypto;
pub mod decide;
pub mod demo;
mod error;
pub mod external;
pub mod inline_secrets;
pub mod keda;
pub mod lease;
pub mod metrics;
pub mod predict;
pub mod push;
pub mod redact;
mod run;
pub mod scaled_job;
pub mod scalers;
pub mod scheduler;
pub mod sim;
pub mod spec;
pub mod store;
pub mod sync;

pub use error::{Error, Result};

/// Delay before retry number `attempt` (from 1): exponential from `min` to `max`, with
/// jitter (backon). Used for actuation retries and broker reconnects.
pub fn backoff(attempt: u32, min: std::time::Duration, max: std::time::Duration) -> std::time::Duration {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(max)
        .min(max)
}

/// Picks ring as rustls's process-wide crypto provider (the AWS SDK also compiles in
/// aws-lc-rs, and rustls will not choose between two on its own). Idempotent.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
pub use decide::OverrideInput;
pub use run::{ActiveOverride, AuditView, Change, ClusterView, Topic, Touch, JobView, WhatIfEdits, WhatIfLoad, TriggerAuthView, WebhookView, DecisionView, HistoryView, MarkerView, SeriesView, TriggerView, Engine, EngineOptions, ObjectExtras, ObjectView};
pub use sea_orm::DatabaseConnection;
