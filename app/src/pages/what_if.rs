//! What-if: an object's own history (or a trace the user uploads) replayed as it is and with
//! edited parameters, the two plots side by side with their scores.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::form::{Fields, Form};
use super::{TenantNav, live::mark_hydrated};
use crate::charts;
use crate::history::RANGES;
use crate::what_if::{WhatIf, replay_chart};

#[component]
pub fn WhatIfPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = Signal::derive(move || params.read().get("tenant").unwrap_or_default());
    let id = Signal::derive(move || params.read().get("id").unwrap_or_default());
    let run = ServerAction::<WhatIf>::new();
    let trace = RwSignal::new(String::new());
    let trace_name = RwSignal::new(String::new());
    mark_hydrated();
    view! {
        {move || view! { <TenantNav tenant=tenant.get() current="overview"/> }}
        <p class="back"><a href=move || format!("/t/{}/o/{}", tenant.get(), id.get())>"← the object"</a></p>
        <h1>"What if"</h1>
        <p>"Replays this object's recorded metric, or a trace of your own, as it is and with the parameters below (empty keeps the object's value)."</p>
        <Form action=run class="what-if-form" args=|f: &Fields| WhatIf {
            tenant: f.text("tenant"),
            id: f.int("id"),
            range: f.text("range"),
            min_replicas: f.text("min_replicas"),
            max_replicas: f.text("max_replicas"),
            target: f.text("target"),
            cooldown_period: f.text("cooldown_period"),
            polling_interval: f.text("polling_interval"),
            trace: f.text("trace"),
            trace_name: f.text("trace_name"),
        }>
            <input type="hidden" name="tenant" prop:value=tenant/>
            <input type="hidden" name="id" prop:value=id/>
            <label>"History "
                <select name="range">
                    {RANGES.iter().map(|(r, _)| view! { <option value=*r selected=*r == "1h">{format!("last {r}")}</option> }).collect_view()}
                </select>
            </label>
            <label>"Min replicas " <input type="text" name="min_replicas" size="4"/></label>
            <label>"Max replicas " <input type="text" name="max_replicas" size="4"/></label>
            <label>"Target per replica " <input type="text" name="target" size="6"/></label>
            <label>"Cooldown (s) " <input type="text" name="cooldown_period" size="5"/></label>
            <label>"Polling (s) " <input type="text" name="polling_interval" size="4"/></label>
            <fieldset class="trace-upload">
                <legend>"Or replay a trace of your own"</legend>
                <label>"CSV file " <input type="file" class="trace-file" accept=".csv,text/csv" on:change=move |ev| read_file(ev, trace, trace_name)/></label>
                <label>"CSV text: a header, a time column (RFC 3339 or unix seconds) and a value column; empty replays the history chosen above"
                    <textarea name="trace" rows="4" cols="60" prop:value=trace on:input=move |ev| trace.set(event_target_value(&ev))></textarea>
                </label>
                <input type="hidden" name="trace_name" prop:value=trace_name/>
            </fieldset>
            <button type="submit">"Replay"</button>
        </Form>
        {move || run.value().get().map(|r| match r {
            Ok(w) => view! { <Compare w=w/> }.into_any(),
            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
        })}
    }
}

#[component]
fn Compare(w: crate::what_if::WhatIfResult) -> impl IntoView {
    let figure = |r: &crate::what_if::ReplayRow| {
        let chart = replay_chart(r);
        let svg = charts::svg(&chart, (560, 240));
        let summary = charts::summary(&chart);
        view! {
            <figure class="chart" data-chart=chart.id.clone()>
                <div class="plot" inner_html=svg></div>
                <figcaption class="chart-summary">{summary}</figcaption>
            </figure>
        }
    };
    view! {
        <div class="side-by-side">
            {figure(&w.as_is)}
            {figure(&w.edited)}
        </div>
        <table class="what-if">
            <thead><tr><th scope="col">"Replay"</th><th scope="col" class="num">"Under-provisioned min"</th><th scope="col" class="num">"Replica-minutes"</th><th scope="col" class="num">"Actions"</th></tr></thead>
            <tbody>
                {[w.as_is, w.edited].into_iter().map(|r| view! {
                    <tr><td>{r.name}</td><td class="num">{format!("{:.1}", r.under_provisioned_minutes)}</td><td class="num">{format!("{:.0}", r.replica_minutes)}</td><td class="num">{r.actions}</td></tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Reads the chosen file into the form's CSV text (the browser does it; without JavaScript
/// the text is pasted).
#[cfg(feature = "hydrate")]
fn read_file(ev: leptos::ev::Event, trace: RwSignal<String>, name: RwSignal<String>) {
    use wasm_bindgen::{JsCast, closure::Closure};
    let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return };
    let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
    name.set(file.name());
    let Ok(reader) = web_sys::FileReader::new() else { return };
    let done = reader.clone();
    let onload = Closure::<dyn FnMut()>::new(move || {
        if let Some(text) = done.result().ok().and_then(|v| v.as_string()) {
            trace.set(text);
        }
    });
    reader.set_onload(Some(onload.as_ref().unchecked_ref()));
    // Leaked on purpose: one small closure per file the user picks.
    onload.forget();
    let _ = reader.read_as_text(&file);
}

#[cfg(not(feature = "hydrate"))]
fn read_file(_: leptos::ev::Event, _: RwSignal<String>, _: RwSignal<String>) {}
