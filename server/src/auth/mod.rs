//! Authentication: who a request comes from (an API token, else the session), the session
//! layer over SQL, sign-in routes, and the checks every route shares. Authorization itself
//! is `engine::access::authorize`, called through `app::api::ssr::authorize` by every server
//! function and through [`require`] by every other route.

pub mod oidc;
pub mod pages;
pub mod routes;
pub mod store;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use engine::Engine;
use engine::access::{Principal, Role};
use tower_sessions::{Expiry, Session, SessionManagerLayer};

pub use app::api::Caller;

/// The session cookie's name.
pub const COOKIE: &str = "swell_session";

/// How long a checked API token or a loaded session is taken from memory before SQL is
/// asked again: a token revoked or a session ended by another process (`swell token
/// revoke`, `swell user revoke`, a logout on another replica) stops working within this.
pub const RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// What the authentication layer and the sign-in routes share.
pub struct Auth {
    pub engine: Engine,
    pub sealer: Option<Arc<engine::crypto::Sealer>>,
    pub providers: oidc::Providers,
    /// `scheme://host[:port]` users reach Swell at.
    pub public_url: String,
    /// The built-in sign-in for the demo tenant: only `swell demo`, only on loopback.
    pub local_sign_in: bool,
    pub cookie_secure: bool,
    pub session_ttl: time::Duration,
    /// Live tokens by hash, for [`RECHECK`].
    tokens: moka::sync::Cache<String, engine::store::tenancy::TokenGrant>,
    /// A gate per token being read from SQL: callers arriving together wait for the first
    /// one's answer instead of each reading (a burst after [`RECHECK`] is one read).
    loading: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The live streams' fan-out, one task per watched tenant (see `crate::live`).
    pub hub: crate::live::Hub,
}

pub struct Settings {
    pub public_url: String,
    pub local_sign_in: bool,
    pub cookie_secure: bool,
    pub session_ttl: time::Duration,
}

impl Auth {
    pub fn new(engine: Engine, sealer: Option<Arc<engine::crypto::Sealer>>, s: &Settings) -> Arc<Auth> {
        Arc::new(Auth {
            engine,
            sealer,
            providers: oidc::Providers::new(),
            public_url: s.public_url.trim_end_matches('/').to_string(),
            local_sign_in: s.local_sign_in,
            cookie_secure: s.cookie_secure,
            session_ttl: s.session_ttl,
            tokens: moka::sync::Cache::builder().max_capacity(10_000).time_to_live(RECHECK).build(),
            loading: Default::default(),
            hub: crate::live::Hub::default(),
        })
    }

    pub fn redirect_url(&self) -> String {
        format!("{}/auth/callback", self.public_url)
    }

    /// The principal of an API token: from memory if checked in the last [`RECHECK`] (and
    /// not expired since), else from SQL.
    async fn token(&self, token: &str) -> engine::Result<Result<Principal, &'static str>> {
        let now = chrono::Utc::now();
        let key = engine::access::token_hash(token);
        if let Some(p) = self.cached_token(&key, now) {
            return Ok(Ok(p));
        }
        let gate = self.loading.lock().expect("token gate lock").entry(key.clone()).or_default().clone();
        let _turn = gate.lock().await;
        if let Some(p) = self.cached_token(&key, now) {
            return Ok(Ok(p));
        }
        let read = engine::store::tenancy::token_principal(self.engine.db(), token, now).await;
        self.loading.lock().expect("token gate lock").remove(&key);
        Ok(match read? {
            Ok(grant) => {
                self.tokens.insert(key, grant.clone());
                Ok(grant.0)
            }
            Err(reason) => Err(reason),
        })
    }

    /// The token's principal if it was checked in the last [`RECHECK`] and has not expired.
    fn cached_token(&self, key: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Principal> {
        let (p, expires) = self.tokens.get(key)?;
        if expires.is_none_or(|e| e > now) {
            return Some(p);
        }
        self.tokens.invalidate(key);
        None
    }
}

/// The session layer: cookie HttpOnly, SameSite=Lax, records in SQL, lasting `ttl` from
/// the last change (sign-in). Secure is added per request by [`secure_cookie`].
pub fn session_layer(db: engine::DatabaseConnection, ttl: time::Duration) -> SessionManagerLayer<store::SqlStore> {
    SessionManagerLayer::new(store::SqlStore::new(db).with_recheck(RECHECK))
        .with_name(COOKIE)
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Lax)
        .with_secure(false)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(ttl))
}

/// Whether the request came over TLS (directly, or through a proxy that says so).
fn over_tls(headers: &HeaderMap, uri: &axum::http::Uri) -> bool {
    uri.scheme_str() == Some("https") || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// Marks the session cookie Secure when the request came over TLS or `cookie_secure` is set.
pub async fn secure_cookie(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let tls = auth.cookie_secure || over_tls(req.headers(), req.uri());
    let mut res = next.run(req).await;
    if tls {
        let cookies: Vec<_> = res.headers().get_all(header::SET_COOKIE).iter().cloned().collect();
        if cookies.iter().any(|c| c.as_bytes().starts_with(COOKIE.as_bytes())) {
            res.headers_mut().remove(header::SET_COOKIE);
            for c in cookies {
                let text = c.to_str().unwrap_or_default();
                let v = if text.starts_with(COOKIE) && !text.contains("; Secure") { format!("{text}; Secure") } else { text.to_string() };
                if let Ok(v) = v.parse() {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
            }
        }
    }
    res
}

/// Puts the caller in the request: an API token (`Authorization: Bearer swell_…`) if one is
/// sent — a bad one is refused here, audited — else the session's principal, else nobody.
pub async fn identify(State(auth): State<Arc<Auth>>, session: Session, mut req: Request, next: Next) -> Response {
    let bearer = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(|t| t.trim().to_string());
    let caller = match bearer {
        Some(token) => match auth.token(&token).await {
            Ok(Ok(p)) => Caller { principal: Some(p), by_token: true },
            Ok(Err(reason)) => {
                let path = req.uri().path().to_string();
                auth.engine.audit_refusal(None, None, &path, reason).await;
                return (StatusCode::UNAUTHORIZED, format!("refused: {reason}; create a new one with `swell token create`")).into_response();
            }
            Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("cannot check the API token: {e}")).into_response(),
        },
        None => match session.get::<Principal>(store::PRINCIPAL).await {
            Ok(p) => Caller { principal: p, by_token: false },
            Err(e) => {
                tracing::warn!(error = %e, "unreadable session; treated as signed out");
                let _ = session.flush().await;
                Caller { principal: None, by_token: false }
            }
        },
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Pages of a tenant need its sign-in: nobody → the login page (coming back after);
/// someone of another tenant → 403. `/` goes to the caller's tenant or the sign-in form.
pub async fn guard_pages(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    if req.method() != axum::http::Method::GET {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let caller = req.extensions().get::<Caller>().cloned().unwrap_or_default();
    if path == "/" {
        return match caller.principal {
            Some(p) => Redirect::to(&format!("/t/{}", p.tenant)).into_response(),
            None if auth.local_sign_in => Redirect::to("/t/demo/login").into_response(),
            None => pages::choose_tenant().into_response(),
        };
    }
    let Some(rest) = path.strip_prefix("/t/") else { return next.run(req).await };
    let mut parts = rest.splitn(2, '/');
    let tenant = parts.next().unwrap_or_default();
    let sub = parts.next().unwrap_or_default();
    if sub == "login" || sub.starts_with("login/") || sub == "signed-out" {
        return next.run(req).await;
    }
    match &caller.principal {
        None => Redirect::to(&format!("/t/{tenant}/login?next={}", urlencode(&path))).into_response(),
        Some(p) if p.tenant != tenant => {
            let msg = format!("{} is signed in to tenant {:?}, not {tenant:?}", p.actor, p.tenant);
            auth.engine.audit_refusal(Some(p), Some(tenant), &path, &msg).await;
            (StatusCode::FORBIDDEN, pages::refused(tenant, &msg)).into_response()
        }
        Some(_) => next.run(req).await,
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The check for routes outside Leptos: the caller needs `role` in `tenant`; a refusal is
/// audited and answered 403.
pub async fn require(engine: &Engine, caller: &Caller, tenant: &str, role: Role, action: &str) -> Result<Principal, Response> {
    match engine::access::authorize(caller.principal.as_ref(), tenant, role, action) {
        Ok(p) => Ok(p.clone()),
        Err(e) => {
            engine.audit_refusal(caller.principal.as_ref(), Some(tenant), action, &e.to_string()).await;
            Err((StatusCode::FORBIDDEN, e.to_string()).into_response())
        }
    }
}

/// The caller of a long-lived connection (the live stream), checked again from SQL: `None`
/// once its token is revoked or expired, or its session ended (logout, `swell user revoke`).
pub async fn recheck(auth: &Auth, headers: &HeaderMap) -> Option<Principal> {
    use tower_sessions::SessionStore;
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if let Some(token) = bearer {
        return auth.token(token.trim()).await.ok()?.ok();
    }
    let id = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))?
        .parse::<tower_sessions::session::Id>()
        .ok()?;
    let record = store::SqlStore::new(auth.engine.db().clone()).load(&id).await.ok()??;
    serde_json::from_value(record.data.get(store::PRINCIPAL)?.clone()).ok()
}

/// CSRF: a state-changing request made with the session cookie must come from Swell's own
/// pages (Origin, else Sec-Fetch-Site). Token callers send no cookie and are not at risk.
pub fn same_origin(headers: &HeaderMap, public_url: &str) -> Result<(), String> {
    app::api::check_origin(headers, public_url)
}

#[cfg(test)]
mod oidc_tests;
