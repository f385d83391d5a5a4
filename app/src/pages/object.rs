use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};

use super::{live_ticker, show};
use crate::api::{ObjectDetail, OverrideReplicas, PauseObject, ResumeObject, load_object};

/// One ScaledObject: its state, manual override controls, and its decision log.
#[component]
pub fn ObjectPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = move || params.read().get("tenant").unwrap_or_default();
    let id = move || params.read().get("id").and_then(|id| id.parse::<i32>().ok()).unwrap_or(-1);
    let tick = live_ticker();
    let set_replicas = ServerAction::<OverrideReplicas>::new();
    let pause = ServerAction::<PauseObject>::new();
    let resume = ServerAction::<ResumeObject>::new();
    let data = Resource::new(
        move || (tenant(), id(), tick.get(), set_replicas.version().get(), pause.version().get(), resume.version().get()),
        |(tenant, id, ..)| load_object(tenant, id),
    );
    let action_error = move || {
        [set_replicas.value().get(), pause.value().get(), resume.value().get()]
            .into_iter()
            .flatten()
            .find_map(|r| r.err())
            .map(|e| view! { <p class="error action-error">{e.to_string()}</p> })
    };
    view! {
        <p class="back"><A href=move || format!("/t/{}", tenant())>"← all scaled objects"</A></p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|result| match result {
                        Ok(detail) => view! { <ObjectSummary detail=detail/> }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Transition>
        <section class="controls">
            <h2>"Manual override"</h2>
            {action_error}
            <ActionForm action=set_replicas attr:class="override-form">
                <input type="hidden" name="tenant" prop:value=tenant/>
                <input type="hidden" name="id" prop:value=move || id().to_string()/>
                <label>"Replicas " <input type="number" name="replicas" min="0" required/></label>
                <label>"Reason " <input type="text" name="reason" required placeholder="why"/></label>
                <label>"Expires in (min) " <input type="number" name="expires_minutes" min="1" placeholder="never"/></label>
                <button type="submit">"Set replicas"</button>
            </ActionForm>
            <ActionForm action=pause attr:class="pause-form">
                <input type="hidden" name="tenant" prop:value=tenant/>
                <input type="hidden" name="id" prop:value=move || id().to_string()/>
                <label>"Reason " <input type="text" name="reason" required placeholder="why"/></label>
                <input type="hidden" name="expires_minutes" value=""/>
                <button type="submit">"Pause"</button>
            </ActionForm>
            <ActionForm action=resume attr:class="resume-form">
                <input type="hidden" name="tenant" prop:value=tenant/>
                <input type="hidden" name="id" prop:value=move || id().to_string()/>
                <button type="submit">"Resume"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn ObjectSummary(detail: ObjectDetail) -> impl IntoView {
    let o = detail.object;
    let metric = o.metrics.iter().map(|(n, v)| format!("{n} = {v:.1}")).collect::<Vec<_>>().join(", ");
    view! {
        <h1 class="object-name">{o.namespace.clone()}"/"{o.name.clone()}</h1>
        <dl class="summary">
            <dt>"Target"</dt><dd>{o.target.clone()}</dd>
            <dt>"Replicas"</dt>
            <dd class="replicas">
                <span class="current">{show(o.current_replicas)}</span>" current, "
                {show(o.ready_replicas)}" ready, "{show(o.desired_replicas)}" desired (min "{o.min_replicas}", max "{o.max_replicas}")"
            </dd>
            <dt>"State"</dt><dd><span class=format!("state {}", o.phase.to_lowercase())>{o.phase.clone()}</span></dd>
            <dt>"Metric"</dt><dd>{metric}</dd>
            <dt>"Override"</dt><dd class="override">{o.override_.clone().unwrap_or_else(|| "none".into())}</dd>
            {o.error.clone().map(|e| view! { <dt>"Error"</dt><dd class="error">{e}</dd> })}
        </dl>
        <h2>"Decision log"</h2>
        <table class="decisions">
            <thead>
                <tr><th>"Time (UTC)"</th><th>"State"</th><th>"Rule"</th><th class="num">"Replicas"</th><th>"Why"</th></tr>
            </thead>
            <tbody>
                {detail
                    .decisions
                    .into_iter()
                    .map(|d| {
                        view! {
                            <tr>
                                <td>{d.at}</td>
                                <td>{d.state}</td>
                                <td class="rule">{d.rule}</td>
                                <td class="num">{d.prev_replicas}" → "{d.new_replicas}</td>
                                <td class="explanation">{d.explanation}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
