//! Login sessions in SQL (the server's tower-sessions store calls these): an opaque record
//! per id with its expiry, and the user it belongs to so revoking the user ends it.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::entities::sessions;
use crate::Result;

/// The record of a live session; an expired one reads as none.
pub async fn load(db: &DatabaseConnection, id: &str, now: DateTime<Utc>) -> Result<Option<(Vec<u8>, DateTime<Utc>)>> {
    Ok(sessions::Entity::find_by_id(id.to_string()).filter(sessions::Column::ExpiresAt.gt(now)).one(db).await?.map(|s| (s.data, s.expires_at)))
}

/// Inserts a new session; false when the id is taken (the caller draws another).
pub async fn create(db: &DatabaseConnection, id: &str, data: Vec<u8>, expires_at: DateTime<Utc>, user_key: Option<String>) -> Result<bool> {
    let row = sessions::ActiveModel { id: Set(id.into()), data: Set(data), expires_at: Set(expires_at), user_key: Set(user_key) };
    match sessions::Entity::insert(row).on_conflict(sea_orm::sea_query::OnConflict::column(sessions::Column::Id).do_nothing().to_owned()).exec_without_returning(db).await? {
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// Writes a session, creating it if needed.
pub async fn save(db: &DatabaseConnection, id: &str, data: Vec<u8>, expires_at: DateTime<Utc>, user_key: Option<String>) -> Result<()> {
    let row = sessions::ActiveModel { id: Set(id.into()), data: Set(data), expires_at: Set(expires_at), user_key: Set(user_key) };
    sessions::Entity::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(sessions::Column::Id)
                .update_columns([sessions::Column::Data, sessions::Column::ExpiresAt, sessions::Column::UserKey])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn delete(db: &DatabaseConnection, id: &str) -> Result<()> {
    sessions::Entity::delete_by_id(id.to_string()).exec(db).await?;
    Ok(())
}

/// Deletes sessions that expired before `now`; returns how many.
pub async fn delete_expired(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64> {
    Ok(sessions::Entity::delete_many().filter(sessions::Column::ExpiresAt.lte(now)).exec(db).await?.rows_affected)
}

/// How many sessions are stored (live or not yet cleaned up).
pub async fn count(db: &DatabaseConnection) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(sessions::Entity::find().count(db).await?)
}

