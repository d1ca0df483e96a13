//! The Graph API's per-app call limit (`--graph-rate-limit`): each app (or object token) may
//! make that many calls per minute, in bursts of up to the same number, after which calls are
//! answered with Graph error code 4 and a `Retry-After`. The limit is per node: every node of a
//! shared database counts on its own, like any limiter behind a load balancer without sticky
//! sessions. Only authenticated callers get a key, so the limiter's memory is bounded by the
//! apps and object tokens that exist.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Per-caller limiter of Graph API calls; `None` inside when the limit is off.
pub struct GraphRateLimiter {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl GraphRateLimiter {
    /// A limiter of `per_minute` calls per key and minute (0: no limit).
    pub fn new(per_minute: u32) -> GraphRateLimiter {
        GraphRateLimiter {
            limiter: NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// Counts one call of `key`; `Err` holds how long until the next call would be allowed.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

impl std::fmt::Debug for GraphRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphRateLimiter")
            .field("enabled", &self.limiter.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_limit_passes_then_calls_wait() {
        let limiter = GraphRateLimiter::new(3);
        for _ in 0..3 {
            assert!(limiter.check("1").is_ok());
        }
        let wait = limiter.check("1").unwrap_err();
        // One call's worth of a minute at 3 per minute.
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Another key has its own bucket.
        assert!(limiter.check("2").is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = GraphRateLimiter::new(0);
        for _ in 0..10_000 {
            assert!(limiter.check("1").is_ok());
        }
    }
}
