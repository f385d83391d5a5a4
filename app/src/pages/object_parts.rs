//! The object page's sections: charts, triggers, conditions and the decision log.

use leptos::prelude::*;
use leptos_router::components::A;

use super::live::Live;
use crate::api::{DecisionRow, ObjectDetail, ObjectRow};
use crate::charts;
use crate::history::{self, History, RANGES};

/// Chart size in SVG pixels (scaled to the page width by CSS).
const CHART: (u32, u32) = (720, 260);

/// The rules the decision log filters by (the engine's `Rule::as_str` names).
pub const RULES: [&str; 19] = [
    "override_replicas",
    "override_pause",
    "paused_replicas",
    "paused",
    "paused_scale_in",
    "paused_scale_out",
    "activate",
    "scale_to_metric",
    "stabilized",
    "rate_limited",
    "clamp_min",
    "clamp_max",
    "cooldown_hold",
    "scale_to_zero",
    "scale_to_idle",
    "scale_to_min",
    "hold_idle",
    "fallback",
    "scaler_error_hold",
];

#[component]
pub fn ChartsSection(row: Signal<ObjectRow>, history: History, live: Live, tenant: Signal<String>, id: Signal<i32>) -> impl IntoView {
    let range = history.range.clone();
    let h = StoredValue::new(history);
    let readings = move || live.readings.with(|all| all.get(&id.get()).cloned().unwrap_or_default());
    let pushed = move || live.decisions.with(|all| all.iter().filter(|(o, _)| *o == id.get()).map(|(_, d)| d.clone()).collect::<Vec<_>>());
    let metric = Memo::new(move |_| h.with_value(|h| history::metric_chart(&row.get(), h, &readings(), &pushed())));
    let replicas = Memo::new(move |_| h.with_value(|h| history::replicas_chart(&row.get(), h, &readings(), &pushed())));
    view! {
        <section class="charts" aria-labelledby="charts-title">
            <h2 id="charts-title">"Over time"</h2>
            <nav class="ranges" aria-label="time range">
                {RANGES
                    .iter()
                    .map(|(name, _)| {
                        let current = *name == range;
                        let href = move || format!("/t/{}/o/{}?range={name}", tenant.get(), id.get());
                        view! {
                            <A href=href attr:class=if current { "range current" } else { "range" } attr:aria-current=current.then_some("page")>
                                {*name}
                            </A>
                        }
                    })
                    .collect_view()}
            </nav>
            <ChartFigure chart=metric/>
            <ChartFigure chart=replicas/>
        </section>
    }
}

#[component]
fn ChartFigure(chart: Memo<charts::Chart>) -> impl IntoView {
    let svg = move || chart.with(|c| charts::svg(c, CHART));
    let summary = move || chart.with(charts::summary);
    let id = move || chart.with(|c| c.id.clone());
    let legend = move || {
        chart.with(|c| {
            let swatch = |(r, g, b): (u8, u8, u8)| format!("background: rgb({r},{g},{b})");
            c.lines
                .iter()
                .map(|l| (l.name.clone(), swatch(l.color)))
                .chain(c.levels.iter().map(|(n, _, color)| (n.clone(), swatch(*color))))
                .map(|(name, style)| view! { <li><span class="swatch" style=style></span>{name}</li> })
                .collect_view()
        })
    };
    view! {
        <figure class="chart" data-chart=id>
            <div class="plot" inner_html=svg></div>
            <ul class="legend" aria-hidden="true">{legend}</ul>
            <figcaption class="chart-summary">{summary}</figcaption>
        </figure>
    }
}

#[component]
pub fn Triggers(row: Signal<ObjectRow>) -> impl IntoView {
    view! {
        <section class="triggers" aria-labelledby="triggers-title">
            <h2 id="triggers-title">"Triggers"</h2>
            <div class="table-wrap" tabindex="0" role="region" aria-label="triggers table">
            <table class="triggers">
                <thead>
                    <tr>
                        <th scope="col">"Type"</th><th scope="col">"Metric"</th><th scope="col" class="num">"Last value"</th>
                        <th scope="col" class="num">"Target"</th><th scope="col" class="num">"Activation"</th>
                        <th scope="col" class="num">"Latency"</th><th scope="col">"Error"</th>
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        row.get()
                            .triggers
                            .into_iter()
                            .map(|t| {
                                let metric = t.metric.clone();
                                view! {
                                    <tr data-metric=metric>
                                        <td>{t.kind}</td>
                                        <td class="metric-name">{t.metric}</td>
                                        <td class="num last">{t.last.map(charts::num).unwrap_or_else(|| "–".into())}</td>
                                        <td class="num">{charts::num(t.target)}</td>
                                        <td class="num">{charts::num(t.activation_target)}</td>
                                        <td class="num">{format!("{} ms", t.latency_ms)}</td>
                                        <td class="error">{t.error.unwrap_or_default()}</td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            </div>
        </section>
    }
}

#[component]
pub fn Conditions(row: Signal<ObjectRow>) -> impl IntoView {
    let r = move || row.get();
    view! {
        <section class="conditions" aria-labelledby="conditions-title">
            <h2 id="conditions-title">"Conditions"</h2>
            <dl class="summary">
                <dt>"Ready"</dt>
                <dd class="cond-ready">{move || if r().error.is_none() { "yes".to_string() } else { "no".to_string() }}</dd>
                <dt>"Error"</dt><dd class="cond-error">{move || r().error.unwrap_or_else(|| "none".into())}</dd>
                <dt>"Anomaly"</dt><dd class="cond-anomaly">{move || r().anomaly.unwrap_or_else(|| "none".into())}</dd>
                <dt>"Forecast"</dt><dd class="cond-forecast">{move || r().forecast.unwrap_or_else(|| "not predictive".into())}</dd>
                <dt>"Model"</dt><dd class="cond-model">{move || r().model_status.unwrap_or_else(|| "–".into())}</dd>
                <dt>"Last decision"</dt><dd class="cond-decision">{move || r().last_decision.unwrap_or_else(|| "none yet".into())}</dd>
            </dl>
        </section>
    }
}

/// The decision log: SQL's rows, with the ones pushed since on top (same filter applied).
#[component]
pub fn DecisionLog(detail: ObjectDetail, live: Live, rule: Signal<Option<String>>, since: Signal<Option<String>>) -> impl IntoView {
    let id = detail.object.id;
    let stored = detail.decisions;
    let newest = stored.first().map_or(i64::MIN, |d| d.at_ms);
    let rows = move || {
        let want = rule.get();
        let mut rows: Vec<DecisionRow> = live.decisions.with(|all| {
            all.iter().filter(|(o, d)| *o == id && d.at_ms > newest && want.as_ref().is_none_or(|r| *r == d.rule)).map(|(_, d)| d.clone()).collect()
        });
        rows.extend(stored.iter().cloned());
        rows.truncate(crate::api::DECISIONS_SHOWN as usize);
        rows
    };
    view! {
        <section class="decision-log" aria-labelledby="decisions-title">
            <h2 id="decisions-title">"Decision log"</h2>
            <form method="get" class="decision-filter">
                <label for="decision-rule">"Rule "</label>
                <select id="decision-rule" name="rule">
                    <option value="" selected=move || rule.get().is_none()>"any"</option>
                    {RULES.into_iter().map(|r| view! { <option value=r selected=move || rule.get().as_deref() == Some(r)>{r}</option> }).collect_view()}
                </select>
                <label for="decision-since">" since "</label>
                <select id="decision-since" name="since">
                    <option value="" selected=move || since.get().is_none()>"any time"</option>
                    {RANGES.iter().map(|(r, _)| view! { <option value=*r selected=move || since.get().as_deref() == Some(*r)>{format!("last {r}")}</option> }).collect_view()}
                </select>
                <button type="submit">"Filter"</button>
            </form>
            <div class="table-wrap" tabindex="0" role="region" aria-label="decision log table">
            <table class="decisions">
                <thead>
                    <tr><th scope="col">"Time (UTC)"</th><th scope="col">"State"</th><th scope="col">"Rule"</th><th scope="col" class="num">"Replicas"</th><th scope="col">"Why"</th></tr>
                </thead>
                <tbody>
                    {move || {
                        rows()
                            .into_iter()
                            .map(|d| {
                                view! {
                                    <tr data-at=d.at_ms>
                                        <td>{d.at}</td>
                                        <td>{d.state}</td>
                                        <td class="rule">{d.rule}</td>
                                        <td class="num">{d.prev_replicas}" → "{d.new_replicas}</td>
                                        <td class="explanation">{d.explanation}</td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            </div>
        </section>
    }
}
