//! The dashboard: Leptos pages and the server functions they call.

pub mod api;
pub mod catalog;
pub mod charts;
pub mod client;
pub mod codec;
pub mod editor;
pub mod history;
pub mod live;
pub mod models;
mod pages;
mod routes;
pub mod what_if;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    Lazy, ParamSegment, SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use pages::overview::TenantOverview;
use routes::{AuditRoute, ClustersRoute, EditorRoute, JobsRoute, ModelsRoute, ObjectRoute, SourcesRoute, WhatIfRoute};

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="data:,"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/swell.css"/>
        <Title text="Swell"/>
        <Router>
            <header class="top">
                <a class="brand" href="/">"Swell"</a>
                <span class="tagline">"event-driven, predictive autoscaling"</span>
                <form class="logout" method="post" action="/logout">
                    <button type="submit">"Sign out"</button>
                </form>
            </header>
            <main id="main">
                <Routes fallback=|| view! { <p class="error">"Page not found."</p> }>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant")) view=TenantOverview ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("audit")) view={Lazy::<AuditRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("sources")) view={Lazy::<SourcesRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("clusters")) view={Lazy::<ClustersRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("models")) view={Lazy::<ModelsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("jobs")) view={Lazy::<JobsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("new")) view={Lazy::<EditorRoute>::new()} ssr=SsrMode::Async/>
                    <Route
                        path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("o"), ParamSegment("id"), StaticSegment("what-if"))
                        view={Lazy::<WhatIfRoute>::new()} ssr=SsrMode::Async/>
                    <Route
                        path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("o"), ParamSegment("id"), StaticSegment("edit"))
                        view={Lazy::<EditorRoute>::new()} ssr=SsrMode::Async/>
                    <Route
                        path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("o"), ParamSegment("id"))
                        view={Lazy::<ObjectRoute>::new()} ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}
