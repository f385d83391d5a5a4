//! Swell's SQL schema. Every change to the schema is a new migration here; the server runs
//! them at start-up and `swell migrate` runs them on demand.

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_initial;
mod m20261129_000002_cluster_tenant;
mod m20261129_000003_webhook_sources;
mod m20261201_000004_object_state;
mod m20261201_000005_push_relay;
mod m20261202_000006_model_versions;
mod m20261202_000007_tenancy;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_initial::Migration),
            Box::new(m20261129_000002_cluster_tenant::Migration),
            Box::new(m20261129_000003_webhook_sources::Migration),
            Box::new(m20261201_000004_object_state::Migration),
            Box::new(m20261201_000005_push_relay::Migration),
            Box::new(m20261202_000006_model_versions::Migration),
            Box::new(m20261202_000007_tenancy::Migration),
        ]
    }
}
