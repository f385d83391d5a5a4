pub mod audit;
pub mod object;
pub mod overview;

use std::time::Duration;

use leptos::prelude::*;

/// How often live pages ask for fresh values.
const REFRESH: Duration = Duration::from_secs(2);

/// Marks the page hydrated (tests wait for it) and ticks every REFRESH in the browser.
pub fn live_ticker() -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0u64);
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
        if let Ok(handle) = set_interval_with_handle(move || set_tick.update(|t| *t += 1), REFRESH) {
            on_cleanup(move || handle.clear());
        }
    });
    tick
}

pub fn show(n: Option<i32>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "–".into())
}
