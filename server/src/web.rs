//! The HTTP surface: pages and server functions (Leptos), sign-in, health, readiness and
//! metrics. This file is the table of contents of every route: [`routes`] lists each one
//! outside Leptos with who may call it, and `swell routes` prints them all with the
//! server functions and pages, which the isolation test calls one by one.

use std::future::Future;

use app::{App, shell};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{self, MethodRouter, get};
use std::sync::Arc;

use crate::auth::{self, Auth, Caller};
use engine::Engine;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub engine: Engine,
    pub hooks: std::sync::Arc<crate::hooks::Hooks>,
    pub auth: Arc<Auth>,
}

/// Who may call a route outside Leptos (server functions check for themselves).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Access {
    /// Health, readiness, metrics for scrapers, the sign-in flow: no caller needed.
    Public,
    /// Signed with the source's HMAC secret (webhooks); no session or token.
    Signed,
    /// Needs a caller with the role named, checked in the handler.
    Role(engine::access::Role),
}

type Route = (&'static str, &'static str, Access, MethodRouter<AppState>);

/// Every route outside Leptos and the webhooks, built into the router from this one list.
pub fn routes() -> Vec<Route> {
    use engine::access::Role::{Operator, Viewer};
    use routing::{delete, post};
    vec![
        ("GET", "/healthz", Access::Public, get(healthz)),
        ("GET", "/readyz", Access::Public, get(readyz)),
        ("GET", "/metrics", Access::Public, get(metrics)),
        ("GET", "/login", Access::Public, get(auth::routes::choose)),
        ("GET", "/t/{tenant}/login", Access::Public, get(auth::routes::login)),
        ("POST", "/t/{tenant}/login/local", Access::Public, post(auth::routes::local)),
        ("GET", "/t/{tenant}/signed-out", Access::Public, get(auth::routes::signed_out)),
        ("GET", "/auth/callback", Access::Public, get(auth::routes::callback)),
        ("POST", "/logout", Access::Public, post(auth::routes::logout)),
        ("GET", "/live/{tenant}", Access::Role(Viewer), get(crate::live::upgrade)),
        ("POST", "/demo/faults/{workload}", Access::Role(Operator), post(inject_fault)),
        ("DELETE", "/demo/faults/{workload}", Access::Role(Operator), delete(clear_fault)),
    ]
}

/// The webhook routes (their own router, body limit and state), for the route list.
pub const HOOK_ROUTES: &[(&str, &str, Access)] = &[("POST", "/hooks/{tenant}/{source}", Access::Signed)];

pub fn router(state: AppState) -> Router {
    let pages = generate_route_list(App);
    let engine = state.engine.clone();
    let public_url = app::api::ssr::PublicUrl(state.auth.public_url.clone());
    let options = state.leptos_options.clone();
    let hooks = crate::hooks::router(state.hooks.clone());
    let auth = state.auth.clone();
    let mut router = Router::new();
    for (_, path, _, method_router) in routes() {
        router = router.route(path, method_router);
    }
    router
        .leptos_routes_with_context(
            &state,
            pages,
            move || {
                provide_context(engine.clone());
                provide_context(public_url.clone());
            },
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn_with_state((crate::page_cache::PageCache::default(), state.engine.clone()), crate::page_cache::serve))
        .layer(axum::middleware::from_fn_with_state(auth.clone(), auth::guard_pages))
        .layer(axum::middleware::from_fn_with_state(auth.clone(), auth::identify))
        .layer(crate::auth::session_layer(state.engine.db().clone(), state.auth.session_ttl))
        .layer(axum::middleware::from_fn_with_state(auth, auth::secure_cookie))
        .layer(CompressionLayer::new())
        .with_state(state)
        .merge(hooks)
}

/// Every route: the table above, the webhooks, the server functions and the pages, as
/// `swell routes` prints them (JSON lines: method, path, access).
pub fn route_list() -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = routes()
        .into_iter()
        .map(|(m, p, a, _)| serde_json::json!({"method": m, "path": p, "access": a}))
        .chain(HOOK_ROUTES.iter().map(|(m, p, a)| serde_json::json!({"method": m, "path": p, "access": a})))
        .collect();
    let mut fns: Vec<_> = leptos::server_fn::axum::server_fn_paths().map(|(p, m)| (p.to_string(), m.to_string())).collect();
    fns.sort();
    out.extend(fns.into_iter().map(|(p, m)| serde_json::json!({"method": m, "path": p, "access": "serverFn"})));
    let mut pages: Vec<String> = generate_route_list(App).iter().map(|r| r.path().to_string()).collect();
    pages.sort();
    pages.dedup();
    out.extend(pages.into_iter().map(|p| serde_json::json!({"method": "GET", "path": p, "access": "page"})));
    out
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn launch(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// `swell demo` only: breaks a simulated workload's metric (`{"fault": "spike", "factor":
/// 100}`, `{"fault": "stuckAtZero"}`, `{"fault": "notANumber"}`) so the anomaly guard can be
/// seen at work; DELETE mends it.
async fn inject_fault(State(engine): State<Engine>, axum::Extension(caller): axum::Extension<Caller>, axum::extract::Path(workload): axum::extract::Path<String>, body: String) -> axum::response::Response {
    if let Err(refused) = auth::require(&engine, &caller, "demo", engine::access::Role::Operator, "demo fault").await {
        return refused;
    }
    let fault = match serde_json::from_str::<engine::sim::Fault>(&body) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("body: {e}; send {{\"fault\": \"spike\", \"factor\": 100}}, {{\"fault\": \"stuckAtZero\"}} or {{\"fault\": \"notANumber\"}}")).into_response(),
    };
    fault_answer(engine.inject_fault(&workload, Some(fault))).into_response()
}

async fn clear_fault(State(engine): State<Engine>, axum::Extension(caller): axum::Extension<Caller>, axum::extract::Path(workload): axum::extract::Path<String>) -> axum::response::Response {
    if let Err(refused) = auth::require(&engine, &caller, "demo", engine::access::Role::Operator, "demo fault").await {
        return refused;
    }
    fault_answer(engine.inject_fault(&workload, None)).into_response()
}

fn fault_answer(r: engine::Result<()>) -> (StatusCode, String) {
    match r {
        Ok(()) => (StatusCode::OK, "ok".into()),
        Err(e @ engine::Error::NotFound(_)) => (StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers and every migration is applied.
async fn readyz(State(engine): State<Engine>) -> impl IntoResponse {
    match engine::store::ping(engine.db()).await {
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database unreachable: {e}")),
        Ok(()) => match engine::store::migrations_applied(engine.db()).await {
            Ok(true) => (StatusCode::OK, "ready".to_string()),
            Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending: run `swell migrate`".to_string()),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("cannot read migrations: {e}")),
        },
    }
}

async fn metrics(State(engine): State<Engine>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        engine.metrics().encode(),
    )
}
