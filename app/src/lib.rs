//! The dashboard: Leptos pages and the server functions they call. Server functions are
//! one-liners over `engine`; the same functions are Swell's HTTP API.

use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    StaticSegment, ParamSegment,
    components::{A, Route, Router, Routes},
    hooks::use_params_map,
};
use serde::{Deserialize, Serialize};

/// How often the overview asks for fresh values.
const REFRESH: Duration = Duration::from_secs(2);

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

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="data:,"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/swell.css"/>
        <Title text="Swell"/>
        <Router>
            <header class="top">
                <a class="brand" href="/">"Swell"</a>
                <span class="tagline">"event-driven, predictive autoscaling"</span>
            </header>
            <main>
                <Routes fallback=|| view! { <p class="error">"Page not found."</p> }>
                    <Route path=StaticSegment("") view=move || view! { <OverviewPage tenant=None/> }/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant")) view=TenantOverview/>
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn TenantOverview() -> impl IntoView {
    let params = use_params_map();
    let tenant = Signal::derive(move || params.read().get("tenant"));
    view! { <OverviewPage tenant=tenant/> }
}

/// Marks the page hydrated (for tests and for styling live parts) and ticks every REFRESH.
fn live_ticker() -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0u64);
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
        if let Ok(handle) = set_interval_with_handle(move || set_tick.update(|t| *t += 1), REFRESH) {
            on_cleanup(move || handle.clear());
        }
    });
    tick
}

#[component]
fn OverviewPage(#[prop(into)] tenant: Signal<Option<String>>) -> impl IntoView {
    let tick = live_ticker();
    let data = Resource::new(move || (tenant.get(), tick.get()), |(tenant, _)| load_overview(tenant));
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|result| match result {
                        Ok(o) => view! { <OverviewTable overview=o/> }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Transition>
    }
}

fn show(n: Option<i32>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "–".into())
}

#[component]
fn OverviewTable(overview: Overview) -> impl IntoView {
    let tenant = overview.tenant.clone();
    view! {
        <nav class="tenants">
            "Tenant: "
            {overview
                .tenants
                .into_iter()
                .map(|t| {
                    let class = if t == tenant { "tenant current" } else { "tenant" };
                    view! { <A href=format!("/t/{t}") attr:class=class>{t}</A> }
                })
                .collect_view()}
        </nav>
        <h1>"Scaled objects"</h1>
        {if overview.objects.is_empty() {
            view! { <p class="empty">"No ScaledObjects in this tenant yet."</p> }.into_any()
        } else {
            view! {
                <table class="objects">
                    <thead>
                        <tr>
                            <th>"Name"</th>
                            <th>"Target"</th>
                            <th class="num">"Min"</th>
                            <th class="num">"Max"</th>
                            <th class="num">"Current"</th>
                            <th class="num">"Ready"</th>
                            <th class="num">"Desired"</th>
                            <th>"State"</th>
                            <th>"Metric"</th>
                            <th>"Last decision"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {overview
                            .objects
                            .into_iter()
                            .map(|o| {
                                let metric = o
                                    .metrics
                                    .iter()
                                    .map(|(name, value)| format!("{name} = {value:.1}"))
                                    .collect::<Vec<_>>()
                                    .join(", ");
                                let state_class = format!("state {}", o.phase.to_lowercase());
                                let row_key = o.name.clone();
                                view! {
                                    <tr data-object=row_key>
                                        <td class="name">{o.namespace}"/"{o.name}</td>
                                        <td>{o.target}</td>
                                        <td class="num">{o.min_replicas}</td>
                                        <td class="num">{o.max_replicas}</td>
                                        <td class="num current">{show(o.current_replicas)}</td>
                                        <td class="num ready">{show(o.ready_replicas)}</td>
                                        <td class="num desired">{show(o.desired_replicas)}</td>
                                        <td><span class=state_class>{o.phase}</span></td>
                                        <td class="metric">{metric}</td>
                                        <td class="decision">
                                            {o.last_decision}
                                            {o.error.map(|e| view! { <div class="error">{e}</div> })}
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            }
                .into_any()
        }}
    }
}
