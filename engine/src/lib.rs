//! Swell's scaling engine: specs, scalers, decisions, actuation, storage. No web code.

pub mod decide;
mod error;
pub mod scalers;
pub mod sim;
pub mod spec;
pub mod store;

pub use error::{Error, Result};
