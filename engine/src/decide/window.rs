//! What the HPA's behaviour rules remember between decisions, bounded however often Swell
//! decides (the HPA decides every 15 s; Swell on every push): the stabilization windows'
//! recommendations as two monotonic queues (exact extremes), and the rate policies' replica
//! changes summed per second.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

/// Recent unstabilized recommendations. Only those that can still be a window's lowest or
/// highest are kept: a recommendation followed by one at most as high can never again be the
/// highest of a window that ends now or later (the later one is in every such window too),
/// and the same for the lowest. So the answers are the HPA's, and the queues hold at most one
/// entry per distinct replica count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recommendations {
    /// Strictly increasing values, oldest first: the candidates for a window's lowest.
    lows: VecDeque<(DateTime<Utc>, i32)>,
    /// Strictly decreasing values, oldest first: the candidates for a window's highest.
    highs: VecDeque<(DateTime<Utc>, i32)>,
}

impl Recommendations {
    /// Records `rec` made at `at`, forgetting what is `keep` or more older than `at`.
    pub fn record(&mut self, at: DateTime<Utc>, rec: i32, keep: Duration) {
        let cutoff = at - keep;
        for queue in [&mut self.lows, &mut self.highs] {
            while queue.front().is_some_and(|(t, _)| *t <= cutoff) {
                queue.pop_front();
            }
        }
        while self.lows.back().is_some_and(|(_, r)| *r >= rec) {
            self.lows.pop_back();
        }
        while self.highs.back().is_some_and(|(_, r)| *r <= rec) {
            self.highs.pop_back();
        }
        self.lows.push_back((at, rec));
        self.highs.push_back((at, rec));
    }

    /// The lowest recommendation made after `cutoff`.
    pub fn lowest_after(&self, cutoff: DateTime<Utc>) -> Option<i32> {
        self.lows.iter().find(|(t, _)| *t > cutoff).map(|(_, r)| *r)
    }

    /// The highest recommendation made after `cutoff`.
    pub fn highest_after(&self, cutoff: DateTime<Utc>) -> Option<i32> {
        self.highs.iter().find(|(t, _)| *t > cutoff).map(|(_, r)| *r)
    }

    /// The newest recommendation and when it was made.
    pub fn latest(&self) -> Option<(DateTime<Utc>, i32)> {
        self.lows.back().copied()
    }

    pub fn clear(&mut self) {
        self.lows.clear();
        self.highs.clear();
    }

    /// Entries held (the larger queue).
    pub fn len(&self) -> usize {
        self.lows.len().max(self.highs.len())
    }

    pub fn is_empty(&self) -> bool {
        self.lows.is_empty()
    }
}

/// Replica changes in one direction, summed per second of the clock and dated at that
/// second's latest change: a change is counted at most 1 s longer than the HPA would count
/// it, never shorter, and `keep` of history holds at most one entry per second.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScaleEvents(VecDeque<(DateTime<Utc>, i32)>);

impl ScaleEvents {
    /// Records a change of `replicas` at `at` (after `forget`).
    pub fn record(&mut self, at: DateTime<Utc>, replicas: i32) {
        match self.0.back_mut() {
            Some((t, n)) if t.timestamp() == at.timestamp() && *t <= at => {
                *t = at;
                *n += replicas;
            }
            _ => self.0.push_back((at, replicas)),
        }
    }

    /// Drops the changes made at or before `cutoff`.
    pub fn forget(&mut self, cutoff: DateTime<Utc>) {
        while self.0.front().is_some_and(|(t, _)| *t <= cutoff) {
            self.0.pop_front();
        }
    }

    /// The replicas changed after `cutoff`.
    pub fn since(&self, cutoff: DateTime<Utc>) -> i32 {
        self.0.iter().filter(|(t, _)| *t > cutoff).map(|(_, n)| n).sum()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
    }

    proptest! {
        /// The queues answer what keeping every recommendation would answer.
        #[test]
        fn window_extremes_are_those_of_every_recommendation(
            steps in proptest::collection::vec((0i64..3_000, 0i32..12), 1..400),
            windows in proptest::collection::vec(0i64..200_000, 1..4),
        ) {
            let keep = Duration::milliseconds(*windows.iter().max().unwrap());
            let (mut queues, mut all, mut now) = (Recommendations::default(), Vec::new(), 0);
            for (gap, rec) in steps {
                now += gap;
                queues.record(at(now), rec, keep);
                all.push((at(now), rec));
                for w in &windows {
                    let cutoff = at(now) - Duration::milliseconds(*w);
                    let inside = || all.iter().filter(|(t, _)| *t > cutoff).map(|(_, r)| *r);
                    prop_assert_eq!(queues.lowest_after(cutoff), inside().min());
                    prop_assert_eq!(queues.highest_after(cutoff), inside().max());
                }
                prop_assert_eq!(queues.latest(), Some((at(now), rec)));
                prop_assert!(queues.len() <= 12, "one entry per distinct value at most");
            }
        }

        /// Summing per second counts every change, for at least as long as the HPA would.
        #[test]
        fn per_second_sums_count_each_change_no_less_than_the_hpa(
            steps in proptest::collection::vec((0i64..1_500, 1i32..5), 1..300),
            period in 1i64..60,
        ) {
            let (mut events, mut all, mut now) = (ScaleEvents::default(), Vec::new(), 0);
            for (gap, n) in steps {
                now += gap;
                events.forget(at(now) - Duration::seconds(60));
                events.record(at(now), n);
                all.push((at(now), n));
                let cutoff = at(now) - Duration::seconds(period);
                let exact: i32 = all.iter().filter(|(t, _)| *t > cutoff).map(|(_, n)| n).sum();
                let one_s_more: i32 = all.iter().filter(|(t, _)| *t > cutoff - Duration::seconds(1)).map(|(_, n)| n).sum();
                prop_assert!((exact..=one_s_more).contains(&events.since(cutoff)));
            }
        }
    }

    #[test]
    fn a_thousand_decisions_a_second_for_half_an_hour_keep_one_entry_a_second() {
        let (mut recs, mut ups) = (Recommendations::default(), ScaleEvents::default());
        for ms in 0..1_800_000 {
            let now = at(ms);
            // A sawtooth between 1 and 200 replicas, rising and falling every 0.2 s.
            recs.record(now, 1 + (ms % 400 - 200).abs() as i32, Duration::seconds(300));
            ups.forget(now - Duration::seconds(1800));
            ups.record(now, 1);
        }
        assert!(recs.len() <= 200, "recommendations held: {}", recs.len());
        assert_eq!(ups.len(), 1800);
        assert_eq!(ups.since(at(999)), 1_800_000 - 1000, "the first second has left the window");
    }
}
