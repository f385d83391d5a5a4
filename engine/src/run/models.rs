//! The forecasting models of an object, for the dashboard and the CLI: its versions, a
//! retraining on demand, and a rollback to any kept version.

use super::Engine;
use crate::store::{self, models::VersionInfo};
use crate::{Error, Result};

impl Engine {
    /// Every kept model version of an object, newest first.
    pub async fn model_versions(&self, tenant: &str, object_id: i32) -> Result<Vec<VersionInfo>> {
        self.require_object(tenant, object_id)?;
        store::models::list(&self.inner.db, object_id).await
    }

    /// Trains a challenger at the object's next poll (it still replaces the champion only if
    /// it beats it).
    pub async fn retrain_model(&self, tenant: &str, object_id: i32) -> Result<()> {
        self.require_object(tenant, object_id)?;
        let slot = self.slot(object_id)?;
        let mut obj = slot.runtime.lock().await;
        let p = obj.predictor.as_mut().ok_or_else(|| Error::invalid("predictive.mode", format!("object {object_id} is not predictive: set predictive.mode to on or forecastOnly")))?;
        p.retrain_now();
        Ok(())
    }

    /// Makes `version` the champion again and uses it from the next poll on, exactly as it was
    /// stored; audited with `actor`.
    pub async fn rollback_model(&self, tenant: &str, object_id: i32, version: i32, actor: &str) -> Result<()> {
        let view = self.require_object(tenant, object_id)?;
        let row = store::models::get(&self.inner.db, object_id, version)
            .await?
            .ok_or_else(|| Error::NotFound(format!("model version {version} of scaled object {object_id} (see its versions)")))?;
        let (bytes, mape) = (row.model, row.mape);
        let model = tokio::task::spawn_blocking(move || crate::predict::stored::decode(&bytes))
            .await
            .map_err(|e| Error::invalid("version", format!("decoding stopped: {e}")))?
            .map_err(|e| Error::invalid("version", e))?;
        let slot = self.slot(object_id)?;
        let mut obj = slot.runtime.lock().await;
        let p = obj.predictor.as_mut().ok_or_else(|| Error::invalid("predictive.mode", format!("object {object_id} is not predictive: set predictive.mode to on or forecastOnly")))?;
        let tenant_id = store::find_tenant(&self.inner.db, tenant).await?.map(|t| t.id).ok_or_else(|| Error::NotFound(format!("tenant {tenant}")))?;
        let target = format!("{}/{}", view.namespace, view.name);
        store::models::make_champion(&self.inner.db, object_id, tenant_id, version, actor, &target).await?;
        p.use_model(model, version as u32);
        p.mape = mape;
        Ok(())
    }
}
