//! The HPA's behaviour rules for `direct` mode, where Swell does the HPA's work: kubernetes
//! `pkg/controller/podautoscaler` (`stabilizeRecommendationWithBehaviors`,
//! `convertDesiredReplicasWithBehaviorRate` and the scale-up/down limits).

use chrono::{DateTime, Duration, Utc};

use super::State;
use super::window::ScaleEvents;
use crate::spec::{PolicyType, ScalingRules, SelectPolicy};

/// `stabilizeRecommendationWithBehaviors`: up to the lowest recommendation of the scale-up
/// window, down to the highest of the scale-down window. Records `desired`.
pub(super) fn stabilize(state: &mut State, current: i32, desired: i32, up: &ScalingRules, down: &ScalingRules, now: DateTime<Utc>) -> (i32, String) {
    let up_window = Duration::seconds(up.stabilization_window_seconds.unwrap_or(0) as i64);
    let down_window = Duration::seconds(down.stabilization_window_seconds.unwrap_or(300) as i64);
    let up_rec = state.recommendations.lowest_after(now - up_window).map_or(desired, |r| r.min(desired));
    let down_rec = state.recommendations.highest_after(now - down_window).map_or(desired, |r| r.max(desired));
    let mut recommendation = current;
    if recommendation < up_rec {
        recommendation = up_rec;
    }
    if recommendation > down_rec {
        recommendation = down_rec;
    }
    state.recommendations.record(now, desired, up_window.max(down_window));
    let note = if recommendation > desired {
        format!("kept at {recommendation} by the {} s scale-down stabilization window", down_window.num_seconds())
    } else {
        format!("held to {recommendation} by the {} s scale-up stabilization window", up_window.num_seconds())
    };
    (recommendation, note)
}

fn change_in_period(events: &ScaleEvents, period_seconds: i32, now: DateTime<Utc>) -> i32 {
    events.since(now - Duration::seconds(period_seconds as i64))
}

/// `convertDesiredReplicasWithBehaviorRate`: the rate policies and the min/max bounds.
#[allow(clippy::too_many_arguments)]
pub(super) fn rate_limit(
    state: &State,
    current: i32,
    desired: i32,
    min: i32,
    max: i32,
    up: &ScalingRules,
    down: &ScalingRules,
    now: DateTime<Utc>,
) -> (i32, String) {
    let period_start = |p: i32| {
        current - change_in_period(&state.scale_up_events, p, now) + change_in_period(&state.scale_down_events, p, now)
    };
    if desired > current {
        let limit = match up.select_policy {
            Some(SelectPolicy::Disabled) => current,
            // No policies at all: direct mode's default, the metric's step at once.
            _ if up.policies.is_none() => i32::MAX,
            select => {
                let proposals = up.policies.iter().flatten().map(|p| {
                    let start = period_start(p.period_seconds);
                    match p.policy_type {
                        PolicyType::Pods => start + p.value,
                        PolicyType::Percent => (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i32,
                    }
                });
                if select == Some(SelectPolicy::Min) { proposals.min() } else { proposals.max() }.unwrap_or(current)
            }
        }
        .max(current);
        let allowed = max.min(limit);
        if desired > allowed {
            let note = if allowed == max && limit >= max {
                format!("capped at maxReplicaCount {max}")
            } else {
                format!("scale-up policies allow {allowed} now")
            };
            return (allowed, note);
        }
    } else if desired < current {
        let limit = match down.select_policy {
            Some(SelectPolicy::Disabled) => current,
            select => {
                let proposals = down.policies.iter().flatten().map(|p| {
                    let start = period_start(p.period_seconds);
                    match p.policy_type {
                        PolicyType::Pods => start - p.value,
                        PolicyType::Percent => (start as f64 * (1.0 - p.value as f64 / 100.0)) as i32,
                    }
                });
                if select == Some(SelectPolicy::Min) { proposals.max() } else { proposals.min() }.unwrap_or(current)
            }
        }
        .min(current);
        let allowed = min.max(limit);
        if desired < allowed {
            let note = if allowed == min && limit <= min {
                format!("raised to minReplicaCount {min}")
            } else {
                format!("scale-down policies allow {allowed} now")
            };
            return (allowed, note);
        }
    }
    (desired, String::new())
}

/// The HPA remembers each change for its rate policies (events older than the longest
/// possible period, 30 min, are dropped; changes in the same second are summed).
pub(super) fn record_scale_event(state: &mut State, from: i32, to: i32, now: DateTime<Utc>) {
    let keep = Duration::seconds(1800);
    state.scale_up_events.forget(now - keep);
    state.scale_down_events.forget(now - keep);
    if to > from {
        state.scale_up_events.record(now, to - from);
    } else if to < from {
        state.scale_down_events.record(now, from - to);
    }
}

