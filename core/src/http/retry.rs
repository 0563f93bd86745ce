//! Exponential backoff with jitter, and the server's retry hint.

use std::time::{Duration, SystemTime};

/// The longest wait [`parse_retry_after`] and [`parse_retry_after_ms`] ever
/// return: one day. A larger number (`Retry-After: 1e20`, or digits beyond
/// `u64`) means "a long time" and is read as this cap instead of
/// overflowing; each [`RetryPolicy`] then caps it again at its own
/// [`max_retry_after`](RetryPolicy::max_retry_after).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// How a [`RetryPolicy`] combines the server's retry hint with its own
/// backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerHint {
    /// The hint replaces the backoff: an LLM backend that says "retry in
    /// 200 ms" is retried after 200 ms (its rate limiter knows best).
    Replaces,
    /// The wait is the longer of the backoff and the hint: a tracing
    /// exporter never retries sooner than its backoff, so a failing
    /// collector is not hammered however short its hint.
    AtLeast,
}

/// How failed requests (429, 5xx, timeouts, broken connections) are retried.
///
/// A request is tried at most [`max_attempts`](Self::max_attempts) times
/// (`max_retries + 1`). The computed backoff before retry `n` (1-based) is
/// `base_delay × 2^(n-1)`, capped at [`max_delay`](Self::max_delay), with
/// "equal jitter": a random duration between half and all of it. The
/// server's hint (`Retry-After`), capped at
/// [`max_retry_after`](Self::max_retry_after), then either replaces the
/// backoff or is a floor under it, per [`server_hint`](Self::server_hint).
///
/// ```
/// use elspeth_core::http::{RetryPolicy, ServerHint};
/// use std::time::Duration;
/// let llm = RetryPolicy::new(3);
/// assert_eq!(llm.delay(1, Some(Duration::from_secs(7))), Duration::from_secs(7));
/// let export = RetryPolicy::exporter();
/// assert_eq!(export.max_attempts(), 6);
/// assert!(export.delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = no retry).
    pub max_retries: u32,
    /// Backoff before the first retry (doubled for each further retry).
    pub base_delay: Duration,
    /// Longest computed backoff.
    pub max_delay: Duration,
    /// Longest wait honoured from the server's hint.
    pub max_retry_after: Duration,
    /// How the server's hint and the backoff combine.
    pub server_hint: ServerHint,
}

impl RetryPolicy {
    /// The LLM clients' policy: `max_retries` retries, 0.5 s base, 30 s
    /// cap, the server's hint replacing the backoff, honoured up to 120 s.
    pub fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            server_hint: ServerHint::Replaces,
        }
    }

    /// The tracing exporters' policy: 6 attempts, 0.5 s base, 30 s cap,
    /// never sooner than the server's hint, honoured up to 60 s.
    pub fn exporter() -> Self {
        Self {
            max_retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            server_hint: ServerHint::AtLeast,
        }
    }

    /// Sets the backoff timings (e.g. short ones in tests).
    pub fn with_backoff(mut self, base_delay: Duration, max_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self.max_delay = max_delay.max(base_delay);
        self
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_retries.saturating_add(1)
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

    /// The wait before retry `retry` (1-based: after failed attempt number
    /// `retry`), given the server's hint if it sent one.
    pub fn delay(&self, retry: u32, hint: Option<Duration>) -> Duration {
        match (hint.map(|h| h.min(self.max_retry_after)), self.server_hint) {
            (Some(h), ServerHint::Replaces) => h,
            (Some(h), ServerHint::AtLeast) => self.backoff(retry).max(h),
            (None, _) => self.backoff(retry),
        }
    }
}

impl Default for RetryPolicy {
    /// The LLM clients' policy with 3 retries.
    fn default() -> Self {
        Self::new(3)
    }
}

/// A non-negative number of seconds (fractions accepted) as a wait, capped
/// at [`MAX_RETRY_AFTER`]; `None` for a negative, `NaN` or infinite value.
fn capped_seconds(secs: f64) -> Option<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    // Compare before converting: `Duration::from_secs_f64` panics on values
    // beyond `u64::MAX` seconds.
    if secs >= MAX_RETRY_AFTER.as_secs_f64() {
        return Some(MAX_RETRY_AFTER);
    }
    Duration::try_from_secs_f64(secs).ok()
}

/// Parses a `Retry-After` value: delay-seconds (fractions accepted, as some
/// servers send them) or an HTTP date (one in the past means "now").
///
/// Never panics. Negative, `NaN`, infinite, empty or unparsable values give
/// `None` (the caller's own backoff applies); a huge number or a far-future
/// date gives [`MAX_RETRY_AFTER`].
///
/// ```
/// use elspeth_core::http::{MAX_RETRY_AFTER, parse_retry_after};
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// let now = UNIX_EPOCH + Duration::from_secs(784111777);
/// assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
/// assert_eq!(parse_retry_after("0.25", now), Some(Duration::from_millis(250)));
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now), Some(Duration::from_secs(3)));
/// assert_eq!(parse_retry_after("1e20", now), Some(MAX_RETRY_AFTER));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(secs) = value.parse::<f64>() {
        return capped_seconds(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// Parses Azure's `retry-after-ms` value (milliseconds, fractions
/// accepted), with the same rules as [`parse_retry_after`].
///
/// ```
/// use elspeth_core::http::parse_retry_after_ms;
/// use std::time::Duration;
/// assert_eq!(parse_retry_after_ms("250"), Some(Duration::from_millis(250)));
/// assert_eq!(parse_retry_after_ms("-5"), None);
/// ```
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    let ms = value.trim().parse::<f64>().ok()?;
    capped_seconds(ms / 1000.0)
}

/// The server's retry hint in `headers`: Azure's `retry-after-ms` when it
/// is valid, else `Retry-After`.
pub fn retry_hint(headers: &http::HeaderMap) -> Option<Duration> {
    if let Some(d) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after_ms)
    {
        return Some(d);
    }
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn now() -> SystemTime {
        httpdate::parse_http_date("Wed, 25 Nov 2026 12:00:00 GMT").unwrap()
    }

    #[test]
    fn integers_and_fractions() {
        assert_eq!(parse_retry_after("3", now()), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("0.05", now()),
            Some(Duration::from_millis(50))
        );
        assert_eq!(
            parse_retry_after("86400", now()),
            Some(Duration::from_secs(86400))
        );
    }

    #[test]
    fn negatives_garbage_and_empty_are_ignored() {
        for value in ["-1", "-0.5", "soon", "", "   ", "3 s", "0x10", "12abc"] {
            assert_eq!(parse_retry_after(value, now()), None, "{value:?}");
        }
    }

    #[test]
    fn non_finite_numbers_are_ignored() {
        for value in ["inf", "-inf", "infinity", "NaN", "nan"] {
            assert_eq!(parse_retry_after(value, now()), None, "{value:?}");
            assert_eq!(parse_retry_after_ms(value), None, "{value:?}");
        }
    }

    #[test]
    fn huge_numbers_are_capped_not_a_panic() {
        for value in [
            "1e20",
            "1e300",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999999999",
            "86401",
        ] {
            assert_eq!(
                parse_retry_after(value, now()),
                Some(MAX_RETRY_AFTER),
                "{value:?}"
            );
            assert_eq!(
                parse_retry_after_ms(value).map(|d| d <= MAX_RETRY_AFTER),
                Some(true)
            );
        }
        assert_eq!(parse_retry_after_ms("1e20"), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn http_dates_past_and_future() {
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 12:00:05 GMT", now()),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now()),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("Wed, 32 Nov 2026 12:00:00 GMT", now()),
            None
        );
    }

    #[test]
    fn headers_ms_then_seconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_hint(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_hint(&h), Some(Duration::from_millis(250)));
        h.insert("retry-after-ms", HeaderValue::from_static("garbage"));
        assert_eq!(retry_hint(&h), Some(Duration::from_secs(3)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("0.05"));
        assert_eq!(retry_hint(&h), Some(Duration::from_millis(50)));
        h.insert("retry-after", HeaderValue::from_static("-1"));
        assert_eq!(retry_hint(&h), None);
        h.insert("retry-after", HeaderValue::from_static("1e20"));
        assert_eq!(retry_hint(&h), Some(MAX_RETRY_AFTER));
    }

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
    fn llm_policy_hint_replaces_the_backoff_but_is_capped() {
        let p = RetryPolicy::new(3);
        assert_eq!(p.max_attempts(), 4);
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_millis(1))),
            Duration::from_millis(1)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(9999))),
            p.max_retry_after
        );
        assert_eq!(p.delay(1, Some(MAX_RETRY_AFTER)), p.max_retry_after);
    }

    #[test]
    fn exporter_policy_hint_is_a_floor() {
        let p = RetryPolicy {
            max_retries: 9,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(800),
            max_retry_after: Duration::from_secs(2),
            server_hint: ServerHint::AtLeast,
        };
        assert_eq!(p.max_attempts(), 10);
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
        // A hint shorter than the backoff does not shorten it.
        assert!(p.delay(4, Some(Duration::from_millis(1))) >= Duration::from_millis(400));
        assert_eq!(RetryPolicy::exporter().max_attempts(), 6);
    }
}
