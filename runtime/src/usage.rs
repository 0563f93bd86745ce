//! What a transform's LLM calls used: calls, failures by kind, retries,
//! tokens, cost and latency. Each transform of a run has its own
//! [`UsageMeter`] (its clients record into it); the run summary, the
//! progress line and the budget read their snapshots.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::llm::{LlmError, LlmResponse};

/// Counts one transform's LLM calls. Lock-free on the success path; share
/// it in an `Arc`.
///
/// ```
/// use elspeth_runtime::usage::UsageMeter;
/// use elspeth_runtime::llm::{Cost, LlmResponse, Usage};
/// let meter = UsageMeter::new();
/// meter.record(&LlmResponse { usage: Some(Usage::new(10, 2)), cost: Some(Cost::reported(0.5)), ..Default::default() });
/// let s = meter.snapshot();
/// assert_eq!((s.calls, s.tokens_in, s.tokens_out, s.cost_usd), (1, 10, 2, Some(0.5)));
/// ```
#[derive(Debug, Default)]
pub struct UsageMeter {
    calls: AtomicU64,
    failed_calls: AtomicU64,
    retries: AtomicU64,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
    cost_bits: AtomicU64,
    priced_calls: AtomicU64,
    cached_calls: AtomicU64,
    saved_tokens: AtomicU64,
    saved_cost_bits: AtomicU64,
    /// Failed calls by `LlmErrorKind::as_str` (failures are rare: a lock
    /// is fine, and the kinds stay open to new variants).
    failures: Mutex<BTreeMap<&'static str, u64>>,
    latency: Histogram,
}

/// The few counters the progress line and the budget read after each row.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UsageTotals {
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Calls served from the run store.
    pub cached_calls: u64,
    /// Cost of the paid calls, `None` when some is unknown.
    pub cost_usd: Option<f64>,
}

/// Adds two transforms' totals (an unknown cost stays unknown).
impl std::ops::Add for UsageTotals {
    type Output = Self;

    fn add(self, other: UsageTotals) -> Self {
        Self {
            tokens_in: self.tokens_in + other.tokens_in,
            tokens_out: self.tokens_out + other.tokens_out,
            cached_calls: self.cached_calls + other.cached_calls,
            cost_usd: self.cost_usd.zip(other.cost_usd).map(|(a, b)| a + b),
        }
    }
}

/// A copy of a [`UsageMeter`]'s counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsageSnapshot {
    /// Successful LLM calls (batch lines count as calls).
    pub calls: u64,
    /// Failed LLM calls (after retries).
    pub failed_calls: u64,
    /// Failed calls by error kind (`rate_limited`, `server_error`, ...).
    pub failures: BTreeMap<&'static str, u64>,
    /// Attempts that were retried (429, 5xx, timeouts, broken connections).
    pub retries: u64,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Cost in USD of the successful calls that have a cost; `None` when
    /// none has one.
    pub cost_usd: Option<f64>,
    /// Successful calls with no cost (no price known, none reported).
    pub unpriced_calls: u64,
    /// Calls served from the run store (not paid again).
    pub cached_calls: u64,
    /// Tokens (in + out) of the calls served from the store.
    pub saved_tokens: u64,
    /// Cost in USD of the calls served from the store, where it was known.
    pub saved_cost_usd: f64,
    /// Latency of the calls (successful and failed, retries included).
    pub latency: LatencySnapshot,
}

impl UsageSnapshot {
    /// The cost of the successful calls when every one of them has one
    /// (no call: 0); `None` when some cost is unknown.
    pub fn known_cost(&self) -> Option<f64> {
        match (self.unpriced_calls, self.cost_usd) {
            (0, Some(c)) => Some(c),
            (0, None) => Some(0.0),
            _ => None,
        }
    }

    /// Adds `other`'s counters to these (the run's totals).
    pub fn add(&mut self, other: &UsageSnapshot) {
        self.calls += other.calls;
        self.failed_calls += other.failed_calls;
        for (k, n) in &other.failures {
            *self.failures.entry(k).or_default() += n;
        }
        self.retries += other.retries;
        self.tokens_in += other.tokens_in;
        self.tokens_out += other.tokens_out;
        self.cost_usd = match (self.cost_usd, other.cost_usd) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        self.unpriced_calls += other.unpriced_calls;
        self.cached_calls += other.cached_calls;
        self.saved_tokens += other.saved_tokens;
        self.saved_cost_usd += other.saved_cost_usd;
        self.latency.add(&other.latency);
    }
}

impl UsageMeter {
    /// Zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a successful call.
    pub fn record(&self, response: &LlmResponse) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(u) = response.usage {
            self.tokens_in.fetch_add(u.input, Ordering::Relaxed);
            self.tokens_out.fetch_add(u.output, Ordering::Relaxed);
        }
        if let Some(cost) = response.cost.map(|c| c.total).filter(|c| c.is_finite()) {
            self.priced_calls.fetch_add(1, Ordering::Relaxed);
            add_f64(&self.cost_bits, cost);
        }
    }

    /// Counts a call served from the run store: not paid, its tokens and
    /// cost counted as saved.
    pub fn record_cached(&self, response: &LlmResponse) {
        self.cached_calls.fetch_add(1, Ordering::Relaxed);
        if let Some(u) = response.usage {
            self.saved_tokens
                .fetch_add(u.input + u.output, Ordering::Relaxed);
        }
        if let Some(cost) = response.cost.map(|c| c.total).filter(|c| c.is_finite()) {
            add_f64(&self.saved_cost_bits, cost);
        }
    }

    /// Counts a call's outcome.
    pub fn record_result(&self, result: &Result<LlmResponse, LlmError>) {
        match result {
            Ok(r) => self.record(r),
            Err(e) => {
                self.failed_calls.fetch_add(1, Ordering::Relaxed);
                let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
                *failures.entry(e.kind.as_str()).or_default() += 1;
            }
        }
    }

    /// Records `result` ([`record_result`](Self::record_result)) and hands
    /// it back, so a call can be counted where it is made:
    /// `usage.recorded(client.chat(request).await)`.
    pub fn recorded(&self, result: Result<LlmResponse, LlmError>) -> Result<LlmResponse, LlmError> {
        self.record_result(&result);
        result
    }

    /// Counts one retried attempt (called by the clients' retry loop).
    pub fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the latency of one call (all its attempts).
    pub fn record_latency(&self, latency: Duration) {
        self.latency.record(latency);
    }

    /// The counters the progress line reads (cheap: no lock, no copy of
    /// the histogram).
    pub fn totals(&self) -> UsageTotals {
        let calls = self.calls.load(Ordering::Relaxed);
        let priced = self.priced_calls.load(Ordering::Relaxed);
        UsageTotals {
            tokens_in: self.tokens_in.load(Ordering::Relaxed),
            tokens_out: self.tokens_out.load(Ordering::Relaxed),
            cached_calls: self.cached_calls.load(Ordering::Relaxed),
            cost_usd: (priced == calls)
                .then(|| f64::from_bits(self.cost_bits.load(Ordering::Relaxed))),
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> UsageSnapshot {
        let calls = self.calls.load(Ordering::Relaxed);
        let priced = self.priced_calls.load(Ordering::Relaxed);
        UsageSnapshot {
            calls,
            failed_calls: self.failed_calls.load(Ordering::Relaxed),
            failures: self
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            retries: self.retries.load(Ordering::Relaxed),
            tokens_in: self.tokens_in.load(Ordering::Relaxed),
            tokens_out: self.tokens_out.load(Ordering::Relaxed),
            cost_usd: (priced > 0).then(|| f64::from_bits(self.cost_bits.load(Ordering::Relaxed))),
            unpriced_calls: calls.saturating_sub(priced),
            cached_calls: self.cached_calls.load(Ordering::Relaxed),
            saved_tokens: self.saved_tokens.load(Ordering::Relaxed),
            saved_cost_usd: f64::from_bits(self.saved_cost_bits.load(Ordering::Relaxed)),
            latency: self.latency.snapshot(),
        }
    }
}

/// Adds `x` to the `f64` held as bits in `cell`.
fn add_f64(cell: &AtomicU64, x: f64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
        Some((f64::from_bits(bits) + x).to_bits())
    });
}

/// Buckets per doubling of the latency: each bucket is 2^(1/8) ≈ 9% wide,
/// so a percentile read from the buckets is within 9% of the true one.
const PER_OCTAVE: f64 = 8.0;
/// Buckets: from 1 µs to 2^32 µs (71 minutes), beyond that the last one.
const BUCKETS: usize = 32 * PER_OCTAVE as usize + 1;

/// A lock-free latency histogram with logarithmic buckets.
#[derive(Debug)]
struct Histogram {
    counts: Box<[AtomicU64]>,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
        }
    }
}

/// The bucket of `us` microseconds.
fn bucket_of(us: u64) -> usize {
    if us <= 1 {
        return 0;
    }
    ((us as f64).log2() * PER_OCTAVE)
        .ceil()
        .min((BUCKETS - 1) as f64) as usize
}

/// The upper bound of bucket `i`, in microseconds.
fn bucket_upper_us(i: usize) -> f64 {
    (i as f64 / PER_OCTAVE).exp2()
}

impl Histogram {
    fn record(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            max_us: self.max_us.load(Ordering::Relaxed),
        }
    }
}

/// A copy of a latency histogram.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LatencySnapshot {
    /// Calls per bucket (empty: none recorded).
    counts: Vec<u64>,
    /// The slowest call, in microseconds.
    max_us: u64,
}

/// One bar of a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyBucket {
    /// Lower bound, milliseconds.
    pub from_ms: f64,
    /// Upper bound, milliseconds.
    pub to_ms: f64,
    /// Calls in it.
    pub calls: u64,
}

impl LatencySnapshot {
    /// Calls recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile (0..=1) in milliseconds, read from the buckets
    /// (within 9% above the true value, never above the maximum); `None`
    /// with no call.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_upper_us(i).min(self.max_us as f64) / 1000.0);
            }
        }
        Some(self.max_ms())
    }

    /// The slowest call, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.max_us as f64 / 1000.0
    }

    /// The histogram from its first to its last non-empty bucket, merged
    /// into at most `bars` bars of equal width on a log scale.
    pub fn bars(&self, bars: usize) -> Vec<LatencyBucket> {
        let Some(first) = self.counts.iter().position(|&c| c > 0) else {
            return Vec::new();
        };
        let last = self.counts.iter().rposition(|&c| c > 0).unwrap_or(first);
        let span = last - first + 1;
        let per_bar = span.div_ceil(bars.max(1));
        (first..=last)
            .step_by(per_bar)
            .map(|start| {
                let end = (start + per_bar - 1).min(last);
                LatencyBucket {
                    from_ms: if start == 0 {
                        0.0
                    } else {
                        bucket_upper_us(start - 1) / 1000.0
                    },
                    to_ms: bucket_upper_us(end) / 1000.0,
                    calls: self.counts[start..=end].iter().sum(),
                }
            })
            .collect()
    }

    fn add(&mut self, other: &LatencySnapshot) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.max_us = self.max_us.max(other.max_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Cost, LlmErrorKind, Usage};
    use std::sync::Arc;

    #[test]
    fn counts_from_many_threads() {
        let meter = Arc::new(UsageMeter::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = meter.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        m.record(&LlmResponse {
                            usage: Some(Usage::new(3, 1)),
                            cost: Some(Cost::reported(0.25)),
                            ..Default::default()
                        });
                    }
                    m.record_result(&Err(LlmError::new(LlmErrorKind::Server, "x")));
                    m.record_retry();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = meter.snapshot();
        assert_eq!(s.calls, 4000);
        assert_eq!(s.failed_calls, 4);
        assert_eq!(s.failures.get("server_error"), Some(&4));
        assert_eq!(s.retries, 4);
        assert_eq!(s.tokens_in, 12000);
        assert_eq!(s.tokens_out, 4000);
        assert_eq!(s.cost_usd, Some(1000.0));
        assert_eq!(s.known_cost(), Some(1000.0));
        assert_eq!(UsageMeter::new().snapshot().cost_usd, None);
        assert_eq!(UsageMeter::new().snapshot().known_cost(), Some(0.0));
    }

    #[test]
    fn a_call_without_cost_makes_the_cost_unknown_not_zero() {
        let meter = UsageMeter::new();
        meter.record(&LlmResponse {
            cost: Some(Cost::reported(0.5)),
            ..Default::default()
        });
        meter.record(&LlmResponse::default());
        let s = meter.snapshot();
        assert_eq!(
            (s.cost_usd, s.unpriced_calls, s.known_cost()),
            (Some(0.5), 1, None)
        );
        let mut total = UsageSnapshot::default();
        total.add(&s);
        total.add(&s);
        assert_eq!(
            (total.calls, total.unpriced_calls, total.cost_usd),
            (4, 2, Some(1.0))
        );
    }

    #[test]
    fn latency_percentiles_are_within_a_bucket() {
        let meter = UsageMeter::new();
        for ms in 1..=100u64 {
            meter.record_latency(Duration::from_millis(ms));
        }
        let l = meter.snapshot().latency;
        assert_eq!(l.count(), 100);
        for (q, want) in [(0.5, 50.0), (0.95, 95.0), (0.99, 99.0)] {
            let got = l.quantile_ms(q).unwrap();
            assert!(got >= want && got <= want * 1.1, "p{q}: {got} for {want}");
        }
        assert_eq!(l.quantile_ms(1.0), Some(100.0));
        assert_eq!(l.max_ms(), 100.0);
        let bars = l.bars(12);
        assert!(bars.len() <= 12 && !bars.is_empty());
        assert_eq!(bars.iter().map(|b| b.calls).sum::<u64>(), 100);
        assert!(bars.windows(2).all(|w| w[0].to_ms <= w[1].from_ms + 1e-9));
        assert!(bars[0].from_ms <= 1.0 && bars.last().unwrap().to_ms >= 100.0);
        assert_eq!(LatencySnapshot::default().quantile_ms(0.5), None);
        assert!(LatencySnapshot::default().bars(10).is_empty());
    }
}
