//! Forecasting the load and guarding against broken metrics (DESIGN §5): a metric's history
//! and its features, forecasters behind one trait (random forest, linear, seasonal naive),
//! the blend of a forecast with the reactive answer, and anomaly guards.

pub mod anomaly;
pub mod blend;
pub mod champion;
pub mod compare;
pub mod config;
pub mod features;
pub mod forecast;
pub mod forest;
pub mod guard;
pub mod linear;
pub mod live;
pub mod replay;
pub mod stored;
pub mod trace_csv;
pub mod trainer;
pub mod tune;

#[cfg(test)]
mod tests;
