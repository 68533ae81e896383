//! The retry schedule: exponential backoff with jitter, and when to give up.

use std::time::Duration;

/// The delay before the attempt after `attempts` failed ones: `base * 2^(attempts-1)`, capped at
/// `max`, then jittered into the upper half (`[d/2, d]`) so that a burst of failures (an SMTP
/// outage hitting fifty deliveries) does not come back as one synchronised burst. `unit` is a
/// random number in `[0, 1)`.
pub fn delay(attempts: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let exp = attempts.saturating_sub(1).min(32);
    let raw = base.saturating_mul(1u32 << exp.min(31)).min(max);
    let half = raw / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// Whether a delivery that has failed `attempts` times should be retried.
pub fn should_retry(attempts: u32, max_attempts: u32) -> bool {
    attempts < max_attempts
}

/// How long a delivery that is only waiting for something (another integration's ticket, the
/// channel's earlier posts) may keep waiting before it is given up and shown as failed.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// When to look again for a delivery that has been waiting `age`: soon at first, then less and
/// less often (a tenth of its age), between `min(base, 1 s)` and one minute. `None` once it has
/// waited [`MAX_WAIT`].
pub fn waiting_delay(age: Duration, base: Duration) -> Option<Duration> {
    if age >= MAX_WAIT {
        return None;
    }
    let floor = base.min(Duration::from_secs(1));
    Some((age / 10).clamp(floor, Duration::from_secs(60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_looks_again_less_often_as_it_ages_and_gives_up_after_a_day() {
        let base = Duration::from_millis(100);
        assert_eq!(waiting_delay(Duration::ZERO, base), Some(base));
        assert_eq!(
            waiting_delay(Duration::from_secs(30), base),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            waiting_delay(Duration::from_secs(3600), base),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            waiting_delay(Duration::from_secs(2), Duration::from_secs(5)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(waiting_delay(MAX_WAIT, base), None);
    }

    const BASE: Duration = Duration::from_secs(2);
    const MAX: Duration = Duration::from_secs(600);

    #[test]
    fn doubles_each_attempt_within_jitter_bounds() {
        for (attempt, full) in [(1, 2), (2, 4), (3, 8), (4, 16), (8, 256)] {
            let full = Duration::from_secs(full);
            assert_eq!(delay(attempt, BASE, MAX, 0.0), full / 2, "attempt {attempt} low");
            assert_eq!(delay(attempt, BASE, MAX, 1.0), full, "attempt {attempt} high");
            let mid = delay(attempt, BASE, MAX, 0.5);
            assert!(mid > full / 2 && mid < full);
        }
    }

    #[test]
    fn capped_and_never_overflows() {
        assert_eq!(delay(10, BASE, MAX, 1.0), MAX);
        assert_eq!(delay(u32::MAX, BASE, MAX, 1.0), MAX);
        assert_eq!(delay(0, BASE, MAX, 1.0), BASE);
    }

    #[test]
    fn gives_up_after_the_budget() {
        assert!(should_retry(1, 3));
        assert!(should_retry(2, 3));
        assert!(!should_retry(3, 3));
    }
}
