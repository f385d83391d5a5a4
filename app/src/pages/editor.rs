//! Create or edit a Swell-made ScaledObject: a form and a YAML editor side by side (the form
//! fills the YAML as you type; either can be applied), refused by the engine's own
//! validation with the field named; delete with the name typed as confirmation.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::form::{Fields, Form};
use super::{TenantNav, live::mark_hydrated};
use crate::editor::{ApplyForm, ApplyYaml, DeleteObject, FormFields, TRIGGER_TYPES, form_yaml, object_yaml};

/// `/t/{tenant}/new` and `/t/{tenant}/o/{id}/edit`.
#[component]
pub fn EditorPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = Signal::derive(move || params.read().get("tenant").unwrap_or_default());
    let id = Signal::derive(move || params.read().get("id").and_then(|i| i.parse::<i32>().ok()));
    let existing = crate::codec::resource(move || (tenant.get(), id.get()), |(tenant, id)| async move {
        match id {
            Some(id) => object_yaml(tenant, id).await.map(Some),
            None => Ok(None),
        }
    });
    mark_hydrated();
    view! {
        {move || view! { <TenantNav tenant=tenant.get() current="new"/> }}
        <h1>{move || if id.get().is_some() { "Edit scaled object" } else { "Create a scaled object" }}</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || existing.get().map(|r| match r {
                Ok(yaml) => view! { <Editor tenant=tenant id=id.get() yaml=yaml/> }.into_any(),
                Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
            })}
        </Transition>
    }
}

fn starter() -> FormFields {
    FormFields {
        cluster: String::new(),
        namespace: "default".into(),
        name: String::new(),
        target_kind: "Deployment".into(),
        target_name: String::new(),
        min_replicas: "0".into(),
        max_replicas: "10".into(),
        polling_interval: "30".into(),
        cooldown_period: "300".into(),
        actuation: "hpa".into(),
        trigger_type: "rabbitmq".into(),
        metadata: "queueName: orders\nvalue: 20\n".into(),
    }
}

/// The outcome of an apply, as a message (a link to the object when it worked).
fn outcome(tenant: String, value: Option<Result<i32, ServerFnError>>) -> Option<AnyView> {
    match value? {
        Ok(id) => Some(view! { <p class="applied" role="status">"Applied. " <a href=format!("/t/{tenant}/o/{id}")>"Open the object"</a></p> }.into_any()),
        Err(e) => Some(view! { <p class="error apply-error" role="alert">{e.to_string()}</p> }.into_any()),
    }
}

#[component]
fn Editor(tenant: Signal<String>, id: Option<i32>, yaml: Option<String>) -> impl IntoView {
    let apply_form = ServerAction::<ApplyForm>::new();
    let apply_yaml = ServerAction::<ApplyYaml>::new();
    let delete = ServerAction::<DeleteObject>::new();
    let fields = RwSignal::new(starter());
    let text = RwSignal::new(yaml.clone().unwrap_or_else(|| form_yaml(&starter())));
    // Typing in the form rewrites the YAML beside it (in the browser; without JavaScript each
    // side is applied on its own).
    let set = move |f: fn(&mut FormFields, String)| {
        move |ev: leptos::ev::Event| {
            let v = event_target_value(&ev);
            fields.update(|x| f(x, v));
            text.set(form_yaml(&fields.get_untracked()));
        }
    };
    let field = move |label: &'static str, name: &'static str, value: String, f: fn(&mut FormFields, String)| {
        view! {
            <label class="field">
                <span>{label}</span>
                <input type="text" name=name value=value on:input=set(f)/>
            </label>
        }
    };
    let s = starter();
    view! {
        <div class="editor">
            <section class="form-side" aria-labelledby="form-title">
                <h2 id="form-title">"Form"</h2>
                {move || outcome(tenant.get(), apply_form.value().get())}
                <Form action=apply_form class="object-form" args=|f: &Fields| ApplyForm {
                    tenant: f.text("tenant"),
                    cluster: f.text("cluster"),
                    namespace: f.text("namespace"),
                    name: f.text("name"),
                    target_kind: f.text("target_kind"),
                    target_name: f.text("target_name"),
                    min_replicas: f.text("min_replicas"),
                    max_replicas: f.text("max_replicas"),
                    polling_interval: f.text("polling_interval"),
                    cooldown_period: f.text("cooldown_period"),
                    actuation: f.text("actuation"),
                    trigger_type: f.text("trigger_type"),
                    metadata: f.text("metadata"),
                }>
                    <input type="hidden" name="tenant" prop:value=tenant/>
                    {field("Cluster (empty: the tenant's first)", "cluster", s.cluster.clone(), |f, v| f.cluster = v)}
                    {field("Namespace", "namespace", s.namespace.clone(), |f, v| f.namespace = v)}
                    {field("Name", "name", s.name.clone(), |f, v| f.name = v)}
                    {field("Target kind", "target_kind", s.target_kind.clone(), |f, v| f.target_kind = v)}
                    {field("Target name", "target_name", s.target_name.clone(), |f, v| f.target_name = v)}
                    {field("Min replicas", "min_replicas", s.min_replicas.clone(), |f, v| f.min_replicas = v)}
                    {field("Max replicas", "max_replicas", s.max_replicas.clone(), |f, v| f.max_replicas = v)}
                    {field("Polling interval (s)", "polling_interval", s.polling_interval.clone(), |f, v| f.polling_interval = v)}
                    {field("Cooldown period (s)", "cooldown_period", s.cooldown_period.clone(), |f, v| f.cooldown_period = v)}
                    {field("Actuation (hpa or direct)", "actuation", s.actuation.clone(), |f, v| f.actuation = v)}
                    <label class="field">
                        <span>"Trigger type"</span>
                        <select name="trigger_type" on:change=set(|f, v| f.trigger_type = v)>
                            {TRIGGER_TYPES.into_iter().map(|t| view! { <option value=t selected=t == s.trigger_type>{t}</option> }).collect_view()}
                        </select>
                    </label>
                    <label class="field">
                        <span>"Trigger metadata (key: value per line)"</span>
                        <textarea name="metadata" rows="4" on:input=set(|f, v| f.metadata = v)>{s.metadata.clone()}</textarea>
                    </label>
                    <button type="submit">"Apply form"</button>
                </Form>
            </section>
            <section class="yaml-side" aria-labelledby="yaml-title">
                <h2 id="yaml-title">"YAML"</h2>
                {move || outcome(tenant.get(), apply_yaml.value().get())}
                <Form action=apply_yaml class="yaml-form" args=|f: &Fields| ApplyYaml { tenant: f.text("tenant"), yaml: f.text("yaml") }>
                    <input type="hidden" name="tenant" prop:value=tenant/>
                    <label for="yaml-text" class="visually-hidden">"ScaledObject manifest"</label>
                    <textarea id="yaml-text" name="yaml" rows="24" spellcheck="false" prop:value=text on:input=move |ev| text.set(event_target_value(&ev))>
                        {yaml.clone().unwrap_or_else(|| form_yaml(&starter()))}
                    </textarea>
                    <button type="submit">"Apply YAML"</button>
                </Form>
            </section>
        </div>
        {id.map(|id| view! {
            <section class="danger" aria-labelledby="delete-title">
                <h2 id="delete-title">"Delete"</h2>
                {move || delete.value().get().map(|r| match r {
                    Ok(()) => view! { <p class="applied" role="status">"Deleted."</p> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
                <Form action=delete class="delete-form" args=|f: &Fields| DeleteObject { tenant: f.text("tenant"), id: f.int("id"), confirm: f.text("confirm") }>
                    <input type="hidden" name="tenant" prop:value=tenant/>
                    <input type="hidden" name="id" value=id.to_string()/>
                    <label>"Type the object's name to delete it " <input type="text" name="confirm" required/></label>
                    <button type="submit" class="danger">"Delete"</button>
                </Form>
            </section>
        })}
    }
}
