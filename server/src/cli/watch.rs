//! `swell watch so NAME`: one ScaledObject followed over the dashboard's websocket
//! (`/live/{tenant}`), a line per change and per decision; it reconnects after a lost
//! connection and ends when the object is deleted.

use std::time::Duration;

use app::api::ObjectRow;
use app::live::LiveMessage;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue};

use super::{Failure, Format, Session, output};

/// What one line shows; a message that changes none of it prints nothing.
#[derive(PartialEq)]
struct Shown {
    phase: String,
    current: Option<i32>,
    desired: Option<i32>,
    metrics: String,
    error: Option<String>,
    override_: Option<String>,
}

impl Shown {
    fn of(o: &ObjectRow) -> Self {
        Shown {
            phase: o.phase.clone(),
            current: o.current_replicas,
            desired: o.desired_replicas,
            metrics: o.metrics.iter().map(|(m, v)| format!("{m}={}", app::charts::num(*v))).collect::<Vec<_>>().join(" "),
            error: o.error.clone(),
            override_: o.override_.clone(),
        }
    }
}

pub async fn watch(s: &Session, object: ObjectRow, format: Format) -> Result<(), Failure> {
    let url = format!("{}/live/{}", s.url.replacen("http", "ws", 1), s.tenant);
    let name = format!("{}/{}", object.namespace, object.name);
    let id = object.id;
    if !matches!(format, Format::Json | Format::Yaml) {
        println!("{}", output::render(&output::Rows { headers: vec!["TIME", "PHASE", "REPLICAS", "METRICS", "NOTE"], rows: vec![] }).lines().next().unwrap_or_default());
    }
    let mut last: Option<Shown> = None;
    let mut attempt = 0u32;
    loop {
        let mut request = url.as_str().into_client_request().map_err(|e| Failure::Usage(format!("{url}: {e}")))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {}", s.token)).map_err(|_| Failure::Usage("the context's token is not a valid header".into()))?;
        request.headers_mut().insert("authorization", bearer);
        let mut socket = match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => socket,
            Err(tungstenite::Error::Http(r)) if r.status() == 401 || r.status() == 403 => {
                return Err(Failure::Refused(format!("{url}: the server refused to stream tenant {:?} ({})", s.tenant, r.status())));
            }
            Err(e) => {
                attempt += 1;
                if attempt == 1 {
                    return Err(Failure::Error(format!("cannot reach {url}: {e}")));
                }
                eprintln!("swell: connection lost ({e}); retrying");
                tokio::time::sleep(engine::backoff(attempt, Duration::from_millis(250), Duration::from_secs(10))).await;
                continue;
            }
        };
        attempt = 1; // connected once: later failures are retried
        while let Some(frame) = socket.next().await {
            let text = match frame {
                Ok(Message::Text(t)) => t,
                Ok(Message::Close(_)) => break,
                Ok(_) => continue,
                Err(e) => {
                    eprintln!("swell: connection lost ({e}); reconnecting");
                    break;
                }
            };
            let message: LiveMessage = serde_json::from_str(&text).map_err(|e| Failure::Error(format!("the server sent what this CLI cannot read ({e}); is it the same version?")))?;
            let (objects, decisions, removed) = match message {
                LiveMessage::Snapshot { objects, .. } => (objects, Vec::new(), Vec::new()),
                LiveMessage::Update { objects, decisions, removed, .. } => (objects, decisions, removed),
            };
            for d in decisions.iter().filter(|d| d.object_id == id) {
                emit(format, &serde_json::json!({"decision": d.decision}), || {
                    let row = &d.decision;
                    format!("{}  {}  {} → {}  {}  {}", row.at, row.state, row.prev_replicas, row.new_replicas, row.rule, row.explanation)
                })?;
            }
            if let Some(o) = objects.iter().find(|o| o.id == id) {
                let shown = Shown::of(o);
                if last.as_ref() != Some(&shown) {
                    emit(format, &serde_json::json!({"object": o}), || {
                        let note = shown.error.clone().map(|e| format!("error: {e}")).or_else(|| shown.override_.clone()).unwrap_or_default();
                        let at = chrono::Utc::now().format("%H:%M:%S");
                        format!("{at}  {}  {}/{}  {}  {note}", shown.phase, output::opt(shown.current), output::opt(shown.desired), shown.metrics)
                    })?;
                    last = Some(shown);
                }
            }
            if removed.contains(&id) {
                eprintln!("scaledobject {name} was deleted");
                return Ok(());
            }
        }
        tokio::time::sleep(engine::backoff(attempt, Duration::from_millis(250), Duration::from_secs(10))).await;
        attempt += 1;
    }
}

/// One change: a JSON line, or a text line.
fn emit(format: Format, value: &serde_json::Value, line: impl FnOnce() -> String) -> Result<(), Failure> {
    match format {
        Format::Json | Format::Yaml => println!("{}", serde_json::to_string(value).map_err(|e| Failure::Error(format!("json: {e}")))?),
        Format::Table | Format::Wide => println!("{}", line()),
    }
    Ok(())
}
