//! What the models page reads and does: each predictive object's model versions with their
//! scores, and retraining and rollback.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionRow {
    pub version: i32,
    pub kind: String,
    pub created_at: String,
    pub created_ms: i64,
    pub trained: String,
    pub mae: Option<f64>,
    pub mape: Option<f64>,
    pub champion_mae: Option<f64>,
    pub promoted: bool,
    pub is_champion: bool,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectModels {
    pub id: i32,
    pub name: String,
    pub status: String,
    pub versions: Vec<VersionRow>,
}

/// Every predictive object of the tenant with its kept model versions, newest first.
#[server(client = crate::client::ApiClient, endpoint = "load_models")]
pub async fn load_models(tenant: String) -> Result<Vec<ObjectModels>, ServerFnError> {
    use crate::api::ssr;
    ssr::authorize(&tenant, engine::access::Role::Viewer, "load_models").await?;
    let engine = ssr::engine()?;
    let mut out = Vec::new();
    let mut views = engine.overview(&tenant);
    views.sort_by_key(|v| v.id);
    for v in views.into_iter().filter(|v| v.spec.as_ref().is_some_and(|s| s.predictive.is_some())) {
        let versions = engine.model_versions(&tenant, v.id).await.map_err(ssr::fail)?;
        out.push(ObjectModels {
            id: v.id,
            name: format!("{}/{}", v.namespace, v.name),
            status: v.model_status.unwrap_or_else(|| "not trained yet".into()),
            versions: versions
                .into_iter()
                .map(|m| VersionRow {
                    version: m.version,
                    kind: m.kind,
                    created_at: m.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    created_ms: m.created_at.timestamp_millis(),
                    trained: format!("{} – {}", m.trained_from.format("%m-%d %H:%M"), m.trained_to.format("%m-%d %H:%M")),
                    mae: m.mae,
                    mape: m.mape,
                    champion_mae: m.champion_mae,
                    promoted: m.promoted,
                    is_champion: m.is_champion,
                    reason: m.reason,
                })
                .collect(),
        });
    }
    Ok(out)
}

/// Trains a challenger at the object's next poll (kept only if it beats the champion).
#[server(client = crate::client::ApiClient, endpoint = "retrain_model")]
pub async fn retrain_model(tenant: String, id: i32) -> Result<(), ServerFnError> {
    use crate::api::ssr;
    ssr::authorize(&tenant, engine::access::Role::Operator, "retrain_model").await?;
    ssr::engine()?.retrain_model(&tenant, id).await.map_err(ssr::fail)
}

/// Makes a kept version the champion again.
#[server(client = crate::client::ApiClient, endpoint = "rollback_model")]
pub async fn rollback_model(tenant: String, id: i32, version: i32) -> Result<(), ServerFnError> {
    use crate::api::ssr;
    let who = ssr::authorize(&tenant, engine::access::Role::Operator, "rollback_model").await?;
    ssr::engine()?.rollback_model(&tenant, id, version, &who.actor).await.map_err(ssr::fail)
}

/// Each version's validation MAE over time, as a chart (the champion's line too).
pub fn scores_chart(m: &ObjectModels) -> crate::charts::Chart {
    use crate::charts::{Chart, Line, Marker, BLUE, GREY};
    let mut points: Vec<(i64, f64)> = m.versions.iter().filter_map(|v| Some((v.created_ms, v.mae?))).collect();
    points.sort_by_key(|p| p.0);
    let from = points.first().map_or(0, |p| p.0) - 60_000;
    let to = points.last().map_or(0, |p| p.0) + 60_000;
    Chart {
        id: format!("scores-{}", m.id),
        title: format!("{} model MAE by version", m.name),
        from_ms: from,
        to_ms: to,
        lines: vec![Line { name: "mae".into(), color: BLUE, points, steps: false }],
        levels: m.versions.iter().find(|v| v.is_champion).and_then(|v| v.mae).map(|mae| vec![("champion".to_string(), mae, GREY)]).unwrap_or_default(),
        band: None,
        markers: m
            .versions
            .iter()
            .filter_map(|v| Some(Marker { at_ms: v.created_ms, value: v.mae?, kind: if v.promoted { "promoted".into() } else { "rejected".into() }, text: format!("v{} {}", v.version, v.reason) }))
            .collect(),
    }
}
