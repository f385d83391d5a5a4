//! One ScaledObject: live state, charts, triggers, conditions, manual override and the
//! decision log (filtered by rule and time).

use leptos::prelude::*;
use leptos_router::{
    components::A,
    hooks::{use_params_map, use_query_map},
};

use super::form::{Fields, Form};
use super::live::use_live;
use super::object_parts::{ChartsSection, Conditions, DecisionLog, Triggers};
use super::show;
use crate::api::{ObjectRow, OverrideReplicas, PauseObject, ResumeObject, load_object};
use crate::history::{DEFAULT_RANGE, load_history};

#[component]
pub fn ObjectPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let tenant = Signal::derive(move || params.read().get("tenant").unwrap_or_default());
    let id = Signal::derive(move || params.read().get("id").and_then(|id| id.parse::<i32>().ok()).unwrap_or(-1));
    let range = Signal::derive(move || query.read().get("range").filter(|r| !r.is_empty()).unwrap_or_else(|| DEFAULT_RANGE.into()));
    let rule = Signal::derive(move || query.read().get("rule").filter(|r| !r.is_empty()));
    let since = Signal::derive(move || query.read().get("since").filter(|r| !r.is_empty()));
    let live = use_live(tenant);
    let set_replicas = ServerAction::<OverrideReplicas>::new();
    let pause = ServerAction::<PauseObject>::new();
    let resume = ServerAction::<ResumeObject>::new();
    let data = crate::codec::resource(
        move || (tenant.get(), id.get(), rule.get(), since.get(), set_replicas.version().get(), pause.version().get(), resume.version().get()),
        |(tenant, id, rule, since, ..)| load_object(tenant, id, rule, since),
    );
    let history = crate::codec::resource(move || (tenant.get(), id.get(), range.get()), |(tenant, id, range)| load_history(tenant, id, range));
    let action_error = move || {
        [set_replicas.value().get(), pause.value().get(), resume.value().get()]
            .into_iter()
            .flatten()
            .find_map(|r| r.err())
            .map(|e| view! { <p class="error action-error" role="alert">{e.to_string()}</p> })
    };
    view! {
        <p class="back"><A href=move || format!("/t/{}", tenant.get())>"← all scaled objects"</A></p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|result| match result {
                        Ok(detail) => {
                            let fallback = detail.object.clone();
                            let row = Signal::derive(move || live.row(fallback.id).unwrap_or_else(|| fallback.clone()));
                            view! {
                                <ObjectSummary row=row tenant=tenant/>
                                <Transition fallback=|| view! { <p>"Loading charts…"</p> }>
                                    {move || history.get().map(|h| match h {
                                        Ok(h) => view! { <ChartsSection row=row history=h live=live tenant=tenant id=id/> }.into_any(),
                                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                                    })}
                                </Transition>
                                <Triggers row=row/>
                                <Conditions row=row/>
                                <DecisionLog detail=detail.clone() live=live rule=rule since=since/>
                            }
                            .into_any()
                        }
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Transition>
        <section class="controls" aria-labelledby="controls-title">
            <h2 id="controls-title">"Manual override"</h2>
            {action_error}
            <Form action=set_replicas class="override-form" args=|f: &Fields| OverrideReplicas { tenant: f.text("tenant"), id: f.int("id"), replicas: f.text("replicas"), reason: f.text("reason"), expires_minutes: f.text("expires_minutes") }>
                <input type="hidden" name="tenant" prop:value=tenant/>
                <input type="hidden" name="id" prop:value=move || id.get().to_string()/>
                <label>"Replicas " <input type="number" name="replicas" min="0" required/></label>
                <label>"Reason " <input type="text" name="reason" required placeholder="why"/></label>
                <label>"Expires in (min) " <input type="number" name="expires_minutes" min="1" placeholder="never"/></label>
                <button type="submit">"Set replicas"</button>
            </Form>
            <Form action=pause class="pause-form" args=|f: &Fields| PauseObject { tenant: f.text("tenant"), id: f.int("id"), reason: f.text("reason"), expires_minutes: f.text("expires_minutes") }>
                <input type="hidden" name="tenant" prop:value=tenant/>
                <input type="hidden" name="id" prop:value=move || id.get().to_string()/>
                <label>"Reason " <input type="text" name="reason" required placeholder="why"/></label>
                <label>"Expires in (min) " <input type="number" name="expires_minutes" min="1" placeholder="never"/></label>
                <button type="submit">"Pause"</button>
            </Form>
            <Form action=resume class="resume-form" args=|f: &Fields| ResumeObject { tenant: f.text("tenant"), id: f.int("id") }>
                <input type="hidden" name="tenant" prop:value=tenant/>
                <input type="hidden" name="id" prop:value=move || id.get().to_string()/>
                <button type="submit">"Resume"</button>
            </Form>
        </section>
    }
}

/// Where an object comes from, and so what may be changed here.
fn origin_note(row: &ObjectRow) -> String {
    if row.origin == "cluster" {
        format!("Managed by cluster \"{}\" (a ScaledObject resource there): change it with kubectl or GitOps; here only override and pause.", row.cluster)
    } else {
        "Made in Swell (dashboard, CLI or API).".to_string()
    }
}

#[component]
fn ObjectSummary(row: Signal<ObjectRow>, tenant: Signal<String>) -> impl IntoView {
    let r = move || row.get();
    view! {
        <h1 class="object-name">{move || format!("{}/{}", r().namespace, r().name)}</h1>
        <p class="origin" data-origin=move || r().origin>
            {move || origin_note(&r())}
            {move || (r().origin != "cluster").then(|| view! { " " <a class="edit-link" href=format!("/t/{}/o/{}/edit", tenant.get(), r().id)>"Edit or delete"</a> })}
            " " <a class="what-if-link" href=move || format!("/t/{}/o/{}/what-if", tenant.get(), r().id)>"What if…"</a>
        </p>
        <dl class="summary">
            <dt>"Target"</dt><dd class="target">{move || r().target}</dd>
            <dt>"Replicas"</dt>
            <dd class="replicas">
                <span class="current">{move || show(r().current_replicas)}</span>" current, "
                <span class="ready">{move || show(r().ready_replicas)}</span>" ready, "
                <span class="desired">{move || show(r().desired_replicas)}</span>" desired (min "{move || r().min_replicas}", max "{move || r().max_replicas}")"
            </dd>
            <dt>"State"</dt><dd><span class=move || format!("state {}", r().phase.to_ascii_lowercase())>{move || r().phase}</span></dd>
            <dt>"Metric"</dt><dd class="metric">{move || super::metric_text(&r().metrics)}</dd>
            <dt>"Override"</dt><dd class="override">{move || r().override_.unwrap_or_else(|| "none".into())}</dd>
        </dl>
    }
}
