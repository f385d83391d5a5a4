//! A forecast meets the reactive answer: replicas = max(reactive, ceil(forecast / target)),
//! clamped to [min, max], the forecast's extra capped per step — so a forecast adds capacity
//! ahead of load and never takes it away on its own (AWS's rule: no scale-in on a forecast
//! alone). When the reactive rules themselves ask for fewer replicas and only the scale-down
//! stabilization window holds them, a forecast that needs no more than that lower count may
//! let the scale-in happen now (`scaleIn: forecastConfirmed`).

use super::forecast::Forecast;

/// What the blend needs besides the forecast.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// What the reactive rules (KEDA/HPA) answer from the current metric.
    pub reactive: i32,
    /// The same before the scale-down stabilization window (its newest recommendation);
    /// `Some` lets a confirming forecast scale in to it at once.
    pub unstabilized: Option<i32>,
    /// The target's replicas now.
    pub current: i32,
    /// The metric one replica should handle.
    pub target: f64,
    pub min: i32,
    pub max: i32,
    /// At most this many replicas above max(current, reactive) on a forecast (None: no cap).
    pub max_scale_up_step: Option<i32>,
}

/// The blended answer and what the forecast alone would have asked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Blended {
    pub replicas: i32,
    pub predicted: i32,
    /// The forecast raised the answer above the reactive one.
    pub changed: bool,
    /// The forecast confirmed a scale-in the stabilization window was holding back.
    pub scaled_in: bool,
}

/// The reactive rules' recommendation of the poll at `at` before the scale-down
/// stabilization window (the HPA path records it), if that poll made one.
pub fn unstabilized(state: &crate::decide::State, at: chrono::DateTime<chrono::Utc>) -> Option<i32> {
    state.recommendations.latest().filter(|(t, _)| *t == at).map(|(_, r)| r)
}

/// Blends `forecast` (its upper quantile when `use_upper`) into `b.reactive`.
pub fn blend(forecast: Forecast, use_upper: bool, b: Bounds) -> Blended {
    let load = if use_upper { forecast.upper.max(forecast.mean) } else { forecast.mean };
    let predicted = if b.target > 0.0 && load.is_finite() && load > 0.0 { (load / b.target).ceil().min(i32::MAX as f64) as i32 } else { 0 };
    let held = b.reactive.clamp(b.min, b.max.max(b.min));
    // The stabilization window keeps `held`; the metric asks `lower`; the forecast agrees.
    let lower = b.unstabilized.map(|u| u.clamp(b.min, b.max.max(b.min))).filter(|u| *u < held && predicted <= *u && load.is_finite());
    let floor = lower.unwrap_or(held);
    let mut ahead = predicted;
    if let Some(step) = b.max_scale_up_step {
        ahead = ahead.min(b.current.max(floor).saturating_add(step.max(0)));
    }
    let replicas = floor.max(ahead.min(b.max));
    Blended { replicas, predicted, changed: replicas > floor, scaled_in: lower.is_some() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(reactive: i32, current: i32) -> Bounds {
        Bounds { reactive, unstabilized: None, current, target: 10.0, min: 1, max: 20, max_scale_up_step: None }
    }

    #[test]
    fn the_forecast_adds_ahead_of_load_within_bounds() {
        let f = |mean: f64, upper: f64| Forecast { mean, upper };
        assert_eq!(blend(f(95.0, 120.0), false, b(3, 3)), Blended { replicas: 10, predicted: 10, changed: true, scaled_in: false });
        assert_eq!(blend(f(95.0, 120.0), true, b(3, 3)).replicas, 12, "planned for the upper quantile");
        assert_eq!(blend(f(20.0, 25.0), true, b(6, 6)), Blended { replicas: 6, predicted: 3, changed: false, scaled_in: false }, "a low forecast never takes capacity away");
        assert_eq!(blend(f(900.0, 900.0), false, b(3, 3)).replicas, 20, "clamped to max");
        let capped = Bounds { max_scale_up_step: Some(2), ..b(3, 4) };
        assert_eq!(blend(f(95.0, 95.0), false, capped).replicas, 6, "at most 2 above max(current, reactive)");
        assert_eq!(blend(f(f64::NAN, f64::NAN), true, b(3, 3)).replicas, 3);
        // The window holds 8, the metric asks 4: a forecast needing 3 lets it go to 4 now; one
        // needing 6 keeps 6; with no lower ask, a low forecast changes nothing.
        let held = Bounds { unstabilized: Some(4), ..b(8, 8) };
        assert_eq!(blend(f(25.0, 25.0), false, held), Blended { replicas: 4, predicted: 3, changed: false, scaled_in: true });
        assert_eq!(blend(f(55.0, 55.0), false, held).replicas, 8, "the forecast needs more than the lower ask: the window holds");
        assert_eq!(blend(f(f64::NAN, f64::NAN), false, held).replicas, 8);
    }

    proptest! {
        #[test]
        fn never_below_the_reactive_answer_and_never_a_scale_in_on_the_forecast(
            mean in -1e6f64..1e6, spread in 0f64..1e5, reactive in 0i32..50, current in 0i32..50,
            min in 0i32..5, max in 5i32..40, step in proptest::option::of(0i32..10), upper: bool,
            unstabilized in proptest::option::of(0i32..50),
        ) {
            let bounds = Bounds { reactive, unstabilized, current, target: 7.5, min, max, max_scale_up_step: step };
            let out = blend(Forecast { mean, upper: mean + spread }, upper, bounds);
            let held = reactive.clamp(min, max);
            // Never below what the metric itself asks (before or after stabilization).
            let asked = unstabilized.map_or(held, |u| u.clamp(min, max).min(held));
            prop_assert!(out.replicas >= asked);
            prop_assert!(out.replicas <= max.max(held));
            // Below the current count only when the metric asks so too (a forecast never
            // scales in on its own; it may only confirm or shrink a scale-in).
            if out.replicas < current {
                prop_assert!(asked < current);
            }
            if out.replicas < held {
                prop_assert!(out.scaled_in && unstabilized.is_some());
            }
        }
    }
}
