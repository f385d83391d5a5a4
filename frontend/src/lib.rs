//! The browser side: hydrate the server-rendered page (asynchronously: a lazy route's code
//! is fetched before its part of the page is hydrated).

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
