//! A tenant's ScaledJobs: Jobs running, pending, succeeded and failed, the queue, what the
//! last poll created and why, and what the strategy does.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::{TenantNav, live::use_live};
use crate::catalog::{load_jobs, strategy_text};

#[component]
pub fn JobsPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = move || params.read().get("tenant").unwrap_or_default();
    // Read again whenever the live stream says jobs changed.
    let live = use_live(Signal::derive(tenant));
    let data = crate::codec::resource(move || (tenant(), live.touches("jobs")), |(t, _)| load_jobs(t));
    view! {
        {move || view! { <TenantNav tenant=tenant() current="jobs"/> }}
        <h1>"Scaled jobs"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(rows) if rows.is_empty() => view! { <p class="empty">"No ScaledJobs in this tenant. They come from a cluster's " <code>"ScaledJob"</code>" resources."</p> }.into_any(),
                Ok(rows) => view! {
                    <div class="table-wrap" tabindex="0" role="region" aria-label="scaled jobs table">
                    <table class="jobs">
                        <thead><tr>
                            <th scope="col">"Name"</th><th scope="col">"Cluster"</th><th scope="col" class="num">"Queue"</th>
                            <th scope="col" class="num">"Running"</th><th scope="col" class="num">"Pending"</th><th scope="col" class="num">"Succeeded"</th>
                            <th scope="col" class="num">"Failed"</th><th scope="col" class="num">"Max"</th><th scope="col">"Strategy"</th><th scope="col">"Last poll (UTC)"</th>
                        </tr></thead>
                        <tbody>
                            {rows.into_iter().map(|j| {
                                let key = format!("{}/{}", j.namespace, j.name);
                                let label = key.clone();
                                view! {
                                    <tr data-job=key>
                                        <td class="name">{label}{j.paused.then(|| view! { " " <span class="state paused">"Paused"</span> })}</td>
                                        <td>{j.cluster}</td>
                                        <td class="num">{j.queue}</td>
                                        <td class="num running">{j.running}</td>
                                        <td class="num pending">{j.pending}</td>
                                        <td class="num succeeded">{j.succeeded}</td>
                                        <td class="num failed">{j.failed}</td>
                                        <td class="num">{j.max_replicas}</td>
                                        <td class="strategy" title=strategy_text(&j.strategy)>{strategy_text(&j.strategy)}</td>
                                        <td>{j.at}": "{j.explanation}{j.error.map(|e| view! { <div class="error">{e}</div> })}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                    </div>
                }.into_any(),
                Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
            })}
        </Transition>
    }
}
