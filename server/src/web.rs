//! The HTTP surface: pages and server functions (Leptos), health, readiness and metrics.
//! This file is the table of contents of every route.

use std::future::Future;

use app::{App, shell};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
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
}

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let engine = state.engine.clone();
    let options = state.leptos_options.clone();
    let hooks = crate::hooks::router(state.hooks.clone());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/demo/faults/{workload}", axum::routing::post(inject_fault).delete(clear_fault))
        .leptos_routes_with_context(&state, routes, move || provide_context(engine.clone()), move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(CompressionLayer::new())
        .with_state(state)
        .merge(hooks)
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn launch(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// `swell demo` only: breaks a simulated workload's metric (`{"fault": "spike", "factor":
/// 100}`, `{"fault": "stuckAtZero"}`, `{"fault": "notANumber"}`) so the anomaly guard can be
/// seen at work; DELETE mends it.
async fn inject_fault(State(engine): State<Engine>, axum::extract::Path(workload): axum::extract::Path<String>, body: String) -> impl IntoResponse {
    let fault = match serde_json::from_str::<engine::sim::Fault>(&body) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("body: {e}; send {{\"fault\": \"spike\", \"factor\": 100}}, {{\"fault\": \"stuckAtZero\"}} or {{\"fault\": \"notANumber\"}}")),
    };
    fault_answer(engine.inject_fault(&workload, Some(fault)))
}

async fn clear_fault(State(engine): State<Engine>, axum::extract::Path(workload): axum::extract::Path<String>) -> impl IntoResponse {
    fault_answer(engine.inject_fault(&workload, None))
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
