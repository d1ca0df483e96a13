//! The retry policy (SPEC §2.3) as a pure function: after a failed attempt, when to try next, or
//! to give up because the next try would fall outside the window that started with the first
//! attempt. The last delay of the schedule repeats.

use std::time::Duration;

/// Delays between attempts and the window they fit in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before retry 1, 2, ...; the last one repeats. Never empty.
    pub schedule: Vec<Duration>,
    /// How long after the first attempt retries may happen.
    pub window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        RetryPolicy {
            schedule: vec![
                Duration::ZERO,
                Duration::from_secs(10),
                minutes(1),
                minutes(5),
                minutes(30),
                minutes(60),
                minutes(120),
                minutes(240),
                minutes(480),
            ],
            window: Duration::from_secs(36 * 3600),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAttempt {
    /// Try again at this time (unix ms).
    At(i64),
    /// The window is over: the delivery is `failed`.
    GiveUp,
}

impl RetryPolicy {
    /// The delay before retry `retry_number` (1-based).
    pub fn delay_before_retry(&self, retry_number: u32) -> Duration {
        let index = (retry_number.max(1) as usize - 1).min(self.schedule.len().saturating_sub(1));
        self.schedule.get(index).copied().unwrap_or(Duration::ZERO)
    }

    /// After attempt `attempts_made` failed at `now_ms`, with the first attempt at
    /// `first_attempt_ms`: when to try again, or give up.
    pub fn after_failure(
        &self,
        attempts_made: u32,
        first_attempt_ms: i64,
        now_ms: i64,
    ) -> NextAttempt {
        let delay =
            i64::try_from(self.delay_before_retry(attempts_made).as_millis()).unwrap_or(i64::MAX);
        let window = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        let at = now_ms.saturating_add(delay);
        if at > first_attempt_ms.saturating_add(window) {
            NextAttempt::GiveUp
        } else {
            NextAttempt::At(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(schedule: &[u64], window: u64) -> RetryPolicy {
        RetryPolicy {
            schedule: schedule.iter().map(|s| Duration::from_secs(*s)).collect(),
            window: Duration::from_secs(window),
        }
    }

    #[test]
    fn default_is_immediately_then_growing_gaps_for_36_hours() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay_before_retry(1), Duration::ZERO);
        assert_eq!(policy.delay_before_retry(2), Duration::from_secs(10));
        assert_eq!(policy.delay_before_retry(9), Duration::from_secs(8 * 3600));
        assert_eq!(policy.delay_before_retry(50), Duration::from_secs(8 * 3600));
        assert_eq!(policy.window, Duration::from_secs(36 * 3600));
    }

    #[test]
    fn the_last_delay_repeats_until_the_window_ends() {
        let policy = policy(&[0, 1, 2], 10);
        let first = 0;
        let mut now = first;
        let mut times = vec![];
        let mut attempts = 1;
        while let NextAttempt::At(at) = policy.after_failure(attempts, first, now) {
            times.push(at);
            now = at;
            attempts += 1;
            assert!(attempts < 100, "bounded");
        }
        assert_eq!(times, vec![0, 1000, 3000, 5000, 7000, 9000]);
    }

    #[test]
    fn nothing_is_scheduled_past_the_window() {
        let policy = policy(&[5], 4);
        assert_eq!(policy.after_failure(1, 0, 0), NextAttempt::GiveUp);
        assert_eq!(policy.after_failure(1, 0, -1000), NextAttempt::At(4000));
    }
}
