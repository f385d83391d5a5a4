//! A forecast meets the reactive answer: replicas = max(reactive, ceil(forecast / target)),
//! clamped to [min, max], the forecast's extra capped per step — so a forecast can only add
//! capacity ahead of load, never take it away (AWS's rule: no scale-in on a forecast alone).

use super::forecast::Forecast;

/// What the blend needs besides the forecast.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// What the reactive rules (KEDA/HPA) answer from the current metric.
    pub reactive: i32,
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
}

/// Blends `forecast` (its upper quantile when `use_upper`) into `b.reactive`.
pub fn blend(forecast: Forecast, use_upper: bool, b: Bounds) -> Blended {
    let load = if use_upper { forecast.upper.max(forecast.mean) } else { forecast.mean };
    let predicted = if b.target > 0.0 && load.is_finite() && load > 0.0 { (load / b.target).ceil().min(i32::MAX as f64) as i32 } else { 0 };
    let floor = b.reactive.clamp(b.min, b.max.max(b.min));
    let mut ahead = predicted;
    if let Some(step) = b.max_scale_up_step {
        ahead = ahead.min(b.current.max(floor).saturating_add(step.max(0)));
    }
    let replicas = floor.max(ahead.min(b.max));
    Blended { replicas, predicted, changed: replicas > floor }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(reactive: i32, current: i32) -> Bounds {
        Bounds { reactive, current, target: 10.0, min: 1, max: 20, max_scale_up_step: None }
    }

    #[test]
    fn the_forecast_adds_ahead_of_load_within_bounds() {
        let f = |mean: f64, upper: f64| Forecast { mean, upper };
        assert_eq!(blend(f(95.0, 120.0), false, b(3, 3)), Blended { replicas: 10, predicted: 10, changed: true });
        assert_eq!(blend(f(95.0, 120.0), true, b(3, 3)).replicas, 12, "planned for the upper quantile");
        assert_eq!(blend(f(20.0, 25.0), true, b(6, 6)), Blended { replicas: 6, predicted: 3, changed: false }, "a low forecast never takes capacity away");
        assert_eq!(blend(f(900.0, 900.0), false, b(3, 3)).replicas, 20, "clamped to max");
        let capped = Bounds { max_scale_up_step: Some(2), ..b(3, 4) };
        assert_eq!(blend(f(95.0, 95.0), false, capped).replicas, 6, "at most 2 above max(current, reactive)");
        assert_eq!(blend(f(f64::NAN, f64::NAN), true, b(3, 3)).replicas, 3);
    }

    proptest! {
        #[test]
        fn never_below_the_reactive_answer_and_never_a_scale_in_on_the_forecast(
            mean in -1e6f64..1e6, spread in 0f64..1e5, reactive in 0i32..50, current in 0i32..50,
            min in 0i32..5, max in 5i32..40, step in proptest::option::of(0i32..10), upper: bool,
        ) {
            let bounds = Bounds { reactive, current, target: 7.5, min, max, max_scale_up_step: step };
            let out = blend(Forecast { mean, upper: mean + spread }, upper, bounds);
            let floor = reactive.clamp(min, max);
            prop_assert!(out.replicas >= floor);
            prop_assert!(out.replicas <= max.max(floor));
            // Below the current count only when the reactive answer is too (a forecast never
            // scales in; it may only make a scale-in smaller).
            if out.replicas < current {
                prop_assert!(floor < current);
            }
            prop_assert_eq!(out.changed, out.replicas > floor);
        }
    }
}
