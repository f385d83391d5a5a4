//! What pages exchange with the server: row types and server functions. Each server function
//! is one engine call; the same functions are Swell's HTTP API.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of the overview.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectRow {
    pub id: i32,
    pub namespace: String,
    pub name: String,
    pub target: String,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub current_replicas: Option<i32>,
    pub ready_replicas: Option<i32>,
    pub desired_replicas: Option<i32>,
    pub phase: String,
    pub metrics: Vec<(String, f64)>,
    pub last_decision: Option<String>,
    pub error: Option<String>,
    pub override_: Option<String>,
    /// When the values above were read (unix ms); none before the first poll.
    pub polled_at_ms: Option<i64>,
    pub triggers: Vec<TriggerRow>,
    pub forecast: Option<String>,
    pub model_status: Option<String>,
    pub anomaly: Option<String>,
    /// `swell` (made in Swell: editable here) or `cluster` (a CRD: override and pause only).
    pub origin: String,
    pub cluster: String,
}

/// One trigger of an object: what it reads, its targets and its last reading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerRow {
    pub kind: String,
    pub metric: String,
    pub target: f64,
    pub activation_target: f64,
    pub last: Option<f64>,
    pub error: Option<String>,
    pub latency_ms: u64,
}

impl ObjectRow {
    /// Objects with an error, an anomaly or a manual override come first on the overview.
    pub fn needs_attention(&self) -> bool {
        self.error.is_some() || self.anomaly.is_some() || self.override_.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub tenant: String,
    pub tenants: Vec<String>,
    pub objects: Vec<ObjectRow>,
    /// Each object's recent readings of its first metric (unix ms, value), for sparklines.
    pub sparks: Vec<(i32, Vec<(i64, f64)>)>,
}

/// Readings a sparkline shows (what the engine keeps per object).
pub const SPARK_POINTS: usize = 60;

/// `v` to 4 significant digits: what a 28-pixel sparkline can show, and a third of the
/// page weight its readings cost at full precision.
pub fn spark_value(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(3 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// Who a request comes from, as the server's authentication layer found it.
#[cfg(feature = "ssr")]
#[derive(Clone, Debug, Default)]
pub struct Caller {
    pub principal: Option<engine::access::Principal>,
    /// Authenticated by an API token (no cookie, so no cross-site request can carry it).
    pub by_token: bool,
}

/// CSRF check for a state-changing request made with the session cookie: its Origin must be
/// Swell's own (`public_url`, or the Host it was sent to); without Origin, the browser's
/// `Sec-Fetch-Site` must say same-origin.
#[cfg(feature = "ssr")]
pub fn check_origin(headers: &http::HeaderMap, public_url: &str) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header("origin") {
        Some(origin) => {
            let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or_default();
            if origin.trim_end_matches('/') == public_url.trim_end_matches('/') || header("host") == Some(authority) {
                Ok(())
            } else {
                Err(format!("cross-site request refused: Origin {origin:?} is not this Swell ({public_url})"))
            }
        }
        None if header("sec-fetch-site") == Some("same-origin") => Ok(()),
        None => Err("cross-site request refused: no Origin header; send it, or use an API token".into()),
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use engine::access::{Principal, Role};
    use leptos::prelude::*;

    /// The engine handed to every request by the server (`leptos_routes_with_context`).
    pub fn engine() -> Result<engine::Engine, ServerFnError> {
        use_context::<engine::Engine>().ok_or_else(|| ServerFnError::new("engine missing from context"))
    }

    /// The address users reach Swell at (for the Origin check), provided with the engine.
    #[derive(Clone, Debug)]
    pub struct PublicUrl(pub String);

    /// The one place engine errors become server-function errors (messages name the field).
    pub fn fail(e: engine::Error) -> ServerFnError {
        if matches!(e, engine::Error::Refused(_)) {
            status(http::StatusCode::FORBIDDEN);
        } else if matches!(e, engine::Error::NotFound(_)) {
            status(http::StatusCode::NOT_FOUND);
        }
        ServerFnError::new(e.to_string())
    }

    /// An object the caller named does not exist (404, so clients can tell it from a failure).
    pub fn not_found(tenant: &str, id: i32) -> ServerFnError {
        status(http::StatusCode::NOT_FOUND);
        ServerFnError::new(format!("no scaled object {id} in tenant {tenant:?}"))
    }

    fn status(code: http::StatusCode) {
        if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
            r.set_status(code);
        }
    }

    /// The caller of this request (nobody when the layer found no session or token).
    pub fn caller() -> super::Caller {
        use_context::<http::request::Parts>().and_then(|p| p.extensions.get::<super::Caller>().cloned()).unwrap_or_default()
    }

    /// The tenant a page asked for, else the caller's own.
    pub fn tenant_or_own(tenant: Option<String>) -> String {
        tenant.filter(|t| !t.is_empty()).or_else(|| caller().principal.map(|p| p.tenant)).unwrap_or_default()
    }

    /// Every server function's authorization: the caller needs `role` in `tenant`; a change
    /// made with the session cookie must also come from Swell's own pages. A refusal is
    /// answered 403 and written to the audit log.
    pub async fn authorize(tenant: &str, role: Role, action: &str) -> Result<Principal, ServerFnError> {
        let caller = caller();
        let engine = engine()?;
        let checked = engine::access::authorize(caller.principal.as_ref(), tenant, role, action).map_err(|e| e.to_string()).and_then(|p| {
            if role > Role::Viewer && !caller.by_token {
                let parts = use_context::<http::request::Parts>();
                let public = use_context::<PublicUrl>().map(|u| u.0).unwrap_or_default();
                let headers = parts.map(|p| p.headers).unwrap_or_default();
                super::check_origin(&headers, &public).map_err(|e| format!("refused: {action}: {e}"))?;
            }
            Ok(p.clone())
        });
        match checked {
            Ok(p) => Ok(p),
            Err(msg) => {
                engine.audit_refusal(caller.principal.as_ref(), Some(tenant), action, &msg).await;
                status(http::StatusCode::FORBIDDEN);
                Err(ServerFnError::new(msg))
            }
        }
    }

    impl From<engine::ObjectView> for super::ObjectRow {
        fn from(v: engine::ObjectView) -> Self {
            super::ObjectRow {
                id: v.id,
                namespace: v.namespace,
                name: v.name,
                target: v.target,
                min_replicas: v.min_replicas,
                max_replicas: v.max_replicas,
                current_replicas: v.current_replicas,
                ready_replicas: v.ready_replicas,
                desired_replicas: v.desired_replicas,
                phase: v.phase,
                metrics: v.metrics,
                last_decision: v.last_decision,
                error: v.error,
                override_: v.override_,
                polled_at_ms: v.last_decision_at.map(|t| t.timestamp_millis()),
                triggers: v
                    .triggers
                    .into_iter()
                    .map(|t| super::TriggerRow {
                        kind: t.kind,
                        metric: t.metric,
                        target: t.target,
                        activation_target: t.activation_target,
                        last: t.last.as_ref().ok().copied(),
                        error: t.last.err(),
                        latency_ms: t.latency_ms,
                    })
                    .collect(),
                forecast: v.forecast.map(|f| format!("{:.1} (up to {:.1}) in {} s by {} v{}: {} replicas", f.mean, f.upper, f.horizon_secs, f.model, f.version, f.replicas)),
                model_status: v.model_status,
                anomaly: v.anomaly.map(|a| format!("{}: {} ({}{})", a.metric, a.finding, a.policy, if a.mitigated { ", acted" } else { "" })),
                origin: v.origin,
                cluster: v.cluster,
            }
        }
    }

    impl From<engine::DecisionView> for super::DecisionRow {
        fn from(d: engine::DecisionView) -> Self {
            super::DecisionRow {
                at: d.at.format("%H:%M:%S").to_string(),
                at_ms: d.at.timestamp_millis(),
                state: d.state,
                rule: d.rule,
                prev_replicas: d.prev_replicas,
                new_replicas: d.new_replicas,
                explanation: d.explanation,
            }
        }
    }
}

/// The tenant's ScaledObjects; no tenant means the caller's own.
#[server(client = crate::client::ApiClient, endpoint = "load_overview")]
pub async fn load_overview(tenant: Option<String>) -> Result<Overview, ServerFnError> {
    let tenant = ssr::tenant_or_own(tenant);
    ssr::authorize(&tenant, engine::access::Role::Viewer, "load_overview").await?;
    let views = ssr::engine()?.overview(&tenant);
    let sparks = views.iter().map(|v| (v.id, v.spark.iter().map(|&(at, x)| (at, spark_value(x))).collect())).collect();
    let objects = views.into_iter().map(ObjectRow::from).collect();
    Ok(Overview { tenants: vec![tenant.clone()], tenant, objects, sparks })
}


/// One recorded decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRow {
    pub at: String,
    pub at_ms: i64,
    pub state: String,
    pub rule: String,
    pub prev_replicas: i32,
    pub new_replicas: i32,
    pub explanation: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectDetail {
    pub tenant: String,
    pub object: ObjectRow,
    pub decisions: Vec<DecisionRow>,
}

/// How many decisions the object page lists.
pub const DECISIONS_SHOWN: u64 = 50;

/// One object with its newest decisions, of one `rule` and within `since` (15m, 1h, 6h,
/// 24h, 7d) when given.
#[server(client = crate::client::ApiClient, endpoint = "load_object")]
pub async fn load_object(tenant: String, id: i32, rule: Option<String>, since: Option<String>) -> Result<ObjectDetail, ServerFnError> {
    ssr::authorize(&tenant, engine::access::Role::Viewer, "load_object").await?;
    let engine = ssr::engine()?;
    let object = engine.object(&tenant, id).ok_or_else(|| ssr::not_found(&tenant, id))?;
    let since = match since.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(chrono::Utc::now() - chrono::Duration::milliseconds(crate::history::range_ms(s).map_err(|e| ServerFnError::new(e.replacen("range", "since", 1)))?)),
        None => None,
    };
    let rule = rule.filter(|r| !r.is_empty());
    let decisions = engine.decisions_where(&tenant, id, rule.as_deref(), since, DECISIONS_SHOWN).await.map_err(ssr::fail)?;
    Ok(ObjectDetail {
        tenant,
        object: object.into(),
        decisions: decisions.into_iter().map(DecisionRow::from).collect(),
    })
}

/// Parses the optional "expires in minutes" form field.
#[cfg(feature = "ssr")]
fn expiry(minutes: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ServerFnError> {
    match minutes.trim() {
        "" => Ok(None),
        m => match m.parse::<u32>() {
            Ok(n) if n > 0 => Ok(Some(chrono::Utc::now() + chrono::Duration::minutes(n as i64))),
            _ => Err(ServerFnError::new(format!("expires_minutes: {m:?} is not a whole number of minutes above 0; leave it empty for no expiry"))),
        },
    }
}

/// Fixes an object's replicas until resumed or expired.
#[server(client = crate::client::ApiClient, endpoint = "override_replicas")]
pub async fn override_replicas(tenant: String, id: i32, replicas: String, reason: String, expires_minutes: String) -> Result<(), ServerFnError> {
    let who = ssr::authorize(&tenant, engine::access::Role::Operator, "override_replicas").await?;
    let replicas: i32 = replicas.trim().parse().map_err(|_| ServerFnError::new(format!("replicas: {replicas:?} is not a whole number")))?;
    ssr::engine()?
        .set_override(&tenant, id, engine::OverrideInput::Replicas(replicas), &reason, &who.actor, expiry(&expires_minutes)?)
        .await
        .map_err(ssr::fail)
}

/// Stops scaling an object at its current replicas until resumed or expired.
#[server(client = crate::client::ApiClient, endpoint = "pause_object")]
pub async fn pause_object(tenant: String, id: i32, reason: String, expires_minutes: String) -> Result<(), ServerFnError> {
    let who = ssr::authorize(&tenant, engine::access::Role::Operator, "pause_object").await?;
    ssr::engine()?
        .set_override(&tenant, id, engine::OverrideInput::Pause, &reason, &who.actor, expiry(&expires_minutes)?)
        .await
        .map_err(ssr::fail)
}

/// Clears an override or pause.
#[server(client = crate::client::ApiClient, endpoint = "resume_object")]
pub async fn resume_object(tenant: String, id: i32) -> Result<(), ServerFnError> {
    let who = ssr::authorize(&tenant, engine::access::Role::Operator, "resume_object").await?;
    ssr::engine()?.clear_override(&tenant, id, "resumed from the dashboard", &who.actor).await.map(|_| ()).map_err(ssr::fail)
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
}

/// How many audit entries the page lists.
pub const AUDIT_SHOWN: u64 = 200;

/// The tenant's audit log, newest first; `action` keeps entries whose action starts with it.
#[server(client = crate::client::ApiClient, endpoint = "load_audit")]
pub async fn load_audit(tenant: String, action: Option<String>) -> Result<Vec<AuditRow>, ServerFnError> {
    ssr::authorize(&tenant, engine::access::Role::Viewer, "load_audit").await?;
    let entries = ssr::engine()?.audit_log(&tenant, action.as_deref().unwrap_or_default(), AUDIT_SHOWN).await.map_err(ssr::fail)?;
    Ok(entries
        .into_iter()
        .map(|e| AuditRow { at: e.at.format("%Y-%m-%d %H:%M:%S").to_string(), actor: e.actor, action: e.action, target: e.target, reason: e.reason })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn spark_values_keep_four_significant_digits() {
        use super::spark_value;
        assert_eq!(spark_value(63.95310958400023), 63.95);
        assert_eq!(spark_value(0.0012345), 0.001235);
        assert_eq!(spark_value(-123456.7), -123500.0);
        assert_eq!(spark_value(0.0), 0.0);
        assert!(spark_value(f64::NAN).is_nan());
        assert_eq!(serde_json::to_string(&spark_value(29.008696010517177)).unwrap(), "29.01");
    }
}
