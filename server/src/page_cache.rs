//! The overview and object pages, rendered once per change and served to every caller of
//! the tenant: a page stays good until the engine announces any change (its generation
//! moves) or for [`MAX_AGE`] (chart axes end at "now"), and callers arriving while it is
//! being rendered wait for that render instead of starting their own. These two pages show
//! the same to every caller allowed into the tenant (the guard in front checked that); the
//! caller's role is part of the key all the same, so a page that one day differs by role
//! stays right.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use engine::Engine;

use crate::auth::Caller;

/// The oldest page served while nothing changed.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Pages kept at most (paths with queries are keys too); beyond it nothing new is kept.
const MAX_ENTRIES: usize = 512;
/// A page bigger than this is served as rendered and not kept.
const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Clone)]
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The engine's generation when the render began.
    generation: u64,
    finished: Instant,
}

/// One key's page, behind an async lock held while it is rendered (callers queue on it).
type Slot = Arc<tokio::sync::Mutex<Option<Page>>>;

#[derive(Clone, Default)]
pub struct PageCache {
    slots: Arc<Mutex<HashMap<(String, String), Slot>>>,
}

impl PageCache {
    fn slot(&self, key: (String, String)) -> Option<Slot> {
        let mut slots = self.slots.lock().expect("page cache lock");
        if let Some(slot) = slots.get(&key) {
            return Some(slot.clone());
        }
        if slots.len() >= MAX_ENTRIES {
            // Drop pages nobody waits for and that are too old to serve anyway.
            slots.retain(|_, s| Arc::strong_count(s) > 1 || s.try_lock().is_ok_and(|p| p.as_ref().is_some_and(|p| p.finished.elapsed() < MAX_AGE)));
            if slots.len() >= MAX_ENTRIES {
                return None;
            }
        }
        Some(slots.entry(key).or_default().clone())
    }
}

/// Whether `path` is one of the cached pages: `/t/{tenant}` or `/t/{tenant}/o/{id}`.
pub fn cached_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/t/") else { return false };
    let mut parts = rest.split('/');
    let tenant_ok = parts.next().is_some_and(|t| !t.is_empty());
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => tenant_ok,
        (Some("o"), Some(id), None) => tenant_ok && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// Whether `page` may answer a caller who arrived at `arrived` while the engine's
/// generation was `generation`: rendered after they arrived, or nothing changed since its
/// render began and it is young enough.
fn good_for(page: &Page, arrived: Instant, generation: u64) -> bool {
    page.finished >= arrived || (page.generation == generation && page.finished.elapsed() < MAX_AGE)
}

pub async fn serve(State((cache, engine)): State<(PageCache, Engine)>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET || !cached_path(req.uri().path()) {
        return next.run(req).await;
    }
    let Some(role) = req.extensions().get::<Caller>().and_then(|c| c.principal.as_ref()).map(|p| format!("{:?}", p.role)) else {
        return next.run(req).await;
    };
    let arrived = Instant::now();
    let key = (req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default(), role);
    let Some(slot) = cache.slot(key) else { return next.run(req).await };
    let mut held = slot.lock().await;
    if let Some(page) = held.as_ref().filter(|p| good_for(p, arrived, engine.generation())) {
        return respond(page);
    }
    let generation = engine.generation();
    let (parts, body) = next.run(req).await.into_parts();
    if parts.status != StatusCode::OK {
        *held = None;
        return Response::from_parts(parts, body);
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            *held = None;
            tracing::warn!(error = %e, "page not kept: its body could not be read");
            return Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).body(Body::from("the page could not be rendered")).expect("static response");
        }
    };
    let mut headers = parts.headers.clone();
    // A cookie meant for this caller is never replayed to the next one.
    headers.remove(axum::http::header::SET_COOKIE);
    let page = Page { status: parts.status, headers, body: body.clone(), generation, finished: Instant::now() };
    *held = Some(page);
    Response::from_parts(parts, Body::from(body))
}

fn respond(page: &Page) -> Response {
    let mut response = Response::new(Body::from(page.body.clone()));
    *response.status_mut() = page.status;
    *response.headers_mut() = page.headers.clone();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_overview_and_object_pages_are_kept() {
        for p in ["/t/demo", "/t/demo/o/12"] {
            assert!(cached_path(p), "{p}");
        }
        for p in ["/", "/t/", "/t//o/1", "/t/demo/", "/t/demo/o/", "/t/demo/o/1/edit", "/t/demo/o/x", "/t/demo/audit", "/t/demo/login", "/api/load_overview"] {
            assert!(!cached_path(p), "{p}");
        }
    }

    fn page(generation: u64, finished: Instant) -> Page {
        Page { status: StatusCode::OK, headers: HeaderMap::new(), body: Bytes::new(), generation, finished }
    }

    #[test]
    fn a_page_is_good_until_a_change_or_its_age() {
        let now = Instant::now();
        let arrived = now + Duration::from_millis(1);
        // Rendered before the caller came: good while nothing changed and it is young.
        assert!(good_for(&page(7, now), arrived, 7));
        assert!(!good_for(&page(7, now), arrived, 8));
        let old = now.checked_sub(MAX_AGE + Duration::from_millis(10)).expect("an earlier instant");
        assert!(!good_for(&page(7, old), arrived, 7));
        // Finished after the caller came (they waited for it): good whatever changed since.
        assert!(good_for(&page(7, arrived + Duration::from_millis(1)), arrived, 9));
    }
}
