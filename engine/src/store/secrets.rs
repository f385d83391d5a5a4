//! Sealed things in SQL: webhook sources' HMAC secrets and trigger authentications (for
//! objects made in Swell, and their inline credentials). Values are sealed by the caller
//! (crypto.rs); only parameter names are stored in clear.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::{audit, entities, find_tenant};
use crate::Result;

/// Creates or replaces (rotates) a tenant's webhook source with its sealed secret.
pub async fn put_webhook_source(db: &DatabaseConnection, tenant_id: i32, name: &str, secret_enc: Vec<u8>, actor: &str) -> Result<()> {
    use entities::webhook_sources;
    let existing = webhook_sources::Entity::find()
        .filter(webhook_sources::Column::TenantId.eq(tenant_id))
        .filter(webhook_sources::Column::Name.eq(name))
        .one(db)
        .await?;
    match existing {
        Some(row) => {
            let mut active: webhook_sources::ActiveModel = row.into();
            active.secret_enc = Set(secret_enc);
            active.update(db).await?;
        }
        None => {
            webhook_sources::ActiveModel { tenant_id: Set(tenant_id), name: Set(name.into()), secret_enc: Set(secret_enc), created_at: Set(Utc::now()), ..Default::default() }
                .insert(db)
                .await?;
        }
    }
    audit(db, Some(tenant_id), actor, "webhook_source.put", name, serde_json::json!({})).await
}

/// The sealed secret of a tenant's webhook source, if both exist.
pub async fn webhook_secret(db: &DatabaseConnection, tenant: &str, name: &str) -> Result<Option<Vec<u8>>> {
    use entities::webhook_sources;
    let Some(t) = find_tenant(db, tenant).await? else { return Ok(None) };
    Ok(webhook_sources::Entity::find()
        .filter(webhook_sources::Column::TenantId.eq(t.id))
        .filter(webhook_sources::Column::Name.eq(name))
        .one(db)
        .await?
        .map(|r| r.secret_enc))
}

/// The purpose a trigger authentication's sealed parameters are bound to.
pub fn trigger_auth_purpose(tenant: &str, namespace: &str, name: &str) -> String {
    format!("trigger-auth:{tenant}/{namespace}/{name}")
}

/// Creates or replaces a trigger authentication kept in SQL (for objects made in Swell):
/// the parameter names in clear, their values sealed as one blob.
pub async fn put_trigger_auth(db: &DatabaseConnection, tenant_id: i32, namespace: &str, name: &str, keys: &[String], sealed: Vec<u8>, actor: &str) -> Result<()> {
    use entities::trigger_auths;
    let now = Utc::now();
    let existing = trigger_auths::Entity::find()
        .filter(trigger_auths::Column::TenantId.eq(tenant_id))
        .filter(trigger_auths::Column::Namespace.eq(namespace))
        .filter(trigger_auths::Column::Name.eq(name))
        .one(db)
        .await?;
    let spec = serde_json::json!({ "parameters": keys });
    match existing {
        Some(row) => {
            let mut a: trigger_auths::ActiveModel = row.into();
            a.spec = Set(spec);
            a.secrets_enc = Set(Some(sealed));
            a.updated_at = Set(now);
            a.update(db).await?;
        }
        None => {
            trigger_auths::ActiveModel {
                tenant_id: Set(tenant_id),
                kind: Set("TriggerAuthentication".into()),
                namespace: Set(Some(namespace.into())),
                name: Set(name.into()),
                spec: Set(spec),
                secrets_enc: Set(Some(sealed)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?;
        }
    }
    audit(db, Some(tenant_id), actor, "trigger_auth.put", &format!("{namespace}/{name}"), serde_json::json!({ "parameters": keys })).await
}

/// Deletes a trigger authentication kept in SQL, if it exists.
pub async fn delete_trigger_auth<C: sea_orm::ConnectionTrait>(db: &C, tenant_id: i32, namespace: &str, name: &str) -> Result<()> {
    use entities::trigger_auths;
    trigger_auths::Entity::delete_many()
        .filter(trigger_auths::Column::TenantId.eq(tenant_id))
        .filter(trigger_auths::Column::Namespace.eq(namespace))
        .filter(trigger_auths::Column::Name.eq(name))
        .exec(db)
        .await?;
    Ok(())
}

/// The sealed parameters of a tenant's trigger authentication in `namespace`, if it exists.
pub async fn trigger_auth_sealed(db: &DatabaseConnection, tenant: &str, namespace: &str, name: &str) -> Result<Option<Vec<u8>>> {
    use entities::trigger_auths;
    let Some(t) = find_tenant(db, tenant).await? else { return Ok(None) };
    Ok(trigger_auths::Entity::find()
        .filter(trigger_auths::Column::TenantId.eq(t.id))
        .filter(trigger_auths::Column::Namespace.eq(namespace))
        .filter(trigger_auths::Column::Name.eq(name))
        .one(db)
        .await?
        .and_then(|r| r.secrets_enc))
}
