//! Replay protection for signed webhook pushes: each accepted signature is remembered until
//! its timestamp leaves the window, in buckets by timestamp so expiry drops whole seconds at
//! a time (constant work per request, memory proportional to the pushes of one window).

use std::collections::{BTreeMap, HashSet};

/// Signatures accepted within the window, by the request's own timestamp.
#[derive(Default)]
pub struct SeenSignatures {
    by_second: BTreeMap<i64, HashSet<u128>>,
    len: usize,
}

impl SeenSignatures {
    /// Records a verified signature of a request stamped `timestamp` (unix seconds, already
    /// checked to be within `window_secs` of `now`); false when it was accepted before.
    /// The key is the decoded HMAC, so the same signature in another letter case is the same
    /// request. Seconds older than the window are dropped first: a request stamped then is
    /// refused as stale before it gets here.
    pub fn first_use(&mut self, timestamp: i64, now: i64, window_secs: i64, signature_hex: &str) -> bool {
        let oldest = now - window_secs;
        while let Some(entry) = self.by_second.first_entry() {
            if *entry.key() >= oldest {
                break;
            }
            self.len -= entry.remove().len();
        }
        let Some(key) = key(signature_hex) else { return false };
        let inserted = self.by_second.entry(timestamp).or_default().insert(key);
        self.len += usize::from(inserted);
        inserted
    }

    /// Signatures remembered now.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The first 128 bits of the hex signature, whatever its letter case.
fn key(signature_hex: &str) -> Option<u128> {
    let head = signature_hex.get(..32)?;
    u128::from_str_radix(head, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_signature_is_accepted_once_in_any_letter_case() {
        let mut seen = SeenSignatures::default();
        assert!(seen.first_use(1000, 1000, 300, SIG));
        assert!(!seen.first_use(1000, 1001, 300, SIG));
        assert!(!seen.first_use(1000, 1002, 300, &SIG.to_ascii_uppercase()), "upper-case hex is the same HMAC");
        assert!(seen.first_use(1000, 1002, 300, &SIG.replace("9f86", "9f87")));
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn seconds_past_the_window_are_forgotten_and_only_they() {
        let mut seen = SeenSignatures::default();
        for ts in 0..600 {
            assert!(seen.first_use(ts, ts, 300, &format!("{ts:032x}")));
        }
        // At 599 the window reaches back to 299: the 299 older seconds are gone.
        assert_eq!(seen.len(), 301);
        assert!(!seen.first_use(299, 599, 300, &format!("{:032x}", 299)), "299 is still within the window");
        seen.first_use(700, 700, 300, "ff");
        assert_eq!(seen.len(), 200, "a malformed signature is refused, and the expiry still ran (400..=599 left)");
    }
}
