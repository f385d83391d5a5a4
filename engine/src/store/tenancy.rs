//! Tenancy in SQL: tenants' OIDC settings, users, role bindings and API tokens. Every
//! change is audited with the actor that made it.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use super::entities::{api_tokens, role_bindings, sessions, tenant_oidc, tenants, users};
use super::{audit, find_tenant};
use crate::access::{Role, user_key};
use crate::{Error, Result};

/// A tenant's OIDC provider, as `swell tenant set-oidc` stores it.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    /// Sealed under the purpose [`oidc_secret_purpose`]; none for a public client (PKCE only).
    pub client_secret_enc: Option<Vec<u8>>,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    pub role_map: std::collections::BTreeMap<String, Role>,
}

pub fn oidc_secret_purpose(tenant: &str) -> String {
    format!("oidc-client-secret:{tenant}")
}

/// Creates a tenant; an existing slug is an error naming it.
pub async fn add_tenant(db: &DatabaseConnection, slug: &str, name: &str, actor: &str) -> Result<tenants::Model> {
    crate::access::check_slug("tenant", slug)?;
    if find_tenant(db, slug).await?.is_some() {
        return Err(Error::invalid("tenant", format!("{slug:?} exists already")));
    }
    let t = tenants::ActiveModel { slug: Set(slug.into()), name: Set(name.into()), created_at: Set(Utc::now()), ..Default::default() }.insert(db).await?;
    audit(db, Some(t.id), actor, "tenant.add", slug, serde_json::json!({"name": name})).await?;
    Ok(t)
}

/// Every tenant with its OIDC settings, if any.
pub async fn list_tenants(db: &DatabaseConnection) -> Result<Vec<(tenants::Model, Option<tenant_oidc::Model>)>> {
    let oidc: std::collections::HashMap<i32, tenant_oidc::Model> = tenant_oidc::Entity::find().all(db).await?.into_iter().map(|o| (o.tenant_id, o)).collect();
    Ok(tenants::Entity::find().order_by_asc(tenants::Column::Slug).all(db).await?.into_iter().map(|t| {
        let o = oidc.get(&t.id).cloned();
        (t, o)
    }).collect())
}

/// The tenant named `slug`, or a not-found error naming it.
pub async fn tenant(db: &DatabaseConnection, slug: &str) -> Result<tenants::Model> {
    find_tenant(db, slug).await?.ok_or_else(|| Error::NotFound(format!("tenant {slug:?}")))
}

pub async fn set_oidc(db: &DatabaseConnection, tenant_id: i32, s: &OidcSettings, actor: &str) -> Result<()> {
    let url = url::Url::parse(&s.issuer).map_err(|e| Error::invalid("issuer", format!("{:?} is not a URL: {e}", s.issuer)))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(Error::invalid("issuer", "must be an https:// URL (http:// only for a provider on loopback)"));
    }
    if url.scheme() == "http" && !matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) {
        return Err(Error::invalid("issuer", "http:// is only allowed for a provider on loopback; use https://"));
    }
    if s.client_id.trim().is_empty() {
        return Err(Error::invalid("client_id", "must not be empty"));
    }
    if !s.scopes.iter().any(|x| x == "openid") {
        return Err(Error::invalid("scopes", "must include openid"));
    }
    let row = tenant_oidc::ActiveModel {
        tenant_id: Set(tenant_id),
        issuer: Set(s.issuer.trim_end_matches('/').to_string()),
        client_id: Set(s.client_id.clone()),
        client_secret_enc: Set(s.client_secret_enc.clone()),
        scopes: Set(s.scopes.join(" ")),
        groups_claim: Set(s.groups_claim.clone()),
        role_map: Set(serde_json::to_value(&s.role_map).expect("role map serializes")),
        updated_at: Set(Utc::now()),
    };
    if tenant_oidc::Entity::find_by_id(tenant_id).one(db).await?.is_some() {
        row.update(db).await?;
    } else {
        row.insert(db).await?;
    }
    audit(db, Some(tenant_id), actor, "tenant.set_oidc", &s.issuer, serde_json::json!({"client_id": s.client_id, "scopes": s.scopes})).await
}

/// The tenant's OIDC settings, if it has a provider.
pub async fn oidc(db: &DatabaseConnection, tenant_id: i32) -> Result<Option<OidcSettings>> {
    let Some(o) = tenant_oidc::Entity::find_by_id(tenant_id).one(db).await? else { return Ok(None) };
    Ok(Some(OidcSettings {
        issuer: o.issuer,
        client_id: o.client_id,
        client_secret_enc: o.client_secret_enc,
        scopes: o.scopes.split_whitespace().map(String::from).collect(),
        groups_claim: o.groups_claim,
        role_map: serde_json::from_value(o.role_map).unwrap_or_default(),
    }))
}

/// Grants `principal` (an email address or an ID token subject) `role` in the tenant,
/// replacing an earlier role; the user's sessions end so the new role applies at once.
pub async fn grant(db: &DatabaseConnection, tenant_id: i32, principal: &str, role: Role, actor: &str) -> Result<()> {
    if principal.trim().is_empty() {
        return Err(Error::invalid("user", "must be an email address or a subject"));
    }
    let existing = role_bindings::Entity::find().filter(role_bindings::Column::TenantId.eq(tenant_id)).filter(role_bindings::Column::Principal.eq(principal)).one(db).await?;
    match existing {
        Some(b) => {
            let mut a: role_bindings::ActiveModel = b.into();
            a.role = Set(role.as_str().into());
            a.update(db).await?;
        }
        None => {
            role_bindings::ActiveModel { tenant_id: Set(tenant_id), principal: Set(principal.into()), role: Set(role.as_str().into()), created_at: Set(Utc::now()), ..Default::default() }
                .insert(db)
                .await?;
        }
    }
    end_sessions_of(db, tenant_id, principal).await?;
    audit(db, Some(tenant_id), actor, "user.grant", principal, serde_json::json!({"role": role})).await
}

/// Removes the principal's binding and ends its sessions; false when there was none.
pub async fn revoke(db: &DatabaseConnection, tenant_id: i32, principal: &str, actor: &str) -> Result<bool> {
    let n = role_bindings::Entity::delete_many().filter(role_bindings::Column::TenantId.eq(tenant_id)).filter(role_bindings::Column::Principal.eq(principal)).exec(db).await?;
    end_sessions_of(db, tenant_id, principal).await?;
    audit(db, Some(tenant_id), actor, "user.revoke", principal, serde_json::json!({"removed": n.rows_affected})).await?;
    Ok(n.rows_affected > 0)
}

async fn end_sessions_of(db: &DatabaseConnection, tenant_id: i32, principal: &str) -> Result<()> {
    let matching = users::Entity::find()
        .filter(users::Column::TenantId.eq(tenant_id))
        .filter(sea_orm::Condition::any().add(users::Column::Email.eq(principal)).add(users::Column::Subject.eq(principal)))
        .all(db)
        .await?;
    for u in matching {
        sessions::Entity::delete_many().filter(sessions::Column::UserKey.eq(user_key(tenant_id, u.id))).exec(db).await?;
    }
    Ok(())
}

pub async fn bindings(db: &DatabaseConnection, tenant_id: i32) -> Result<Vec<role_bindings::Model>> {
    Ok(role_bindings::Entity::find().filter(role_bindings::Column::TenantId.eq(tenant_id)).order_by_asc(role_bindings::Column::Principal).all(db).await?)
}

/// The highest role bound to the user's email or subject, if any.
pub async fn bound_role(db: &DatabaseConnection, tenant_id: i32, email: Option<&str>, subject: &str) -> Result<Option<Role>> {
    let mut names = vec![subject.to_string()];
    names.extend(email.map(String::from));
    let rows = role_bindings::Entity::find().filter(role_bindings::Column::TenantId.eq(tenant_id)).filter(role_bindings::Column::Principal.is_in(names)).all(db).await?;
    Ok(rows.iter().filter_map(|b| Role::parse("role", &b.role).ok()).max())
}

/// Records a login: creates the user on first sight, else refreshes email, name and time.
pub async fn upsert_user(db: &DatabaseConnection, tenant_id: i32, issuer: &str, subject: &str, email: Option<&str>, name: Option<&str>) -> Result<users::Model> {
    let now = Utc::now();
    let existing = users::Entity::find()
        .filter(users::Column::TenantId.eq(tenant_id))
        .filter(users::Column::Issuer.eq(issuer))
        .filter(users::Column::Subject.eq(subject))
        .one(db)
        .await?;
    Ok(match existing {
        Some(u) => {
            let mut a: users::ActiveModel = u.into();
            a.email = Set(email.map(String::from));
            a.name = Set(name.map(String::from));
            a.last_login_at = Set(now);
            a.update(db).await?
        }
        None => {
            users::ActiveModel {
                tenant_id: Set(tenant_id),
                issuer: Set(issuer.into()),
                subject: Set(subject.into()),
                email: Set(email.map(String::from)),
                name: Set(name.map(String::from)),
                created_at: Set(now),
                last_login_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?
        }
    })
}

pub async fn users(db: &DatabaseConnection, tenant_id: i32) -> Result<Vec<users::Model>> {
    Ok(users::Entity::find().filter(users::Column::TenantId.eq(tenant_id)).order_by_asc(users::Column::Id).all(db).await?)
}

/// Stores a new token's hash; a live token of the same name is an error.
pub async fn create_token(db: &DatabaseConnection, tenant_id: i32, name: &str, hash: &str, role: Role, expires_at: Option<DateTime<Utc>>, actor: &str) -> Result<api_tokens::Model> {
    if name.trim().is_empty() {
        return Err(Error::invalid("name", "a token needs a name (what uses it, e.g. ci)"));
    }
    let live = tokens(db, tenant_id).await?.into_iter().any(|t| t.name == name && t.revoked_at.is_none());
    if live {
        return Err(Error::invalid("name", format!("a token named {name:?} exists; revoke it first or pick another name")));
    }
    let row = api_tokens::ActiveModel {
        tenant_id: Set(tenant_id),
        name: Set(name.into()),
        hash: Set(hash.into()),
        role: Set(role.as_str().into()),
        created_by: Set(actor.into()),
        created_at: Set(Utc::now()),
        expires_at: Set(expires_at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    audit(db, Some(tenant_id), actor, "token.create", name, serde_json::json!({"role": role, "expires_at": expires_at})).await?;
    Ok(row)
}

pub async fn tokens(db: &DatabaseConnection, tenant_id: i32) -> Result<Vec<api_tokens::Model>> {
    Ok(api_tokens::Entity::find().filter(api_tokens::Column::TenantId.eq(tenant_id)).order_by_asc(api_tokens::Column::Id).all(db).await?)
}

/// Revokes the live token called `name`; false when there is none.
pub async fn revoke_token(db: &DatabaseConnection, tenant_id: i32, name: &str, actor: &str) -> Result<bool> {
    let Some(t) = tokens(db, tenant_id).await?.into_iter().find(|t| t.name == name && t.revoked_at.is_none()) else { return Ok(false) };
    let mut a: api_tokens::ActiveModel = t.into();
    a.revoked_at = Set(Some(Utc::now()));
    a.update(db).await?;
    audit(db, Some(tenant_id), actor, "token.revoke", name, serde_json::json!({})).await?;
    Ok(true)
}

pub async fn token_by_hash(db: &DatabaseConnection, hash: &str) -> Result<Option<api_tokens::Model>> {
    Ok(api_tokens::Entity::find().filter(api_tokens::Column::Hash.eq(hash)).one(db).await?)
}

pub async fn touch_token(db: &DatabaseConnection, id: i32, at: DateTime<Utc>) -> Result<()> {
    api_tokens::Entity::update_many().col_expr(api_tokens::Column::LastUsedAt, sea_orm::sea_query::Expr::value(at)).filter(api_tokens::Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// What `swell secrets rotate` did.
#[derive(Debug, Default, PartialEq)]
pub struct Rotation {
    pub resealed: usize,
    pub current: usize,
}

/// Re-seals every stored secret (kubeconfigs, webhook secrets, trigger authentications,
/// OIDC client secrets) under the sealer's current key, in one transaction: a secret that
/// cannot be opened stops the rotation with nothing changed.
pub async fn rotate_secrets(db: &DatabaseConnection, sealer: &crate::crypto::Sealer, actor: &str) -> Result<Rotation> {
    use super::entities::{clusters, trigger_auths, webhook_sources};
    use crate::crypto::purpose;
    use sea_orm::TransactionTrait;
    let txn = db.begin().await?;
    let slugs: std::collections::HashMap<i32, String> = tenants::Entity::find().all(&txn).await?.into_iter().map(|t| (t.id, t.slug)).collect();
    let slug = |id: i32| slugs.get(&id).cloned().unwrap_or_default();
    let mut r = Rotation::default();
    let mut step = |blob: &[u8], purpose: &str| -> Result<Option<Vec<u8>>> {
        if sealer.is_stale(blob) {
            r.resealed += 1;
            sealer.reseal(purpose, blob).map(Some)
        } else {
            r.current += 1;
            Ok(None)
        }
    };
    for row in clusters::Entity::find().all(&txn).await? {
        if let Some(blob) = &row.kubeconfig_enc {
            if let Some(new) = step(blob, &purpose::cluster(&row.name))? {
                let mut a: clusters::ActiveModel = row.into();
                a.kubeconfig_enc = Set(Some(new));
                a.update(&txn).await?;
            }
        }
    }
    for row in webhook_sources::Entity::find().all(&txn).await? {
        if let Some(new) = step(&row.secret_enc, &purpose::webhook(&slug(row.tenant_id), &row.name))? {
            let mut a: webhook_sources::ActiveModel = row.into();
            a.secret_enc = Set(new);
            a.update(&txn).await?;
        }
    }
    for row in trigger_auths::Entity::find().all(&txn).await? {
        if let Some(blob) = &row.secrets_enc {
            let p = super::trigger_auth_purpose(&slug(row.tenant_id), row.namespace.as_deref().unwrap_or_default(), &row.name);
            if let Some(new) = step(blob, &p)? {
                let mut a: trigger_auths::ActiveModel = row.into();
                a.secrets_enc = Set(Some(new));
                a.update(&txn).await?;
            }
        }
    }
    for row in tenant_oidc::Entity::find().all(&txn).await? {
        if let Some(blob) = &row.client_secret_enc {
            if let Some(new) = step(blob, &oidc_secret_purpose(&slug(row.tenant_id)))? {
                let mut a: tenant_oidc::ActiveModel = row.into();
                a.client_secret_enc = Set(Some(new));
                a.update(&txn).await?;
            }
        }
    }
    audit(&txn, None, actor, "secrets.rotate", &sealer.key_id(), serde_json::json!({"resealed": r.resealed, "current": r.current})).await?;
    txn.commit().await?;
    Ok(r)
}

/// Last-used times are written at most this often per token (not on every call).
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// A live token's principal and when the token expires.
pub type TokenGrant = (crate::access::Principal, Option<DateTime<Utc>>);

/// The principal an API token stands for, or why it stands for none (unknown, revoked,
/// expired). The token itself is only ever hashed.
pub async fn token_principal(db: &DatabaseConnection, token: &str, now: DateTime<Utc>) -> Result<std::result::Result<TokenGrant, &'static str>> {
    let Some(t) = token_by_hash(db, &crate::access::token_hash(token)).await? else { return Ok(Err("unknown API token")) };
    if t.revoked_at.is_some() {
        return Ok(Err("the API token was revoked"));
    }
    if t.expires_at.is_some_and(|e| e <= now) {
        return Ok(Err("the API token has expired"));
    }
    let Some(tenant) = tenants::Entity::find_by_id(t.tenant_id).one(db).await? else { return Ok(Err("unknown API token")) };
    if t.last_used_at.is_none_or(|u| now - u >= TOUCH_EVERY) {
        touch_token(db, t.id, now).await?;
    }
    let p = crate::access::Principal {
        tenant: tenant.slug,
        tenant_id: tenant.id,
        actor: format!("token:{}", t.name),
        role: Role::parse("role", &t.role)?,
        user_id: None,
        token_id: Some(t.id),
    };
    Ok(Ok((p, t.expires_at)))
}

/// Gives `namespace` on `cluster` to the tenant: its ScaledObjects and ScaledJobs belong
/// to it instead of the cluster's tenant. A namespace belongs to one tenant at a time.
pub async fn map_namespace(db: &DatabaseConnection, tenant_id: i32, cluster: &str, namespace: &str, actor: &str) -> Result<()> {
    use super::entities::tenant_namespaces;
    if cluster.trim().is_empty() || namespace.trim().is_empty() {
        return Err(Error::invalid("namespace", "give it as CLUSTER/NAMESPACE, e.g. east/shop"));
    }
    let existing = tenant_namespaces::Entity::find().filter(tenant_namespaces::Column::Cluster.eq(cluster)).filter(tenant_namespaces::Column::Namespace.eq(namespace)).one(db).await?;
    if let Some(row) = existing {
        if row.tenant_id != tenant_id {
            let owner = tenants::Entity::find_by_id(row.tenant_id).one(db).await?.map(|t| t.slug).unwrap_or_default();
            return Err(Error::invalid("namespace", format!("{cluster}/{namespace} belongs to tenant {owner:?}; remove it there first")));
        }
        return Ok(());
    }
    tenant_namespaces::ActiveModel { tenant_id: Set(tenant_id), cluster: Set(cluster.into()), namespace: Set(namespace.into()), ..Default::default() }.insert(db).await?;
    audit(db, Some(tenant_id), actor, "tenant.map_namespace", &format!("{cluster}/{namespace}"), serde_json::json!({})).await
}

/// The tenant a namespace of a cluster is mapped to, if any.
pub async fn namespace_tenant(db: &DatabaseConnection, cluster: &str, namespace: &str) -> Result<Option<tenants::Model>> {
    use super::entities::tenant_namespaces;
    let Some(row) = tenant_namespaces::Entity::find().filter(tenant_namespaces::Column::Cluster.eq(cluster)).filter(tenant_namespaces::Column::Namespace.eq(namespace)).one(db).await? else {
        return Ok(None);
    };
    Ok(tenants::Entity::find_by_id(row.tenant_id).one(db).await?)
}

/// The namespaces mapped to a tenant, as `cluster/namespace`.
pub async fn namespaces(db: &DatabaseConnection, tenant_id: i32) -> Result<Vec<String>> {
    use super::entities::tenant_namespaces;
    Ok(tenant_namespaces::Entity::find().filter(tenant_namespaces::Column::TenantId.eq(tenant_id)).all(db).await?.into_iter().map(|r| format!("{}/{}", r.cluster, r.namespace)).collect())
}
