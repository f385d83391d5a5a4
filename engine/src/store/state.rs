//! The loop state of each ScaledObject that must survive a restart or failover (KEDA keeps it
//! in `status`): read once at start and on becoming leader, written when it changes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::entities::object_state;
use crate::Result;

/// One object's persisted loop state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectState {
    pub last_active: Option<DateTime<Utc>>,
    /// Consecutive failures per metric.
    pub health: BTreeMap<String, u32>,
    /// The target's replicas before Swell first scaled it (restoreToOriginalReplicaCount).
    pub original_replicas: Option<i32>,
    /// When Swell first saw the object (initialCooldownPeriod counts from it).
    pub first_seen: Option<DateTime<Utc>>,
}

fn from_row(row: object_state::Model) -> (i32, ObjectState) {
    let health = serde_json::from_value(row.health).unwrap_or_default();
    (
        row.scaled_object_id,
        ObjectState { last_active: row.last_active_at, health, original_replicas: row.original_replicas, first_seen: Some(row.first_seen_at) },
    )
}

/// Every object's state, by object id.
pub async fn load_all(db: &DatabaseConnection) -> Result<BTreeMap<i32, ObjectState>> {
    Ok(object_state::Entity::find().all(db).await?.into_iter().map(from_row).collect())
}

/// One object's state, if it has any.
pub async fn load(db: &DatabaseConnection, id: i32) -> Result<Option<ObjectState>> {
    Ok(object_state::Entity::find().filter(object_state::Column::ScaledObjectId.eq(id)).one(db).await?.map(|r| from_row(r).1))
}

/// Stores the states in one statement per chunk (insert or replace).
pub async fn save<C: sea_orm::ConnectionTrait>(db: &C, states: &[(i32, ObjectState)], now: DateTime<Utc>) -> Result<()> {
    for chunk in states.chunks(500) {
        let rows = chunk.iter().map(|(id, s)| object_state::ActiveModel {
            scaled_object_id: Set(*id),
            last_active_at: Set(s.last_active),
            health: Set(serde_json::to_value(&s.health).unwrap_or_default()),
            original_replicas: Set(s.original_replicas),
            first_seen_at: Set(s.first_seen.unwrap_or(now)),
            updated_at: Set(now),
        });
        object_state::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(object_state::Column::ScaledObjectId)
                    .update_columns([
                        object_state::Column::LastActiveAt,
                        object_state::Column::Health,
                        object_state::Column::OriginalReplicas,
                        object_state::Column::FirstSeenAt,
                        object_state::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(db)
            .await?;
    }
    Ok(())
}
