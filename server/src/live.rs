//! `GET /live/{tenant}`: the dashboard's (and `swell watch`'s) websocket. It sends the
//! tenant's objects, then every change as it happens. One fan-out task per watched tenant
//! (the [`Hub`]) hears the engine announce which object changed, reads the newest views,
//! coalesces a burst into one update (in parts of at most `app::live::PART` objects, so no
//! client's send buffer grows to a whole tenant) and serializes it once for all of the tenant's
//! clients. A client that cannot keep up is sent a fresh snapshot (it lagged) or dropped (a
//! send stalled); nothing buffers without bound.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::api::{DecisionRow, ObjectRow};
use app::live::{LiveDecision, LiveMessage};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use engine::{Engine, Topic};
use engine::access::Role;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::auth::{self, Auth, Caller};

/// Changes arriving within this window after the first go out in one message.
const COALESCE: Duration = Duration::from_millis(40);
/// A send that takes longer drops the client (it reconnects and starts from a snapshot).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the connection is pinged, and its caller checked again (a revoked token or
/// an ended session stops the stream within this).
const KEEPALIVE: Duration = auth::RECHECK;
/// Jobs, sources and clusters changed are told at most this often (pages read them again).
const TOUCH_EVERY: Duration = Duration::from_secs(1);
/// Decisions kept for the next message; older ones are left to the decision log in SQL.
const MAX_PENDING_DECISIONS: usize = 256;
/// Clients send nothing but pings and close frames.
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// Messages a client may fall behind its tenant's fan-out before it is sent a snapshot
/// instead (the messages are shared, so this costs a client nothing but a counter).
const FANOUT_BUFFER: usize = 64;
/// How often an idle fan-out checks whether anyone still listens.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// The fan-out tasks, one per tenant someone watches; each ends when its last client left.
#[derive(Clone, Default)]
pub struct Hub {
    tenants: Arc<Mutex<HashMap<String, broadcast::Sender<Utf8Bytes>>>>,
}

impl Hub {
    /// `tenant`'s messages from now on, starting its fan-out if none runs.
    fn join(&self, engine: &Engine, tenant: &str) -> broadcast::Receiver<Utf8Bytes> {
        let mut tenants = self.tenants.lock().expect("hub lock");
        if let Some(tx) = tenants.get(tenant) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(FANOUT_BUFFER);
        tenants.insert(tenant.to_string(), tx.clone());
        // Subscribed here, before the client reads its snapshot: nothing in between is lost.
        let sources = (engine.subscribe(), engine.subscribe_touches());
        tokio::spawn(fan_out(self.clone(), engine.clone(), tenant.to_string(), tx, sources));
        rx
    }

    /// Ends `tenant`'s fan-out if nobody listens (under the lock [`Hub::join`] takes).
    fn leave_if_idle(&self, tenant: &str, tx: &broadcast::Sender<Utf8Bytes>) -> bool {
        let mut tenants = self.tenants.lock().expect("hub lock");
        if tx.receiver_count() > 0 {
            return false;
        }
        tenants.remove(tenant);
        true
    }
}

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
    // Small buffers: a client only reads (its pongs and close frame are tiny).
    ws.max_message_size(MAX_CLIENT_MESSAGE).read_buffer_size(4 * 1024).write_buffer_size(0).on_upgrade(move |socket| async move {
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

/// The tenant's objects as of now, as messages in parts.
fn snapshot(engine: &Engine, tenant: &str) -> Vec<Utf8Bytes> {
    let objects = engine.overview(tenant).into_iter().map(ObjectRow::from).collect();
    LiveMessage::snapshot(objects).iter().map(|m| m.to_json().into()).collect()
}

async fn send(socket: &mut WebSocket, msg: Message) -> Result<(), String> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(msg)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("a send stalled for {SEND_TIMEOUT:?}: slow client dropped")),
    }
}

async fn send_snapshot(socket: &mut WebSocket, engine: &Engine, tenant: &str) -> Result<(), String> {
    for part in snapshot(engine, tenant) {
        send(socket, Message::Text(part)).await?;
    }
    Ok(())
}

async fn serve(auth: &Auth, tenant: &str, headers: &HeaderMap, mut socket: WebSocket) -> Result<(), String> {
    let engine = &auth.engine;
    let mut frames = auth.hub.join(engine, tenant);
    send_snapshot(&mut socket, engine, tenant).await?;
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Ok(f) => send(&mut socket, Message::Text(f)).await?,
                // Fell behind the others: everything afresh instead of what was missed.
                Err(RecvError::Lagged(_)) => send_snapshot(&mut socket, engine, tenant).await?,
                Err(RecvError::Closed) => return Ok(()),
            },
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

type Sources = (broadcast::Receiver<engine::Change>, broadcast::Receiver<engine::Touch>);

/// One tenant's fan-out: changes coalesced over [`COALESCE`], each message serialized once
/// and shared by every client; jobs, sources and clusters told at most every [`TOUCH_EVERY`].
async fn fan_out(hub: Hub, engine: Engine, tenant: String, tx: broadcast::Sender<Utf8Bytes>, (mut changes, mut touches): Sources) {
    let mut dirty = BTreeSet::new();
    let mut decisions: Vec<LiveDecision> = Vec::new();
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut topics: BTreeSet<&'static str> = BTreeSet::new();
    let mut topics_sent = tokio::time::Instant::now() - TOUCH_EVERY;
    let mut idle = tokio::time::interval(IDLE_CHECK);
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
                    // Fell behind the engine: everyone gets everything afresh.
                    dirty.clear();
                    decisions.clear();
                    for part in snapshot(&engine, &tenant) {
                        let _ = tx.send(part);
                    }
                }
                Err(RecvError::Closed) => return,
            },
            touch = touches.recv() => match touch {
                Ok(t) if t.tenant.as_deref().is_none_or(|t| t == tenant) => {
                    topics.insert(t.topic.as_str());
                    flush_at.get_or_insert_with(|| tokio::time::Instant::now() + COALESCE);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    topics.extend([Topic::Jobs, Topic::Sources, Topic::Clusters].map(|t| t.as_str()));
                    flush_at.get_or_insert_with(|| tokio::time::Instant::now() + COALESCE);
                }
                Err(RecvError::Closed) => return,
            },
            _ = flush => {
                flush_at = None;
                let now = tokio::time::Instant::now();
                let touched: Vec<String> = if !topics.is_empty() && now >= topics_sent + TOUCH_EVERY {
                    topics_sent = now;
                    std::mem::take(&mut topics).into_iter().map(String::from).collect()
                } else {
                    Vec::new()
                };
                if !topics.is_empty() {
                    // Told once a second has passed since the last time.
                    flush_at = Some(topics_sent + TOUCH_EVERY);
                }
                if !(dirty.is_empty() && decisions.is_empty() && touched.is_empty()) {
                    let (objects, removed) = rows(&engine, &tenant, &std::mem::take(&mut dirty));
                    for msg in LiveMessage::update(objects, std::mem::take(&mut decisions), removed, touched) {
                        if tx.send(msg.to_json().into()).is_err() && hub.leave_if_idle(&tenant, &tx) {
                            return;
                        }
                    }
                }
            }
            _ = idle.tick() => {
                if hub.leave_if_idle(&tenant, &tx) {
                    return;
                }
            }
        }
    }
}
