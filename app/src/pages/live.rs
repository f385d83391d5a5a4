//! The browser end of the live stream: one websocket per page, reconnected with backoff, its
//! messages folded into signals the pages read. On the server it is inert (pages render from
//! their resources), so the first paint and hydration match.
#![cfg_attr(not(feature = "hydrate"), allow(dead_code))]

use std::collections::BTreeMap;

use leptos::prelude::*;

use crate::api::{DecisionRow, ObjectRow};
#[cfg(feature = "hydrate")]
use crate::live::LiveMessage;

/// Readings kept per object for the charts (a day of 1 s polls is more than a page needs).
pub const MAX_POINTS: usize = 3_600;
/// Pushed decisions kept per page.
pub const MAX_DECISIONS: usize = 500;

/// One poll's reading of an object, for the charts.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub at_ms: i64,
    pub metrics: Vec<(String, f64)>,
    pub current: Option<i32>,
    pub desired: Option<i32>,
}

/// What the stream has said so far.
#[derive(Clone, Copy)]
pub struct Live {
    /// The newest row of every object; `None` until the first snapshot.
    pub rows: RwSignal<Option<BTreeMap<i32, ObjectRow>>>,
    /// Decisions pushed since the page opened, newest first.
    pub decisions: RwSignal<Vec<(i32, DecisionRow)>>,
    /// Readings pushed since the page opened, per object, oldest first.
    pub readings: RwSignal<BTreeMap<i32, Vec<Reading>>>,
    /// `connecting`, `open` or `reconnecting` (also on `<body data-live>` for tests).
    pub status: RwSignal<&'static str>,
    /// How often each of `jobs`, `sources`, `clusters` and `models` changed since the page
    /// opened: the pages showing one read it again when its count moves.
    pub touched: RwSignal<BTreeMap<String, u32>>,
    /// The parts of a snapshot received so far (it is applied when its last part arrives).
    partial: StoredValue<Vec<ObjectRow>>,
}

/// What [`Live::touched`] counts.
pub const TOPICS: [&str; 4] = ["jobs", "sources", "clusters", "models"];

impl Live {
    fn new() -> Self {
        Live {
            rows: RwSignal::new(None),
            decisions: RwSignal::new(Vec::new()),
            readings: RwSignal::new(BTreeMap::new()),
            status: RwSignal::new("connecting"),
            touched: RwSignal::new(BTreeMap::new()),
            partial: StoredValue::new(Vec::new()),
        }
    }

    /// How often `topic` changed since the page opened (a key for a page's resource).
    pub fn touches(&self, topic: &str) -> u32 {
        self.touched.with(|t| t.get(topic).copied().unwrap_or(0))
    }

    /// The newest row of `id`, if the stream has one.
    pub fn row(&self, id: i32) -> Option<ObjectRow> {
        self.rows.with(|rows| rows.as_ref().and_then(|r| r.get(&id).cloned()))
    }

    #[cfg(feature = "hydrate")]
    fn apply(&self, msg: LiveMessage) {
        let (objects, decisions, removed, replace, mut touched) = match msg {
            LiveMessage::Snapshot { objects, part, more } => {
                self.partial.update_value(|p| {
                    if part == 0 {
                        p.clear();
                    }
                    p.extend(objects);
                });
                if more {
                    return;
                }
                (self.partial.try_update_value(std::mem::take).unwrap_or_default(), Vec::new(), Vec::new(), true, Vec::new())
            }
            LiveMessage::Update { objects, decisions, removed, touched } => (objects, decisions, removed, false, touched),
        };
        self.rows.with_untracked(|rows| {
            let Some(rows) = rows else { return };
            if replace {
                // A snapshot after a reconnect: anything may have changed meanwhile.
                touched = TOPICS.map(String::from).to_vec();
            } else if objects.iter().any(|o| rows.get(&o.id).is_some_and(|old| old.model_status != o.model_status)) {
                touched.push("models".into());
            }
        });
        if !touched.is_empty() {
            self.touched.update(|t| {
                for topic in touched {
                    *t.entry(topic).or_default() += 1;
                }
            });
        }
        self.readings.update(|all| {
            for o in &objects {
                let Some(at_ms) = o.polled_at_ms else { continue };
                let points = all.entry(o.id).or_default();
                if points.last().is_some_and(|p| p.at_ms >= at_ms) {
                    continue;
                }
                points.push(Reading { at_ms, metrics: o.metrics.clone(), current: o.current_replicas, desired: o.desired_replicas });
                if points.len() > MAX_POINTS {
                    points.remove(0);
                }
            }
            for id in &removed {
                all.remove(id);
            }
        });
        if !decisions.is_empty() {
            self.decisions.update(|all| {
                for d in decisions {
                    all.insert(0, (d.object_id, d.decision));
                }
                all.truncate(MAX_DECISIONS);
            });
        }
        self.rows.update(|rows| {
            let map = rows.get_or_insert_with(BTreeMap::new);
            if replace {
                map.clear();
            }
            for o in objects {
                map.insert(o.id, o);
            }
            for id in removed {
                map.remove(&id);
            }
        });
    }
}

/// Marks the page hydrated once it is (tests wait for `<body data-hydrated>`).
pub fn mark_hydrated() {
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}

/// Marks the page hydrated and opens the tenant's live stream.
pub fn use_live(tenant: Signal<String>) -> Live {
    let live = Live::new();
    mark_hydrated();
    #[cfg(feature = "hydrate")]
    {
        let handle = std::rc::Rc::new(client::Handle::default());
        let h = handle.clone();
        Effect::new(move |_| {
            let tenant = tenant.get();
            if !tenant.is_empty() {
                client::start(h.clone(), live, tenant);
            }
        });
        on_cleanup({
            let handle = send_wrapper::SendWrapper::new(handle);
            move || handle.stop()
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = tenant;
    live
}

#[cfg(feature = "hydrate")]
mod client {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    use super::Live;
    use crate::live::{LiveMessage, live_path};

    /// The first retry waits this long; each failure doubles it up to MAX_BACKOFF.
    const MIN_BACKOFF: Duration = Duration::from_millis(250);
    const MAX_BACKOFF: Duration = Duration::from_secs(10);

    type Callbacks = (Closure<dyn FnMut()>, Closure<dyn FnMut(MessageEvent)>, Closure<dyn FnMut(CloseEvent)>);

    /// The page's socket: replaced on every reconnect, closed when the page goes.
    #[derive(Default)]
    pub struct Handle {
        socket: RefCell<Option<WebSocket>>,
        callbacks: RefCell<Option<Callbacks>>,
        attempt: Cell<u32>,
        /// Bumped by `stop` and by every `start`: a stale retry sees it changed and gives up.
        generation: Cell<u64>,
    }

    impl Handle {
        pub fn stop(&self) {
            self.generation.set(self.generation.get() + 1);
            if let Some(ws) = self.socket.borrow_mut().take() {
                ws.set_onclose(None);
                let _ = ws.close();
            }
            self.callbacks.borrow_mut().take();
        }
    }

    fn mark(status: &'static str, live: Live) {
        live.status.set(status);
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-live", status);
        }
    }

    fn url(tenant: &str) -> String {
        let loc = window().location();
        let scheme = if loc.protocol().unwrap_or_default() == "https:" { "wss" } else { "ws" };
        format!("{scheme}://{}{}", loc.host().unwrap_or_default(), live_path(tenant))
    }

    /// The wait before retry number `attempt`: doubling, capped, with up to 50% jitter so a
    /// restarted server is not hit by every page at once.
    fn backoff(attempt: u32) -> Duration {
        let base = MIN_BACKOFF.saturating_mul(1u32 << attempt.min(6)).min(MAX_BACKOFF);
        base.mul_f64(1.0 + js_sys::Math::random() * 0.5)
    }

    pub fn start(handle: Rc<Handle>, live: Live, tenant: String) {
        handle.stop();
        let generation = handle.generation.get();
        connect(handle, live, tenant, generation);
    }

    fn connect(handle: Rc<Handle>, live: Live, tenant: String, generation: u64) {
        if handle.generation.get() != generation {
            return;
        }
        let retry = {
            let (handle, tenant) = (handle.clone(), tenant.clone());
            move || {
                let attempt = handle.attempt.get();
                handle.attempt.set(attempt + 1);
                mark("reconnecting", live);
                let (handle, tenant) = (handle.clone(), tenant.clone());
                set_timeout(move || connect(handle, live, tenant, generation), backoff(attempt));
            }
        };
        let ws = match WebSocket::new(&url(&tenant)) {
            Ok(ws) => ws,
            Err(_) => return retry(),
        };
        let on_open = {
            let handle = handle.clone();
            Closure::<dyn FnMut()>::new(move || {
                handle.attempt.set(0);
                mark("open", live);
            })
        };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string() {
                match serde_json::from_slice::<LiveMessage>(text.as_bytes()) {
                    Ok(msg) => live.apply(msg),
                    Err(err) => leptos::logging::warn!("live: unreadable message: {err}"),
                }
            }
        });
        let on_close = {
            let handle = handle.clone();
            let mut retry = Some(retry);
            Closure::<dyn FnMut(CloseEvent)>::new(move |_e: CloseEvent| {
                if handle.generation.get() == generation {
                    if let Some(retry) = retry.take() {
                        retry();
                    }
                }
            })
        };
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        *handle.socket.borrow_mut() = Some(ws);
        // The previous connection's callbacks go with it (its socket is closed).
        *handle.callbacks.borrow_mut() = Some((on_open, on_message, on_close));
    }
}
