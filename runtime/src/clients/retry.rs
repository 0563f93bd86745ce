//! Retry policy: exponential backoff with jitter, honouring `Retry-After`.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// How failed calls are retried.
///
/// A call is retried after a 429, a 5xx, a timeout or a broken connection,
/// at most [`max_retries`](Self::max_retries) times. The wait before retry
/// `n` (1-based) is the server's `retry-after-ms` / `Retry-After` when it
/// sends one (capped at [`max_retry_after`](Self::max_retry_after)), else a
/// random duration between half and all of `base_delay × 2^(n-1)`, capped at
/// [`max_delay`](Self::max_delay).
///
/// ```
/// use elspeth_runtime::clients::RetryPolicy;
/// use std::time::Duration;
/// let p = RetryPolicy::new(3);
/// let d = p.backoff(2);
/// assert!(d >= p.base_delay && d <= p.base_delay * 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
    /// Backoff before the first retry (doubled for each further retry).
    pub base_delay: Duration,
    /// Longest computed backoff.
    pub max_delay: Duration,
    /// Longest wait honoured from a `Retry-After` header.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// `max_retries` retries with the default timings (0.5 s base, 30 s
    /// cap, `Retry-After` honoured up to 120 s).
    pub fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }

    /// Sets the backoff timings (e.g. short ones in tests).
    pub fn with_backoff(mut self, base_delay: Duration, max_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self.max_delay = max_delay.max(base_delay);
        self
    }

    /// The computed backoff before retry `retry` (1-based), with jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// The wait before retry `retry`: the server's hint when given, else
    /// [`backoff`](Self::backoff).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_retry_after),
            None => self.backoff(retry),
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new(3)
    }
}

/// The server's retry hint: Azure's `retry-after-ms`, else `Retry-After` as
/// seconds (fractions accepted) or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// Parses a `Retry-After` value: delay-seconds (fractions accepted) or an
/// HTTP date (a date in the past means "now").
///
/// ```
/// use elspeth_runtime::clients::retry::parse_retry_after;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// let now = UNIX_EPOCH + Duration::from_secs(784111777);
/// assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now), Some(Duration::from_secs(3)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::new(10)
            .with_backoff(Duration::from_millis(100), Duration::from_millis(1000));
        for retry in 1..=10 {
            let full =
                Duration::from_millis(100 * (1u64 << (retry - 1))).min(Duration::from_millis(1000));
            for _ in 0..50 {
                let d = p.backoff(retry);
                assert!(
                    d >= full / 2 && d <= full,
                    "retry {retry}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        assert!(p.backoff(u32::MAX) <= Duration::from_millis(1000));
    }

    #[test]
    fn server_hint_wins_but_is_capped() {
        let p = RetryPolicy::new(3);
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(9999))),
            p.max_retry_after
        );
    }

    #[test]
    fn headers_ms_then_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("0.05"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(50)));
        h.insert("retry-after", HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn http_date_in_the_past_is_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784111777 + 60);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
    }
}
