//! Sign-in and sign-out: `/t/{tenant}/login` → the tenant's provider → `/auth/callback` →
//! a session; the demo's local sign-in; `/logout` (and the provider's end-session endpoint).

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use engine::access::{Principal, Role};
use serde::Deserialize;
use tower_sessions::Session;

use super::oidc::{Pending, TenantClient};
use super::{Auth, Caller, pages, store::PRINCIPAL};

const PENDING: &str = "login";
/// The ID token, for the provider's logout hint: sealed when Swell has a secret key.
const ID_TOKEN: &str = "id_token";
const ID_TOKEN_PURPOSE: &str = "session-id-token";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (s.len() % 2 == 0).then(|| (0..s.len() / 2).map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect::<Option<Vec<u8>>>()).flatten()
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    tenant: Option<String>,
}

/// Only a path inside the tenant's pages is followed after sign-in (no open redirect).
fn safe_next(tenant: &str, next: Option<&str>) -> String {
    let home = format!("/t/{tenant}");
    match next {
        Some(n) if (n == home || n.starts_with(&format!("{home}/"))) && !n.contains("//") && !n.contains('\\') => n.to_string(),
        _ => home,
    }
}

/// The tenant's provider settings with the client secret opened; none when it has none.
pub async fn tenant_client(auth: &Auth, slug: &str) -> Result<Option<TenantClient>, String> {
    let db = auth.engine.db();
    let Some(t) = engine::store::find_tenant(db, slug).await.map_err(|e| e.to_string())? else { return Ok(None) };
    let Some(s) = engine::store::tenancy::oidc(db, t.id).await.map_err(|e| e.to_string())? else { return Ok(None) };
    let client_secret = match &s.client_secret_enc {
        None => None,
        Some(blob) => {
            let sealer = auth.sealer.as_ref().ok_or("the tenant's client secret is sealed: set secret_key")?;
            let plain = sealer.open(&engine::store::tenancy::oidc_secret_purpose(slug), blob).map_err(|e| e.to_string())?;
            Some(String::from_utf8(plain).map_err(|_| "the stored client secret is damaged")?)
        }
    };
    Ok(Some(TenantClient {
        tenant: t.slug,
        tenant_id: t.id,
        issuer: s.issuer,
        client_id: s.client_id,
        client_secret,
        scopes: s.scopes,
        groups_claim: s.groups_claim,
        role_map: s.role_map,
    }))
}

/// `GET /login?tenant=…` (the chooser's form) → that tenant's sign-in.
pub async fn choose(Query(q): Query<NextQuery>) -> Response {
    match q.tenant.filter(|t| engine::access::check_slug("tenant", t).is_ok()) {
        Some(t) => Redirect::to(&format!("/t/{t}/login")).into_response(),
        None => (StatusCode::BAD_REQUEST, pages::choose_tenant()).into_response(),
    }
}

/// `GET /t/{tenant}/login`: off to the tenant's provider, or the demo's local sign-in.
pub async fn login(State(auth): State<Arc<Auth>>, Path(tenant): Path<String>, Query(q): Query<NextQuery>, session: Session) -> Response {
    let next = safe_next(&tenant, q.next.as_deref());
    match tenant_client(&auth, &tenant).await {
        Ok(Some(client)) => match auth.providers.begin(&client, &auth.redirect_url(), &next).await {
            Ok((url, pending)) => {
                // A sign-in under way lasts minutes, not the hours of a signed-in session.
                session.set_expiry(Some(tower_sessions::Expiry::OnInactivity(time::Duration::minutes(10))));
                if let Err(e) = session.insert(PENDING, &pending).await {
                    return (StatusCode::INTERNAL_SERVER_ERROR, format!("session: {e}")).into_response();
                }
                Redirect::to(url.as_str()).into_response()
            }
            Err(e) => (StatusCode::BAD_GATEWAY, pages::login_failed(&tenant, &e.to_string())).into_response(),
        },
        Ok(None) if auth.local_sign_in && tenant == "demo" => pages::local_sign_in(&tenant, &next, None).into_response(),
        // The same answer for a tenant that does not exist: nothing is learnt about tenants.
        Ok(None) => (StatusCode::NOT_FOUND, pages::login_failed(&tenant, &format!("no sign-in is set up for tenant {tenant:?}; an admin sets one with `swell tenant set-oidc`"))).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, pages::login_failed(&tenant, &e)).into_response(),
    }
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback`: the provider sends the user back with a code.
pub async fn callback(State(auth): State<Arc<Auth>>, Query(cb): Query<Callback>, session: Session) -> Response {
    // Taken out at once: a callback can be used only once (no replay of state or nonce).
    let pending: Option<Pending> = session.remove(PENDING).await.ok().flatten();
    let Some(pending) = pending else {
        return fail(&auth, "", "this sign-in was not started here or has already been used; start again", StatusCode::BAD_REQUEST).await;
    };
    let tenant = pending.tenant.clone();
    if let Some(err) = cb.error {
        let what = cb.error_description.unwrap_or_default();
        return fail(&auth, &tenant, &format!("the provider refused: {err} {what}"), StatusCode::UNAUTHORIZED).await;
    }
    let (Some(code), Some(state)) = (cb.code, cb.state) else {
        return fail(&auth, &tenant, "the provider sent no code", StatusCode::BAD_REQUEST).await;
    };
    if !ring_eq(state.as_bytes(), pending.state.as_bytes()) {
        return fail(&auth, &tenant, "state does not match this sign-in (a forged or stale callback)", StatusCode::BAD_REQUEST).await;
    }
    let client = match tenant_client(&auth, &tenant).await {
        Ok(Some(c)) => c,
        Ok(None) => return fail(&auth, &tenant, "the tenant no longer has a provider", StatusCode::NOT_FOUND).await,
        Err(e) => return fail(&auth, &tenant, &e, StatusCode::INTERNAL_SERVER_ERROR).await,
    };
    let (who, id_token) = match auth.providers.finish(&client, &auth.redirect_url(), &pending, &code).await {
        Ok(x) => x,
        Err(e) => return fail(&auth, &tenant, &e.to_string(), StatusCode::UNAUTHORIZED).await,
    };
    let principal = match sign_in(&auth, &client, &who).await {
        Ok(p) => p,
        Err(msg) => return fail(&auth, &tenant, &msg, StatusCode::FORBIDDEN).await,
    };
    if let Err(e) = start_session(&auth, &session, &principal, Some(&id_token)).await {
        return fail(&auth, &tenant, &format!("session: {e}"), StatusCode::INTERNAL_SERVER_ERROR).await;
    }
    Redirect::to(&safe_next(&tenant, Some(&pending.next))).into_response()
}

fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The role of a verified identity: its bindings (email or subject) and the tenant's group
/// mapping, the highest wins; none is a refusal that says what to do.
async fn sign_in(auth: &Auth, client: &TenantClient, who: &super::oidc::Identity) -> Result<Principal, String> {
    let db = auth.engine.db();
    let bound = engine::store::tenancy::bound_role(db, client.tenant_id, who.email.as_deref(), &who.subject).await.map_err(|e| e.to_string())?;
    let grouped = who.groups.iter().filter_map(|g| client.role_map.get(g)).copied().max();
    let label = who.email.clone().unwrap_or_else(|| who.subject.clone());
    let Some(role) = bound.max(grouped) else {
        auth.engine.metrics().logins.get_or_create(&engine::metrics::OutcomeLabels { outcome: "refused".into() }).inc();
        let msg = format!("{label} has no role in tenant {:?}; an admin grants one with `swell user grant {label} --tenant {} --role viewer`", client.tenant, client.tenant);
        auth.engine.audit_refusal(None, Some(&client.tenant), "login", &msg).await;
        return Err(msg);
    };
    let user = engine::store::tenancy::upsert_user(db, client.tenant_id, &who.issuer, &who.subject, who.email.as_deref(), who.name.as_deref()).await.map_err(|e| e.to_string())?;
    let p = Principal { tenant: client.tenant.clone(), tenant_id: client.tenant_id, actor: format!("user:{label}"), role, user_id: Some(user.id), token_id: None };
    let _ = engine::store::audit(db, Some(client.tenant_id), &p.actor, "login", &client.tenant, serde_json::json!({"role": role, "issuer": who.issuer})).await;
    auth.engine.metrics().logins.get_or_create(&engine::metrics::OutcomeLabels { outcome: "ok".into() }).inc();
    Ok(p)
}

/// A new session id for the signed-in user (no fixation), holding the principal.
async fn start_session(auth: &Auth, session: &Session, p: &Principal, id_token: Option<&str>) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session.set_expiry(Some(tower_sessions::Expiry::OnInactivity(auth.session_ttl)));
    session.insert(PRINCIPAL, p).await?;
    if let Some(t) = id_token {
        let kept = match &auth.sealer {
            Some(sealer) => sealer.seal(ID_TOKEN_PURPOSE, t.as_bytes()).ok().map(|b| format!("sealed:{}", hex(&b))),
            None => Some(t.to_string()),
        };
        if let Some(kept) = kept {
            session.insert(ID_TOKEN, kept).await?;
        }
    }
    Ok(())
}

async fn fail(auth: &Auth, tenant: &str, message: &str, status: StatusCode) -> Response {
    tracing::info!(tenant, reason = message, "sign-in failed");
    auth.engine.metrics().logins.get_or_create(&engine::metrics::OutcomeLabels { outcome: "failed".into() }).inc();
    (status, pages::login_failed(if tenant.is_empty() { "demo" } else { tenant }, message)).into_response()
}

#[derive(Deserialize)]
pub struct LocalForm {
    next: Option<String>,
}

/// `POST /t/demo/login/local`: the demo's sign-in, only in `swell demo` on loopback.
pub async fn local(State(auth): State<Arc<Auth>>, Path(tenant): Path<String>, headers: HeaderMap, session: Session, Form(f): Form<LocalForm>) -> Response {
    if !auth.local_sign_in || tenant != "demo" {
        return (StatusCode::NOT_FOUND, "no local sign-in here").into_response();
    }
    if let Err(e) = super::same_origin(&headers, &auth.public_url) {
        return (StatusCode::FORBIDDEN, pages::local_sign_in(&tenant, "", Some(&e))).into_response();
    }
    let db = auth.engine.db();
    let Ok(Some(t)) = engine::store::find_tenant(db, &tenant).await else { return (StatusCode::NOT_FOUND, "no demo tenant").into_response() };
    let user = match engine::store::tenancy::upsert_user(db, t.id, "local", "demo", None, Some("demo")).await {
        Ok(u) => u,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let p = Principal { tenant: tenant.clone(), tenant_id: t.id, actor: "local:demo".into(), role: Role::Admin, user_id: Some(user.id), token_id: None };
    if let Err(e) = start_session(&auth, &session, &p, None).await {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("session: {e}")).into_response();
    }
    let _ = engine::store::audit(db, Some(t.id), &p.actor, "login", &tenant, serde_json::json!({"role": "admin", "local": true})).await;
    Redirect::to(&safe_next(&tenant, f.next.as_deref())).into_response()
}

/// `POST /logout`: ends the session, then the provider's session if it offers that.
pub async fn logout(State(auth): State<Arc<Auth>>, headers: HeaderMap, session: Session, axum::Extension(caller): axum::Extension<Caller>) -> Response {
    if let Err(e) = super::same_origin(&headers, &auth.public_url) {
        return (StatusCode::FORBIDDEN, e).into_response();
    }
    let kept: Option<String> = session.get(ID_TOKEN).await.ok().flatten();
    let id_token = kept.and_then(|k| match k.strip_prefix("sealed:") {
        Some(h) => auth.sealer.as_ref()?.open(ID_TOKEN_PURPOSE, &unhex(h)?).ok().and_then(|b| String::from_utf8(b).ok()),
        None => Some(k),
    });
    let _ = session.flush().await;
    let Some(p) = caller.principal.filter(|_| !caller.by_token) else { return Redirect::to("/").into_response() };
    let _ = engine::store::audit(auth.engine.db(), Some(p.tenant_id), &p.actor, "logout", &p.tenant, serde_json::json!({})).await;
    let after = format!("{}/t/{}/signed-out", auth.public_url, p.tenant);
    if let Ok(Some(client)) = tenant_client(&auth, &p.tenant).await {
        if let Some(url) = auth.providers.end_session(&client, id_token.as_deref(), &after).await {
            return Redirect::to(url.as_str()).into_response();
        }
    }
    Redirect::to(&after).into_response()
}

/// `GET /t/{tenant}/signed-out`.
pub async fn signed_out(Path(tenant): Path<String>) -> Response {
    pages::signed_out(&tenant).into_response()
}
