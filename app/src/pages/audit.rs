//! A tenant's audit log: who did what, when and why (refusals included), filtered by action.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::load_audit;

/// The actions the filter offers (prefixes of the stored action names).
const FILTERS: [(&str, &str); 6] =
    [("", "everything"), ("override.", "overrides"), ("access.refused", "refusals"), ("login", "sign-ins"), ("token.", "tokens"), ("scaled_object.", "objects")];

#[component]
pub fn AuditPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let tenant = move || params.read().get("tenant").unwrap_or_default();
    let action = move || query.read().get("action").filter(|a| !a.is_empty());
    let data = crate::codec::resource(move || (tenant(), action()), |(tenant, action)| load_audit(tenant, action));
    super::live::mark_hydrated();
    view! {
        {move || view! { <super::TenantNav tenant=tenant() current="audit"/> }}
        <h1>"Audit log"</h1>
        <form method="get" class="audit-filter">
            <label for="audit-action">"Show "</label>
            <select id="audit-action" name="action">
                {FILTERS
                    .into_iter()
                    .map(|(value, label)| view! { <option value=value selected=move || action().unwrap_or_default() == value>{label}</option> })
                    .collect_view()}
            </select>
            <button type="submit">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|result| match result {
                        Ok(rows) if rows.is_empty() => view! { <p class="empty">"Nothing recorded yet."</p> }.into_any(),
                        Ok(rows) => view! {
                            <table class="audit">
                                <thead><tr><th scope="col">"When (UTC)"</th><th scope="col">"Who"</th><th scope="col">"What"</th><th scope="col">"On"</th><th scope="col">"Why"</th></tr></thead>
                                <tbody>
                                    {rows
                                        .into_iter()
                                        .map(|r| {
                                            let kind = r.action.clone();
                                            view! {
                                            <tr data-action=kind>
                                                <td class="at">{r.at}</td>
                                                <td class="actor">{r.actor}</td>
                                                <td class="action">{r.action}</td>
                                                <td class="target">{r.target}</td>
                                                <td class="reason">{r.reason.unwrap_or_default()}</td>
                                            </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                        .into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Transition>
    }
}
