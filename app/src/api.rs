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
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub tenant: String,
    pub tenants: Vec<String>,
    pub objects: Vec<ObjectRow>,
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use leptos::prelude::*;

    /// The engine handed to every request by the server (`leptos_routes_with_context`).
    pub fn engine() -> Result<engine::Engine, ServerFnError> {
        use_context::<engine::Engine>().ok_or_else(|| ServerFnError::new("engine missing from context"))
    }

    /// The one place engine errors become server-function errors (messages name the field).
    pub fn fail(e: engine::Error) -> ServerFnError {
        ServerFnError::new(e.to_string())
    }

    /// Who is acting. Until login exists (tenancy issue) every dashboard change is "dashboard".
    pub fn actor() -> String {
        "dashboard".into()
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
            }
        }
    }
}

/// The tenant's ScaledObjects; no tenant means the first one.
#[server]
pub async fn load_overview(tenant: Option<String>) -> Result<Overview, ServerFnError> {
    let engine = ssr::engine()?;
    let tenants = engine.tenants();
    let tenant = tenant.or_else(|| tenants.first().cloned()).unwrap_or_default();
    if !tenants.contains(&tenant) && !tenant.is_empty() {
        return Err(ServerFnError::new(format!("no tenant named {tenant:?}")));
    }
    let objects = engine.overview(&tenant).into_iter().map(ObjectRow::from).collect();
    Ok(Overview { tenant, tenants, objects })
}


/// One recorded decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRow {
    pub at: String,
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

/// One object with its newest decisions.
#[server]
pub async fn load_object(tenant: String, id: i32) -> Result<ObjectDetail, ServerFnError> {
    let engine = ssr::engine()?;
    let object = engine.object(&tenant, id).ok_or_else(|| ServerFnError::new(format!("no scaled object {id} in tenant {tenant:?}")))?;
    let decisions = engine.decisions(&tenant, id, DECISIONS_SHOWN).await.map_err(ssr::fail)?;
    Ok(ObjectDetail {
        tenant,
        object: object.into(),
        decisions: decisions
            .into_iter()
            .map(|d| DecisionRow {
                at: d.at.format("%H:%M:%S").to_string(),
                state: d.state,
                rule: d.rule,
                prev_replicas: d.prev_replicas,
                new_replicas: d.new_replicas,
                explanation: d.explanation,
            })
            .collect(),
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
#[server]
pub async fn override_replicas(tenant: String, id: i32, replicas: String, reason: String, expires_minutes: String) -> Result<(), ServerFnError> {
    let replicas: i32 = replicas.trim().parse().map_err(|_| ServerFnError::new(format!("replicas: {replicas:?} is not a whole number")))?;
    ssr::engine()?
        .set_override(&tenant, id, engine::OverrideInput::Replicas(replicas), &reason, &ssr::actor(), expiry(&expires_minutes)?)
        .await
        .map_err(ssr::fail)
}

/// Stops scaling an object at its current replicas until resumed or expired.
#[server]
pub async fn pause_object(tenant: String, id: i32, reason: String, expires_minutes: String) -> Result<(), ServerFnError> {
    ssr::engine()?
        .set_override(&tenant, id, engine::OverrideInput::Pause, &reason, &ssr::actor(), expiry(&expires_minutes)?)
        .await
        .map_err(ssr::fail)
}

/// Clears an override or pause.
#[server]
pub async fn resume_object(tenant: String, id: i32) -> Result<(), ServerFnError> {
    ssr::engine()?.clear_override(&tenant, id, "resumed from the dashboard", &ssr::actor()).await.map(|_| ()).map_err(ssr::fail)
}
