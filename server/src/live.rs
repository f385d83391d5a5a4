//! `GET /live/{tenant}`: the dashboard's (and `swell watch`'s) websocket. It sends the
//! tenant's objects, then every change as it happens: the engine announces which object
//! changed and this task reads its newest view, so a burst coalesces into one message. A
//! client that cannot keep up is sent a fresh snapshot (it lagged) or dropped (a send
//! stalled); nothing buffers without bound.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use app::api::{DecisionRow, ObjectRow};
use app::live::{LiveDecision, LiveMessage};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::Engine;
use engine::access::Role;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::{self, Auth, Caller};

/// Changes arriving within this window after the first go out in one message.
const COALESCE: Duration = Duration::from_millis(40);
/// A send that takes longer drops the client (it reconnects and starts from a snapshot).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the connection is pinged, and its caller checked again (a revoked token or
/// an ended session stops the stream within this).
const KEEPALIVE: Duration = auth::RECHECK;
/// Decisions kept for the next message; older ones are left to the decision log in SQL.
const MAX_PENDING_DECISIONS: usize = 256;
/// Clients send nothing but pings and close frames.
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

pub async fn upgrade(
    State(auth): State<Arc<Auth>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let engine = auth.engine.clone();
    if let Err(refused) = auth::require(&engine, &caller, &tenant, Role::Viewer, "live").await {
        return refused;
    }
    // Browsers send the cookie on a cross-site websocket too: only Swell's own pages may.
    if !caller.by_token {
        if let Err(e) = app::api::check_origin(&headers, &auth.public_url) {
            engine.audit_refusal(caller.principal.as_ref(), Some(&tenant), "live", &e).await;
            return (StatusCode::FORBIDDEN, e).into_response();
        }
    }
    let Ok(ws) = ws else {
        return (StatusCode::UPGRADE_REQUIRED, "this is a websocket: connect with `Upgrade: websocket`").into_response();
    };
    ws.max_message_size(MAX_CLIENT_MESSAGE).on_upgrade(move |socket| async move {
        if let Err(e) = serve(&auth, &tenant, &headers, socket).await {
            tracing::debug!(tenant = %tenant, error = %e, "live stream ended");
        }
    })
}

/// The newest views of `ids` in `tenant`, and the ones that are gone.
fn rows(engine: &Engine, tenant: &str, ids: &BTreeSet<i32>) -> (Vec<ObjectRow>, Vec<i32>) {
    let mut found = Vec::new();
    let mut gone = Vec::new();
    for &id in ids {
        match engine.object(tenant, id) {
            Some(v) => found.push(ObjectRow::from(v)),
            None => gone.push(id),
        }
    }
    (found, gone)
}

fn snapshot(engine: &Engine, tenant: &str) -> Message {
    let objects = engine.overview(tenant).into_iter().map(ObjectRow::from).collect();
    Message::Text(LiveMessage::Snapshot { objects }.to_json().into())
}

async fn send(socket: &mut WebSocket, msg: Message) -> Result<(), String> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(msg)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("a send stalled for {SEND_TIMEOUT:?}: slow client dropped")),
    }
}

async fn serve(auth: &Auth, tenant: &str, headers: &HeaderMap, mut socket: WebSocket) -> Result<(), String> {
    let engine = &auth.engine;
    // Subscribed before the snapshot is read: a change in between is sent again, not lost.
    let mut changes = engine.subscribe();
    send(&mut socket, snapshot(engine, tenant)).await?;
    let mut dirty = BTreeSet::new();
    let mut decisions: Vec<LiveDecision> = Vec::new();
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    loop {
        let flush = async {
            match flush_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            change = changes.recv() => match change {
                Ok(c) if c.tenant == tenant => {
                    dirty.insert(c.object_id);
                    if let Some(d) = c.decision {
                        if decisions.len() >= MAX_PENDING_DECISIONS {
                            decisions.remove(0);
                        }
                        decisions.push(LiveDecision { object_id: c.object_id, decision: DecisionRow::from(d) });
                    }
                    flush_at.get_or_insert_with(|| tokio::time::Instant::now() + COALESCE);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    // Fell behind the engine: everything afresh instead of what was missed.
                    dirty.clear();
                    decisions.clear();
                    flush_at = None;
                    send(&mut socket, snapshot(engine, tenant)).await?;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = flush => {
                flush_at = None;
                let (objects, removed) = rows(engine, tenant, &std::mem::take(&mut dirty));
                let msg = LiveMessage::Update { objects, decisions: std::mem::take(&mut decisions), removed };
                send(&mut socket, Message::Text(msg.to_json().into())).await?;
            }
            _ = keepalive.tick() => {
                match auth::recheck(auth, headers).await {
                    Some(p) if p.tenant == tenant => {}
                    _ => {
                        let _ = send(&mut socket, Message::Close(Some(axum::extract::ws::CloseFrame { code: 4401, reason: "signed out".into() }))).await;
                        return Err("the caller is no longer signed in".into());
                    }
                }
                send(&mut socket, Message::Ping(Default::default())).await?;
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(_)) => {}
            },
        }
    }
}
