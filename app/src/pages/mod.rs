pub mod audit;
pub mod clusters;
pub mod editor;
mod form;
pub mod jobs;
pub mod live;
pub mod models;
pub mod object;
mod object_parts;
pub mod overview;
pub mod sources;
pub mod what_if;

use leptos::prelude::*;
use leptos_router::components::A;

/// The pages of a tenant, as the navigation lists them: (key, title, path after /t/{tenant}).
pub const TENANT_PAGES: [(&str, &str, &str); 7] = [
    ("overview", "Scaled objects", ""),
    ("jobs", "Scaled jobs", "/jobs"),
    ("sources", "Event sources", "/sources"),
    ("clusters", "Clusters", "/clusters"),
    ("models", "Models", "/models"),
    ("audit", "Audit log", "/audit"),
    ("new", "Create", "/new"),
];

/// The navigation of a tenant's pages, `current` marked for screen readers too.
#[component]
pub fn TenantNav(tenant: String, current: &'static str) -> impl IntoView {
    view! {
        <nav class="tenants" aria-label="tenant pages">
            <span class="tenant-name">"Tenant " <strong class="tenant current">{tenant.clone()}</strong></span>
            {TENANT_PAGES
                .into_iter()
                .map(|(key, title, path)| {
                    let here = key == current;
                    view! {
                        <A href=format!("/t/{tenant}{path}") attr:class=format!("page-link {key}-link") attr:aria-current=here.then_some("page")>
                            {title}
                        </A>
                    }
                })
                .collect_view()}
        </nav>
    }
}

pub fn show(n: Option<i32>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "–".into())
}

/// Metric readings as one line: `name = 12.5, other = 3.0`.
pub fn metric_text(metrics: &[(String, f64)]) -> String {
    metrics.iter().map(|(n, v)| format!("{n} = {v:.1}")).collect::<Vec<_>>().join(", ")
}
