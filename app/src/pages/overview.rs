//! A tenant's overview: health totals, then every ScaledObject (those needing attention
//! first) with a sparkline of its first metric, all kept live by the stream.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_params_map};

use super::live::{Live, use_live};
use super::{TenantNav, metric_text, show};
use crate::api::{ObjectRow, Overview, load_overview};
use crate::charts;

#[component]
pub fn TenantOverview() -> impl IntoView {
    let params = use_params_map();
    let tenant = Signal::derive(move || params.read().get("tenant"));
    view! { <OverviewPage tenant=tenant/> }
}

#[component]
pub fn OverviewPage(#[prop(into)] tenant: Signal<Option<String>>) -> impl IntoView {
    let live = use_live(Signal::derive(move || tenant.get().unwrap_or_default()));
    let data = crate::codec::resource(move || tenant.get(), load_overview);
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|result| match result {
                        Ok(o) => view! { <OverviewBody overview=o live=live/> }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </Transition>
    }
}

/// Objects needing attention first, then by id (the order they were made in).
fn ordered(mut rows: Vec<ObjectRow>) -> Vec<ObjectRow> {
    rows.sort_by_key(|r| (!r.needs_attention(), r.id));
    rows
}

#[component]
fn OverviewBody(overview: Overview, live: Live) -> impl IntoView {
    let tenant = overview.tenant.clone();
    let first = overview.objects.clone();
    let rows = Memo::new(move |_| ordered(live.rows.with(|r| r.as_ref().map(|m| m.values().cloned().collect())).unwrap_or_else(|| first.clone())));
    let stored_sparks: BTreeMap<i32, Vec<(i64, f64)>> = overview.sparks.into_iter().collect();
    let sparks = StoredValue::new(stored_sparks);
    let spark_of = move |id: i32| {
        let mut points = sparks.with_value(|s| s.get(&id).cloned().unwrap_or_default());
        let after = points.last().map_or(i64::MIN, |p| p.0);
        live.readings.with(|all| {
            points.extend(all.get(&id).into_iter().flatten().filter(|r| r.at_ms > after).filter_map(|r| Some((r.at_ms, r.metrics.first()?.1))));
        });
        let skip = points.len().saturating_sub(engine_spark_points());
        charts::sparkline(&points[skip..], (120, 28))
    };
    let totals = move || {
        rows.with(|rows| {
            let attention = rows.iter().filter(|r| r.needs_attention()).count();
            let active = rows.iter().filter(|r| r.phase == "Active").count();
            let replicas: i32 = rows.iter().filter_map(|r| r.current_replicas).sum();
            (rows.len(), active, attention, replicas)
        })
    };
    let t = tenant.clone();
    view! {
        <TenantNav tenant=tenant.clone() current="overview"/>
        <h1>"Scaled objects"</h1>
        <section class="totals" aria-label="health">
            <div class="total"><span class="label">"Objects"</span><span class="value objects-total">{move || totals().0}</span></div>
            <div class="total"><span class="label">"Active"</span><span class="value active-total">{move || totals().1}</span></div>
            <div class="total"><span class="label">"Need attention"</span><span class="value attention-total">{move || totals().2}</span></div>
            <div class="total"><span class="label">"Replicas running"</span><span class="value replicas-total">{move || totals().3}</span></div>
        </section>
        {move || {
            if rows.with(Vec::is_empty) {
                return view! { <p class="empty">"No ScaledObjects in this tenant yet."</p> }.into_any();
            }
            let t = t.clone();
            view! {
                <div class="table-wrap" tabindex="0" role="region" aria-label="scaled objects table">
                    <table class="objects">
                        <caption class="visually-hidden">"Scaled objects, those needing attention first"</caption>
                        <thead>
                            <tr>
                                <th scope="col">"Name"</th>
                                <th scope="col">"Target"</th>
                                <th scope="col" class="num">"Min"</th>
                                <th scope="col" class="num">"Max"</th>
                                <th scope="col" class="num">"Current"</th>
                                <th scope="col" class="num">"Ready"</th>
                                <th scope="col" class="num">"Desired"</th>
                                <th scope="col">"State"</th>
                                <th scope="col">"Metric"</th>
                                <th scope="col">"Trend"</th>
                                <th scope="col">"Last decision"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {rows
                                .get()
                                .into_iter()
                                .map(|o| {
                                    let metric = metric_text(&o.metrics);
                                    let state_class = format!("state {}", o.phase.to_ascii_lowercase());
                                    let attention = o.needs_attention().then_some("true");
                                    let spark = spark_of(o.id);
                                    let key = o.name.clone();
                                    view! {
                                        <tr data-object=key data-attention=attention>
                                            <td class="name">
                                                <A href=format!("/t/{}/o/{}", t, o.id)>{o.namespace}"/"{o.name}</A>
                                            </td>
                                            <td>{o.target}</td>
                                            <td class="num">{o.min_replicas}</td>
                                            <td class="num">{o.max_replicas}</td>
                                            <td class="num current">{show(o.current_replicas)}</td>
                                            <td class="num ready">{show(o.ready_replicas)}</td>
                                            <td class="num desired">{show(o.desired_replicas)}</td>
                                            <td><span class=state_class>{o.phase}</span></td>
                                            <td class="metric">{metric}</td>
                                            <td class="spark" inner_html=spark></td>
                                            <td class="decision">
                                                {o.override_.map(|text| view! { <div class="override">{text}</div> })}
                                                {o.anomaly.map(|text| view! { <div class="anomaly">{text}</div> })}
                                                {o.last_decision}
                                                {o.error.map(|e| view! { <div class="error">{e}</div> })}
                                            </td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                </div>
            }
            .into_any()
        }}
    }
}

/// As many points as the engine keeps per sparkline.
fn engine_spark_points() -> usize {
    crate::api::SPARK_POINTS
}
