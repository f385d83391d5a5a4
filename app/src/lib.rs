//! The dashboard: Leptos pages and the server functions they call.

pub mod api;
pub mod catalog;
pub mod charts;
pub mod editor;
pub mod history;
pub mod live;
pub mod models;
mod pages;
pub mod what_if;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, SsrMode, StaticSegment,
    components::{Route, Router, Routes},
};

use pages::audit::AuditPage;
use pages::clusters::ClustersPage;
use pages::editor::EditorPage;
use pages::jobs::JobsPage;
use pages::models::ModelsPage;
use pages::what_if::WhatIfPage;
use pages::sources::SourcesPage;
use pages::object::ObjectPage;
use pages::overview::TenantOverview;

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
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("audit")) view=AuditPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("sources")) view=SourcesPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("clusters")) view=ClustersPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("models")) view=ModelsPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("jobs")) view=JobsPage ssr=SsrMode::Async/>
                    <Route path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("new")) view=EditorPage ssr=SsrMode::Async/>
                    <Route
                        path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("o"), ParamSegment("id"), StaticSegment("what-if"))
                        view=WhatIfPage ssr=SsrMode::Async/>
                    <Route
                        path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("o"), ParamSegment("id"), StaticSegment("edit"))
                        view=EditorPage ssr=SsrMode::Async/>
                    <Route
                        path=(StaticSegment("t"), ParamSegment("tenant"), StaticSegment("o"), ParamSegment("id"))
                        view=ObjectPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}
