//! The wall clock, read in one place so the rest of the server takes `now` as a value.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Now, in unix seconds.
pub fn now_s() -> i64 {
    now_ms() / 1000
}
