pub mod audit_log;
pub mod clusters;
pub mod decisions;
pub mod metric_samples;
pub mod overrides;
pub mod scaled_objects;
pub mod tenants;
pub mod triggers;
