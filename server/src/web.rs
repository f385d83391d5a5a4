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
