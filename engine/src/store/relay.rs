//! The push relay in SQL: a follower appends the webhook pushes it received; the leader reads
//! what others appended since it last looked.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entities::push_relay;
use crate::Result;
use crate::push::PushUpdate;

/// One relayed push.
#[derive(Clone, Debug, PartialEq)]
pub struct Relayed {
    pub id: i64,
    pub tenant: String,
    pub source: String,
    pub update: PushUpdate,
}

pub async fn append(db: &DatabaseConnection, tenant: &str, source: &str, update: PushUpdate, instance: &str) -> Result<()> {
    let (op, value) = match update {
        PushUpdate::Set(v) => ("set", v),
        PushUpdate::Add(v) => ("add", v),
    };
    push_relay::Entity::insert(push_relay::ActiveModel {
        tenant: Set(tenant.into()),
        source: Set(source.into()),
        op: Set(op.into()),
        value: Set(value),
        instance: Set(instance.into()),
        at: Set(Utc::now()),
        ..Default::default()
    })
    .exec(db)
    .await?;
    Ok(())
}

/// The newest id (where a new reader starts: pushes from before it are history).
pub async fn last_id(db: &DatabaseConnection) -> Result<i64> {
    Ok(push_relay::Entity::find().order_by_desc(push_relay::Column::Id).one(db).await?.map_or(0, |r| r.id))
}

/// Pushes after `after` that other instances appended, oldest first, and the id to read
/// after next time (past this instance's own rows too).
pub async fn since(db: &DatabaseConnection, after: i64, instance: &str) -> Result<(i64, Vec<Relayed>)> {
    let rows = push_relay::Entity::find()
        .filter(push_relay::Column::Id.gt(after))
        .order_by_asc(push_relay::Column::Id)
        .limit(1000)
        .all(db)
        .await?;
    let next = rows.last().map_or(after, |r| r.id);
    let pushes = rows
        .into_iter()
        .filter(|r| r.instance != instance)
        .map(|r| Relayed {
            id: r.id,
            tenant: r.tenant,
            source: r.source,
            update: if r.op == "add" { PushUpdate::Add(r.value) } else { PushUpdate::Set(r.value) },
        })
        .collect();
    Ok((next, pushes))
}

/// Forgets relayed pushes older than `before`.
pub async fn prune(db: &DatabaseConnection, before: DateTime<Utc>) -> Result<u64> {
    Ok(push_relay::Entity::delete_many().filter(push_relay::Column::At.lt(before)).exec(db).await?.rows_affected)
}
