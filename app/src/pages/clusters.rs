//! The clusters a tenant's objects run on: connected, leader, objects, last sync error.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::{TenantNav, live::use_live};
use crate::catalog::load_clusters;

#[component]
pub fn ClustersPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = move || params.read().get("tenant").unwrap_or_default();
    // Read again whenever the live stream says clusters changed.
    let live = use_live(Signal::derive(tenant));
    let data = crate::codec::resource(move || (tenant(), live.touches("clusters")), |(t, _)| load_clusters(t));
    let yes = |b: bool| if b { "yes" } else { "no" };
    view! {
        {move || view! { <TenantNav tenant=tenant() current="clusters"/> }}
        <h1>"Clusters"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(rows) if rows.is_empty() => view! { <p class="empty">"No clusters yet. Register one with " <code>"swell cluster add"</code>"."</p> }.into_any(),
                Ok(rows) => view! {
                    <table class="clusters">
                        <thead><tr><th scope="col">"Name"</th><th scope="col">"Kind"</th><th scope="col">"Connected"</th><th scope="col">"Leader here"</th><th scope="col" class="num">"Objects"</th><th scope="col">"Last sync error"</th></tr></thead>
                        <tbody>
                            {rows.into_iter().map(|c| { let key = c.name.clone(); view! {
                                <tr data-cluster=key>
                                    <td class="name">{c.name}</td>
                                    <td>{c.kind}</td>
                                    <td class="connected">{yes(c.connected)}</td>
                                    <td class="leader">{yes(c.leader)}</td>
                                    <td class="num objects">{c.objects}</td>
                                    <td class="error">{c.last_sync_error.unwrap_or_else(|| "none".into())}</td>
                                </tr>
                            } }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
                Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
            })}
        </Transition>
    }
}
