//! The models of a tenant's predictive objects: versions with their scores over time, the
//! champion, retraining and rollback.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::form::{Fields, Form};
use super::{TenantNav, live::use_live};
use crate::charts;
use crate::models::{ObjectModels, RetrainModel, RollbackModel, load_models, scores_chart};

#[component]
pub fn ModelsPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = Signal::derive(move || params.read().get("tenant").unwrap_or_default());
    let retrain = ServerAction::<RetrainModel>::new();
    let rollback = ServerAction::<RollbackModel>::new();
    // Read again after a retrain or rollback here, and when the stream says a model changed.
    let live = use_live(tenant);
    let data = crate::codec::resource(move || (tenant.get(), retrain.version().get(), rollback.version().get(), live.touches("models")), |(t, ..)| load_models(t));
    let error = move || {
        [retrain.value().get(), rollback.value().get()].into_iter().flatten().find_map(|r| r.err()).map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })
    };
    view! {
        {move || view! { <TenantNav tenant=tenant.get() current="models"/> }}
        <h1>"Models"</h1>
        {error}
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(list) if list.is_empty() => view! { <p class="empty">"No predictive objects: set " <code>"spec.predictive"</code>" on one."</p> }.into_any(),
                Ok(list) => list.into_iter().map(|m| view! { <ObjectModelsView m=m tenant=tenant retrain=retrain rollback=rollback/> }).collect_view().into_any(),
                Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn ObjectModelsView(m: ObjectModels, tenant: Signal<String>, retrain: ServerAction<RetrainModel>, rollback: ServerAction<RollbackModel>) -> impl IntoView {
    let chart = scores_chart(&m);
    let svg = charts::svg(&chart, (720, 220));
    let summary = charts::summary(&chart);
    let id = m.id;
    let title_id = format!("models-{id}");
    let labelled = title_id.clone();
    let name = m.name.clone();
    view! {
        <section class="models" data-object=name aria-labelledby=labelled>
            <h2 id=title_id>{m.name.clone()}</h2>
            <p class="model-status">{m.status.clone()}</p>
            <Form action=retrain class="retrain-form" args=|f: &Fields| RetrainModel { tenant: f.text("tenant"), id: f.int("id") }>
                <input type="hidden" name="tenant" prop:value=tenant/>
                <input type="hidden" name="id" value=id.to_string()/>
                <button type="submit">"Retrain now"</button>
            </Form>
            <figure class="chart" data-chart=chart.id.clone()>
                <div class="plot" inner_html=svg></div>
                <figcaption class="chart-summary">{summary}</figcaption>
            </figure>
            <table class="versions">
                <thead><tr><th scope="col">"Version"</th><th scope="col">"Kind"</th><th scope="col">"Trained on"</th><th scope="col" class="num">"MAE"</th><th scope="col" class="num">"MAPE"</th><th scope="col" class="num">"Champion's MAE"</th><th scope="col">"Outcome"</th><th scope="col">"Made"</th><th scope="col"></th></tr></thead>
                <tbody>
                    {m.versions.into_iter().map(|v| {
                        let opt = |x: Option<f64>| x.map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into());
                        view! {
                            <tr data-version=v.version data-champion=v.is_champion.then_some("true")>
                                <td>{format!("v{}", v.version)}{v.is_champion.then(|| view! { " " <strong class="champion">"champion"</strong> })}</td>
                                <td>{v.kind}</td>
                                <td>{v.trained}</td>
                                <td class="num">{opt(v.mae)}</td>
                                <td class="num">{opt(v.mape)}</td>
                                <td class="num">{opt(v.champion_mae)}</td>
                                <td>{if v.promoted { "promoted" } else { "kept aside" }}": "{v.reason}</td>
                                <td>{v.created_at}</td>
                                <td>
                                    {(!v.is_champion).then(|| view! {
                                        <Form action=rollback class="rollback-form" args=|f: &Fields| RollbackModel { tenant: f.text("tenant"), id: f.int("id"), version: f.int("version") }>
                                            <input type="hidden" name="tenant" prop:value=tenant/>
                                            <input type="hidden" name="id" value=id.to_string()/>
                                            <input type="hidden" name="version" value=v.version.to_string()/>
                                            <button type="submit">"Make champion"</button>
                                        </Form>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}
