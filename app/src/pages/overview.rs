use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};

use super::{live_ticker, show};
use crate::api::{Overview, load_overview};

#[component]
pub fn TenantOverview() -> impl IntoView {
    let params = use_params_map();
    let tenant = Signal::derive(move || params.read().get("tenant"));
    view! { <OverviewPage tenant=tenant/> }
}

#[component]
pub fn OverviewPage(#[prop(into)] tenant: Signal<Option<String>>) -> impl IntoView {
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

#[component]
fn OverviewTable(overview: Overview) -> impl IntoView {
    let tenant = overview.tenant.clone();
    let tenant_for_rows = overview.tenant.clone();
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
            " · "
            <A href=format!("/t/{tenant}/audit") attr:class="audit-link">"Audit log"</A>
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
                                let tenant_for_rows = tenant_for_rows.clone();
                                view! {
                                    <tr data-object=row_key>
                                        <td class="name">
                                            <A href=format!("/t/{}/o/{}", tenant_for_rows, o.id)>{o.namespace}"/"{o.name}</A>
                                        </td>
                                        <td>{o.target}</td>
                                        <td class="num">{o.min_replicas}</td>
                                        <td class="num">{o.max_replicas}</td>
                                        <td class="num current">{show(o.current_replicas)}</td>
                                        <td class="num ready">{show(o.ready_replicas)}</td>
                                        <td class="num desired">{show(o.desired_replicas)}</td>
                                        <td><span class=state_class>{o.phase}</span></td>
                                        <td class="metric">{metric}</td>
                                        <td class="decision">
                                            {o.override_.map(|text| view! { <div class="override">{text}</div> })}
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
