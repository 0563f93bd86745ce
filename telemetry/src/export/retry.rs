//! Exponential backoff with jitter, honouring `Retry-After`.

use std::time::Duration;

/// How failed requests (429, 5xx, timeouts, connection errors) are retried.
///
/// The wait before attempt `n + 1` is `initial_backoff × 2^(n-1)`, capped at
/// `max_backoff`, with "equal jitter" (half fixed, half random), and never
/// shorter than the server's `Retry-After` (itself capped at
/// `max_retry_after`).
///
/// ```
/// use elspeth_telemetry::export::RetryPolicy;
/// use std::time::Duration;
/// let p = RetryPolicy::default();
/// let d = p.delay(1, Some(Duration::from_secs(3)));
/// assert!(d >= Duration::from_secs(3));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per batch, the first included. Default 6.
    pub max_attempts: u32,
    /// Wait after the first failure. Default 500 ms.
    pub initial_backoff: Duration,
    /// Longest computed wait. Default 30 s.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured. Default 60 s.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Wait after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let half = base / 2;
        let jitter = Duration::from_nanos(fastrand::u64(
            0..=half.as_nanos().min(u128::from(u64::MAX)) as u64,
        ));
        let backoff = half + jitter;
        match retry_after {
            Some(ra) => backoff.max(ra.min(self.max_retry_after)),
            None => backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(800),
            max_retry_after: Duration::from_secs(2),
        };
        for attempt in 1..10 {
            let d = p.delay(attempt, None);
            let base = (100u64 << (attempt - 1)).min(800);
            assert!(d >= Duration::from_millis(base / 2), "{attempt}: {d:?}");
            assert!(d <= Duration::from_millis(base), "{attempt}: {d:?}");
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(10))),
            Duration::from_secs(2)
        );
        assert!(p.delay(1, Some(Duration::from_millis(700))) >= Duration::from_millis(700));
    }
}
