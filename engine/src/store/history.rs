//! Decisions and metric samples: the batched writes of every poll, the reads of the
//! dashboard and the what-if, and their retention.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};

use super::entities::{audit_log, decisions, metric_samples, scaled_objects};
use super::state;
use crate::Result;

/// A decision ready to be written.
#[derive(Clone, Debug)]
pub struct NewDecision {
    pub scaled_object_id: i32,
    pub at: DateTime<Utc>,
    pub state: String,
    pub rule: String,
    pub prev_replicas: i32,
    pub new_replicas: i32,
    pub explanation: String,
    pub inputs: serde_json::Value,
}

#[derive(Clone, Debug)]
pub struct NewSample {
    pub scaled_object_id: i32,
    pub metric: String,
    pub at: DateTime<Utc>,
    pub value: f64,
}

/// Writes a batch of decisions and samples in one transaction.
/// Which of `ids` are still ScaledObjects (the writer drops rows of objects deleted while
/// they waited for SQL).
pub async fn existing_objects(db: &DatabaseConnection, ids: Vec<i32>) -> Result<std::collections::BTreeSet<i32>> {
    let rows = scaled_objects::Entity::find().filter(scaled_objects::Column::Id.is_in(ids)).select_only().column(scaled_objects::Column::Id).into_tuple::<i32>().all(db).await?;
    Ok(rows.into_iter().collect())
}

pub async fn write_batch(db: &DatabaseConnection, decisions: &[NewDecision], samples: &[NewSample], states: &[(i32, state::ObjectState)]) -> Result<()> {
    if decisions.is_empty() && samples.is_empty() && states.is_empty() {
        return Ok(());
    }
    let txn = db.begin().await?;
    // Chunks keep each statement under SQLite's bound-parameter limit.
    for chunk in decisions.chunks(500) {
        decisions::Entity::insert_many(chunk.iter().map(|d| decisions::ActiveModel {
            scaled_object_id: Set(d.scaled_object_id),
            at: Set(d.at),
            state: Set(d.state.clone()),
            rule: Set(d.rule.clone()),
            prev_replicas: Set(d.prev_replicas),
            new_replicas: Set(d.new_replicas),
            explanation: Set(d.explanation.clone()),
            inputs: Set(d.inputs.clone()),
            ..Default::default()
        }))
        .exec(&txn)
        .await?;
    }
    for chunk in samples.chunks(1000) {
        metric_samples::Entity::insert_many(chunk.iter().map(|s| metric_samples::ActiveModel {
            scaled_object_id: Set(s.scaled_object_id),
            metric: Set(s.metric.clone()),
            at: Set(s.at),
            value: Set(s.value),
            ..Default::default()
        }))
        .exec(&txn)
        .await?;
    }
    txn.commit().await?;
    // States after the history, on their own: an object deleted since its poll must not
    // cost the batch its decisions.
    if !states.is_empty() {
        let ids: Vec<i32> = states.iter().map(|(id, _)| *id).collect();
        let live: std::collections::HashSet<i32> = scaled_objects::Entity::find()
            .filter(scaled_objects::Column::Id.is_in(ids))
            .all(db)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let states: Vec<_> = states.iter().filter(|(id, _)| live.contains(id)).cloned().collect();
        if let Err(e) = state::save(db, &states, Utc::now()).await {
            tracing::warn!(error = %e, "storing loop state failed; it is written again on the next change");
        }
    }
    Ok(())
}

/// The newest decisions of an object, newest first.
pub async fn recent_decisions(db: &DatabaseConnection, scaled_object_id: i32, limit: u64) -> Result<Vec<decisions::Model>> {
    recent_decisions_where(db, scaled_object_id, None, None, limit).await
}

/// The newest decisions of one object, newest first, of one rule and since a time if given
/// (filtered in SQL, so the limit counts only matching rows).
pub async fn recent_decisions_where(
    db: &DatabaseConnection,
    scaled_object_id: i32,
    rule: Option<&str>,
    since: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<decisions::Model>> {
    let mut q = decisions::Entity::find().filter(decisions::Column::ScaledObjectId.eq(scaled_object_id));
    if let Some(rule) = rule {
        q = q.filter(decisions::Column::Rule.eq(rule));
    }
    if let Some(since) = since {
        q = q.filter(decisions::Column::At.gte(since));
    }
    Ok(q.order_by_desc(decisions::Column::At)
        .order_by_desc(decisions::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Decisions of one object in `[from, to)`, oldest first.
pub async fn decisions_between(
    db: &DatabaseConnection,
    scaled_object_id: i32,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<decisions::Model>> {
    Ok(decisions::Entity::find()
        .filter(decisions::Column::ScaledObjectId.eq(scaled_object_id))
        .filter(decisions::Column::At.gte(from))
        .filter(decisions::Column::At.lt(to))
        .order_by_asc(decisions::Column::At)
        .order_by_asc(decisions::Column::Id)
        .all(db)
        .await?)
}

/// Samples of one object's metric in `[from, to)`, oldest first.
pub async fn samples_between(
    db: &DatabaseConnection,
    scaled_object_id: i32,
    metric: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<metric_samples::Model>> {
    Ok(metric_samples::Entity::find()
        .filter(metric_samples::Column::ScaledObjectId.eq(scaled_object_id))
        .filter(metric_samples::Column::Metric.eq(metric))
        .filter(metric_samples::Column::At.gte(from))
        .filter(metric_samples::Column::At.lt(to))
        .order_by_asc(metric_samples::Column::At)
        .all(db)
        .await?)
}

/// Deletes decisions and samples older than `before`; returns how many rows went.
pub async fn prune_history(db: &DatabaseConnection, before: DateTime<Utc>) -> Result<u64> {
    let d = decisions::Entity::delete_many().filter(decisions::Column::At.lt(before)).exec(db).await?;
    let s = metric_samples::Entity::delete_many().filter(metric_samples::Column::At.lt(before)).exec(db).await?;
    // The audit log has the same retention as decisions.
    let a = audit_log::Entity::delete_many().filter(audit_log::Column::At.lt(before)).exec(db).await?;
    Ok(d.rows_affected + s.rows_affected + a.rows_affected)
}
