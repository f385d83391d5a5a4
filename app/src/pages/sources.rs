//! A tenant's event sources: webhooks (with their last push) and trigger authentications
//! (by name and parameter names; values never leave the server).

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::{TenantNav, live::use_live};
use crate::catalog::load_sources;

#[component]
pub fn SourcesPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = move || params.read().get("tenant").unwrap_or_default();
    // Read again whenever the live stream says sources changed.
    let live = use_live(Signal::derive(tenant));
    let data = crate::codec::resource(move || (tenant(), live.touches("sources")), |(t, _)| load_sources(t));
    view! {
        {move || view! { <TenantNav tenant=tenant() current="sources"/> }}
        <h1>"Event sources"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(s) => view! {
                    <section aria-labelledby="webhooks-title">
                        <h2 id="webhooks-title">"Webhooks"</h2>
                        {if s.webhooks.is_empty() {
                            view! { <p class="empty">"No webhook sources. Add one with " <code>"swell webhook add"</code>"."</p> }.into_any()
                        } else {
                            view! {
                                <table class="webhooks">
                                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Endpoint"</th><th scope="col">"Last push (UTC)"</th><th scope="col" class="num">"Value"</th><th scope="col">"Added"</th></tr></thead>
                                    <tbody>
                                        {s.webhooks.into_iter().map(|w| {
                                            let path = format!("/hooks/{}/{}", tenant(), w.name);
                                            let key = w.name.clone();
                                            view! {
                                                <tr data-source=key>
                                                    <td class="name">{w.name}</td>
                                                    <td><code>{path}</code></td>
                                                    <td class="last-push">{w.last_push.unwrap_or_else(|| "never".into())}</td>
                                                    <td class="num value">{crate::charts::num(w.value)}</td>
                                                    <td>{w.created_at}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                    </section>
                    <section aria-labelledby="auths-title">
                        <h2 id="auths-title">"Trigger authentications"</h2>
                        {if s.trigger_auths.is_empty() {
                            view! { <p class="empty">"None kept in Swell. Add one with " <code>"swell auth add"</code>"."</p> }.into_any()
                        } else {
                            view! {
                                <table class="trigger-auths">
                                    <thead><tr><th scope="col">"Kind"</th><th scope="col">"Namespace"</th><th scope="col">"Name"</th><th scope="col">"Parameters"</th><th scope="col">"Updated"</th></tr></thead>
                                    <tbody>
                                        {s.trigger_auths.into_iter().map(|a| { let key = a.name.clone(); view! {
                                            <tr data-auth=key>
                                                <td>{a.kind}</td>
                                                <td>{a.namespace}</td>
                                                <td class="name">{a.name}</td>
                                                <td class="parameters">{a.parameters.join(", ")}</td>
                                                <td>{a.updated_at}</td>
                                            </tr>
                                        } }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                    </section>
                }.into_any(),
                Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
            })}
        </Transition>
    }
}
