//! Every page but the overview as a lazy route: the browser fetches a page's code (its own
//! wasm chunk, split by `cargo leptos build --split`) when it first shows that page, so the
//! first download holds the router, the live stream and the overview only.

use leptos::prelude::*;
use leptos_router::{LazyRoute, lazy_route};

use crate::pages::audit::AuditPage;
use crate::pages::clusters::ClustersPage;
use crate::pages::editor::EditorPage;
use crate::pages::jobs::JobsPage;
use crate::pages::models::ModelsPage;
use crate::pages::object::ObjectPage;
use crate::pages::sources::SourcesPage;
use crate::pages::what_if::WhatIfPage;

// One impl per page, written out: the split point is named after where the macro stands,
// so a macro_rules! making them would give them all one name.

pub struct ObjectRoute;
#[lazy_route]
impl LazyRoute for ObjectRoute {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        view! { <ObjectPage/> }.into_any()
    }
}

pub struct EditorRoute;
#[lazy_route]
impl LazyRoute for EditorRoute {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        view! { <EditorPage/> }.into_any()
    }
}

pub struct WhatIfRoute;
#[lazy_route]
impl LazyRoute for WhatIfRoute {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        view! { <WhatIfPage/> }.into_any()
    }
}

pub struct AuditRoute;
#[lazy_route]
impl LazyRoute for AuditRoute {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        view! { <AuditPage/> }.into_any()
    }
}

pub struct SourcesRoute;
#[lazy_route]
impl LazyRoute for SourcesRoute {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        view! { <SourcesPage/> }.into_any()
    }
}

pub struct ClustersRoute;
#[lazy_route]
impl LazyRoute for ClustersRoute {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        view! { <ClustersPage/> }.into_any()
    }
}

pub struct ModelsRoute;
#[lazy_route]
impl LazyRoute for ModelsRoute {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        view! { <ModelsPage/> }.into_any()
    }
}

pub struct JobsRoute;
#[lazy_route]
impl LazyRoute for JobsRoute {
    fn data() -> Self {
        Self
    }
    fn view(_this: Self) -> AnyView {
        view! { <JobsPage/> }.into_any()
    }
}
