//! `POST /hooks/{tenant}/{source}`: pushed values for `webhook` triggers.
//!
//! The sender signs `"{timestamp}.{body}"` with HMAC-SHA256 under the source's secret (from
//! `swell webhook add`) and sends `X-Swell-Timestamp: <unix seconds>` and
//! `X-Swell-Signature: sha256=<hex>`. The body is `{"value": n}` (set) or `{"add": n}`
//! (counter). A request older or newer than 5 minutes, or one already seen, is refused, so a
//! captured request cannot be replayed. Every refusal is a 4xx with the reason, and changes
//! nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use engine::Engine;
use engine::crypto::Sealer;
use engine::metrics::OutcomeLabels;
use engine::push::PushUpdate;
use engine::push::replay::SeenSignatures;

/// Largest body accepted.
pub const MAX_BODY: usize = 16 * 1024;
/// How far a request's timestamp may be from now.
pub const WINDOW: Duration = Duration::from_secs(300);

pub struct Hooks {
    pub engine: Engine,
    pub sealer: Option<Arc<Sealer>>,
    /// Signatures accepted within the window (replay protection).
    seen: Mutex<SeenSignatures>,
}

impl Hooks {
    pub fn new(engine: Engine, sealer: Option<Arc<Sealer>>) -> Self {
        Hooks { engine, sealer, seen: Mutex::new(SeenSignatures::default()) }
    }

    fn refuse(&self, code: StatusCode, outcome: &str, reason: String) -> Response {
        self.engine.metrics().webhook_requests.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc();
        (code, Json(serde_json::json!({ "error": reason }))).into_response()
    }
}

/// The webhook routes, with their body limit.
pub fn router(hooks: Arc<Hooks>) -> axum::Router {
    axum::Router::new()
        .route("/hooks/{tenant}/{source}", axum::routing::post(receive))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(hooks)
}

pub fn purpose(tenant: &str, source: &str) -> String {
    engine::crypto::purpose::webhook(tenant, source)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

pub async fn receive(State(hooks): State<Arc<Hooks>>, Path((tenant, source)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(timestamp) = header(&headers, "x-swell-timestamp") else {
        return hooks.refuse(StatusCode::UNAUTHORIZED, "unsigned", "missing header X-Swell-Timestamp (unix seconds)".into());
    };
    let Some(signature) = header(&headers, "x-swell-signature").and_then(|s| s.strip_prefix("sha256=")) else {
        return hooks.refuse(StatusCode::UNAUTHORIZED, "unsigned", "missing header X-Swell-Signature: sha256=<hex HMAC of \"timestamp.body\">".into());
    };
    let Ok(ts) = timestamp.parse::<i64>() else {
        return hooks.refuse(StatusCode::BAD_REQUEST, "malformed", "X-Swell-Timestamp must be unix seconds".into());
    };
    let now = chrono::Utc::now().timestamp();
    if (now - ts).unsigned_abs() > WINDOW.as_secs() {
        return hooks.refuse(StatusCode::UNAUTHORIZED, "stale", format!("timestamp is {} s from now; the window is {} s", now - ts, WINDOW.as_secs()));
    }
    let Some(sealer) = &hooks.sealer else {
        return hooks.refuse(StatusCode::NOT_FOUND, "unknown_source", format!("unknown webhook source {tenant}/{source}"));
    };
    let sealed = match engine::store::webhook_secret(hooks.engine.db(), &tenant, &source).await {
        Ok(Some(s)) => s,
        Ok(None) => return hooks.refuse(StatusCode::NOT_FOUND, "unknown_source", format!("unknown webhook source {tenant}/{source}")),
        Err(e) => {
            tracing::error!(error = %e, "webhook source lookup failed");
            return (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"error": "database unavailable"}))).into_response();
        }
    };
    let secret = match sealer.open(&purpose(&tenant, &source), &sealed) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, source = %source, "webhook secret cannot be opened");
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({"error": "the source's secret cannot be opened"}))).into_response();
        }
    };
    if !engine::push::verify_signature(&secret, timestamp, signature, &body) {
        return hooks.refuse(StatusCode::UNAUTHORIZED, "bad_signature", "signature does not match (HMAC-SHA256 of \"timestamp.body\" with the source's secret)".into());
    }
    let update = match PushUpdate::from_body(&body) {
        Ok(u) => u,
        Err(reason) => return hooks.refuse(StatusCode::BAD_REQUEST, "malformed", reason),
    };
    let first_use = hooks.seen.lock().expect("seen lock").first_use(ts, now, WINDOW.as_secs() as i64, signature);
    if !first_use {
        return hooks.refuse(StatusCode::CONFLICT, "replay", "this signed request was already accepted".into());
    }
    let value = hooks.engine.push(&tenant, &source, update);
    hooks.engine.metrics().webhook_requests.get_or_create(&OutcomeLabels { outcome: "accepted".into() }).inc();
    (StatusCode::ACCEPTED, Json(serde_json::json!({ "value": value }))).into_response()
}

#[cfg(test)]
mod end_to_end {
    //! The real handler and a real engine driving the simulated cluster; requests go through
    //! the router as the HTTP server would hand them over.
    use std::sync::Mutex as StdMutex;
    use std::time::Instant;

    use axum::body::Body;
    use axum::http::Request;
    use engine::crypto::hmac_sha256_hex;
    use engine::sim::SimCluster;
    use engine::{EngineOptions, store};
    use tower::ServiceExt;

    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const SECRET: &str = "the-source-secret";

    async fn setup() -> (Engine, axum::Router, i32) {
        let db = store::connect("sqlite::memory:").await.unwrap();
        store::migrate(&db).await.unwrap();
        let tenant = store::ensure_tenant(&db, "shop", "Shop").await.unwrap();
        store::ensure_cluster(&db, "sim", "simulated").await.unwrap();
        let sealer = Arc::new(Sealer::from_hex(KEY).unwrap());
        store::put_webhook_source(&db, tenant.id, "orders", sealer.seal(&purpose("shop", "orders"), SECRET.as_bytes()).unwrap(), "test").await.unwrap();
        let mut sim = SimCluster::new(1.0);
        sim.add_deployment("events", 0, 0.0, 10.0);
        let engine = Engine::new(db, EngineOptions { sim: Some(Arc::new(StdMutex::new(sim))), ..Default::default() }).await.unwrap();
        // A 30 s polling interval: only the push can explain a change within a tick.
        let spec = serde_json::from_value(serde_json::json!({
            "scaleTargetRef": {"name": "events"}, "actuation": "direct", "pollingInterval": 30, "minReplicaCount": 0, "maxReplicaCount": 10,
            "triggers": [{"type": "webhook", "metadata": {"source": "orders", "targetValue": "10"}}]
        }))
        .unwrap();
        let id = engine.apply("shop", "sim", "ns", "events", "swell", spec, "test").await.unwrap();
        let (_tx, rx) = tokio::sync::watch::channel(false);
        std::mem::forget(_tx);
        engine.spawn(rx);
        let router = router(Arc::new(Hooks::new(engine.clone(), Some(sealer))));
        (engine, router, id)
    }

    fn signed(path: &str, body: &str, ts: i64, secret: &str) -> Request<Body> {
        let sig = hmac_sha256_hex(secret.as_bytes(), format!("{ts}.{body}").as_bytes());
        Request::post(path)
            .header("x-swell-timestamp", ts.to_string())
            .header("x-swell-signature", format!("sha256={sig}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    async fn send(router: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signed_push_scales_within_a_tick_and_bad_requests_leave_no_trace() {
        let (engine, router, id) = setup().await;
        // Wait for the first (regular) poll: the object is idle at 0.
        let started = Instant::now();
        while engine.object("shop", id).and_then(|v| v.desired_replicas).is_none() {
            assert!(started.elapsed() < Duration::from_secs(5), "first poll");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let now = chrono::Utc::now().timestamp();

        let bad: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
            ("wrong signature", signed("/hooks/shop/orders", r#"{"value": 45}"#, now, "not-the-secret"), StatusCode::UNAUTHORIZED, "signature does not match"),
            ("stale timestamp", signed("/hooks/shop/orders", r#"{"value": 45}"#, now - 301, SECRET), StatusCode::UNAUTHORIZED, "window is 300 s"),
            ("future timestamp", signed("/hooks/shop/orders", r#"{"value": 45}"#, now + 400, SECRET), StatusCode::UNAUTHORIZED, "window is 300 s"),
            ("unknown source", signed("/hooks/shop/payments", r#"{"value": 45}"#, now, SECRET), StatusCode::NOT_FOUND, "unknown webhook source shop/payments"),
            ("other tenant", signed("/hooks/acme/orders", r#"{"value": 45}"#, now, SECRET), StatusCode::NOT_FOUND, "unknown webhook source acme/orders"),
            ("malformed body", signed("/hooks/shop/orders", r#"{"value": "lots"}"#, now, SECRET), StatusCode::BAD_REQUEST, "body.value must be a number"),
            ("oversize body", signed("/hooks/shop/orders", &format!(r#"{{"value": 1, "pad": "{}"}}"#, "x".repeat(MAX_BODY)), now, SECRET), StatusCode::PAYLOAD_TOO_LARGE, ""),
            (
                "unsigned",
                Request::post("/hooks/shop/orders").body(Body::from(r#"{"value": 45}"#)).unwrap(),
                StatusCode::UNAUTHORIZED,
                "missing header X-Swell-Timestamp",
            ),
        ];
        for (what, req, code, reason) in bad {
            let (status, body) = send(&router, req).await;
            assert_eq!(status, code, "{what}: {body}");
            assert!(body.contains(reason), "{what}: {body:?} does not say {reason:?}");
        }
        // No trace: the value and the replicas are where they were.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(engine.external_metric(None, "ns", "events", "s0-webhook-0"), Some(0.0));
        assert_eq!(engine.object("shop", id).unwrap().desired_replicas, Some(0));

        // A good push: activation (0 → 1), then 35 / 10 per replica = 4, long before the 30 s poll.
        let body = r#"{"value": 35}"#;
        let good = || signed("/hooks/shop/orders", body, now, SECRET);
        let pushed = Instant::now();
        let (status, answer) = send(&router, good()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        while engine.object("shop", id).unwrap().desired_replicas != Some(4) {
            assert!(pushed.elapsed() < Duration::from_secs(1), "the push did not reach decide within one tick");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!("push to decision: {} ms", pushed.elapsed().as_millis());
        // The same signed request again is a replay.
        let (status, answer) = send(&router, good()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
        // A counter push adds.
        let (status, answer) = send(&router, signed("/hooks/shop/orders", r#"{"add": 10}"#, now, SECRET)).await;
        assert_eq!((status, answer.contains("45")), (StatusCode::ACCEPTED, true), "{answer}");
        let metrics = engine.metrics().encode();
        assert!(metrics.contains(r#"swell_webhook_requests_total{outcome="bad_signature"} 1"#), "{metrics}");
        assert!(metrics.contains(r#"swell_webhook_requests_total{outcome="accepted"} 2"#), "{metrics}");
    }
}
