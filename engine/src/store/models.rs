//! Model versions of each predictive object: recorded after every training (champion or
//! not), the champion read at start, listed without their bytes, and made champion again on
//! rollback.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, TransactionTrait, sea_query::Expr,
};

use super::entities::model_versions::{self, Column};
use crate::Result;

/// Versions kept per object besides the champion (older ones are deleted as new ones come).
pub const KEEP: i32 = 20;

/// A trained model and how it was judged.
#[derive(Clone, Debug)]
pub struct NewModelVersion {
    pub scaled_object_id: i32,
    pub kind: String,
    pub metric: String,
    pub horizon_secs: i32,
    pub trained_from: DateTime<Utc>,
    pub trained_to: DateTime<Utc>,
    pub validated_to: DateTime<Utc>,
    pub mae: Option<f64>,
    pub mape: Option<f64>,
    pub scored_points: i32,
    pub champion_mae: Option<f64>,
    pub promoted: bool,
    pub reason: String,
    pub model: Vec<u8>,
}

/// A version without its bytes, for lists.
#[derive(Clone, Debug, PartialEq, FromQueryResult, serde::Serialize)]
pub struct VersionInfo {
    pub version: i32,
    pub kind: String,
    pub metric: String,
    pub horizon_secs: i32,
    pub trained_from: DateTime<Utc>,
    pub trained_to: DateTime<Utc>,
    pub validated_to: DateTime<Utc>,
    pub mae: Option<f64>,
    pub mape: Option<f64>,
    pub scored_points: i32,
    pub champion_mae: Option<f64>,
    pub promoted: bool,
    pub is_champion: bool,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

fn nullable(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// Stores a version under the next number; a promoted one becomes the only champion. Returns
/// its number.
pub async fn record(db: &DatabaseConnection, v: NewModelVersion) -> Result<i32> {
    let txn = db.begin().await?;
    let last = model_versions::Entity::find().filter(Column::ScaledObjectId.eq(v.scaled_object_id)).order_by_desc(Column::Version).one(&txn).await?;
    let version = last.map_or(1, |m| m.version + 1);
    if v.promoted {
        model_versions::Entity::update_many().col_expr(Column::IsChampion, Expr::value(false)).filter(Column::ScaledObjectId.eq(v.scaled_object_id)).exec(&txn).await?;
    }
    model_versions::ActiveModel {
        scaled_object_id: Set(v.scaled_object_id),
        version: Set(version),
        kind: Set(v.kind),
        metric: Set(v.metric),
        horizon_secs: Set(v.horizon_secs),
        trained_from: Set(v.trained_from),
        trained_to: Set(v.trained_to),
        validated_to: Set(v.validated_to),
        mae: Set(nullable(v.mae)),
        mape: Set(nullable(v.mape)),
        scored_points: Set(v.scored_points),
        champion_mae: Set(nullable(v.champion_mae)),
        promoted: Set(v.promoted),
        is_champion: Set(v.promoted),
        reason: Set(v.reason),
        model: Set(v.model),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    model_versions::Entity::delete_many()
        .filter(Column::ScaledObjectId.eq(v.scaled_object_id))
        .filter(Column::Version.lte(version - KEEP))
        .filter(Column::IsChampion.eq(false))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(version)
}

/// The object's champion, bytes included.
pub async fn champion(db: &DatabaseConnection, scaled_object_id: i32) -> Result<Option<model_versions::Model>> {
    Ok(model_versions::Entity::find().filter(Column::ScaledObjectId.eq(scaled_object_id)).filter(Column::IsChampion.eq(true)).one(db).await?)
}

/// One version, bytes included.
pub async fn get(db: &DatabaseConnection, scaled_object_id: i32, version: i32) -> Result<Option<model_versions::Model>> {
    Ok(model_versions::Entity::find().filter(Column::ScaledObjectId.eq(scaled_object_id)).filter(Column::Version.eq(version)).one(db).await?)
}

/// Every kept version of an object, newest first, without the bytes.
pub async fn list(db: &DatabaseConnection, scaled_object_id: i32) -> Result<Vec<VersionInfo>> {
    Ok(model_versions::Entity::find()
        .select_only()
        .columns([
            Column::Version,
            Column::Kind,
            Column::Metric,
            Column::HorizonSecs,
            Column::TrainedFrom,
            Column::TrainedTo,
            Column::ValidatedTo,
            Column::Mae,
            Column::Mape,
            Column::ScoredPoints,
            Column::ChampionMae,
            Column::Promoted,
            Column::IsChampion,
            Column::Reason,
            Column::CreatedAt,
        ])
        .filter(Column::ScaledObjectId.eq(scaled_object_id))
        .order_by_desc(Column::Version)
        .into_model::<VersionInfo>()
        .all(db)
        .await?)
}

/// Makes `version` the champion (a rollback), audited. False when there is no such version.
pub async fn make_champion(db: &DatabaseConnection, scaled_object_id: i32, tenant_id: i32, version: i32, actor: &str, target: &str) -> Result<bool> {
    let txn = db.begin().await?;
    let Some(found) = model_versions::Entity::find().filter(Column::ScaledObjectId.eq(scaled_object_id)).filter(Column::Version.eq(version)).one(&txn).await? else {
        return Ok(false);
    };
    let before = model_versions::Entity::find().filter(Column::ScaledObjectId.eq(scaled_object_id)).filter(Column::IsChampion.eq(true)).one(&txn).await?.map(|m| m.version);
    model_versions::Entity::update_many().col_expr(Column::IsChampion, Expr::value(false)).filter(Column::ScaledObjectId.eq(scaled_object_id)).exec(&txn).await?;
    model_versions::Entity::update_many().col_expr(Column::IsChampion, Expr::value(true)).filter(Column::Id.eq(found.id)).exec(&txn).await?;
    super::audit(&txn, Some(tenant_id), actor, "model.rollback", target, serde_json::json!({"from": before, "to": version, "kind": found.kind})).await?;
    txn.commit().await?;
    Ok(true)
}
