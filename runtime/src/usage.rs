//! Token and cost counters shared by the transforms of a run, read by the
//! run summary and the progress display.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::llm::{LlmError, LlmResponse};

/// Counts LLM calls, tokens and cost. Lock-free; share it in an `Arc`.
///
/// ```
/// use elspeth_runtime::usage::UsageMeter;
/// use elspeth_runtime::llm::{LlmResponse, Usage};
/// let meter = UsageMeter::new();
/// meter.record(&LlmResponse { usage: Some(Usage { input: 10, output: 2, total: 12, ..Default::default() }), cost: Some(elspeth_runtime::llm::Cost::reported(0.5)), ..Default::default() });
/// let s = meter.snapshot();
/// assert_eq!((s.calls, s.tokens_in, s.tokens_out, s.cost_usd), (1, 10, 2, Some(0.5)));
/// ```
#[derive(Debug, Default)]
pub struct UsageMeter {
    calls: AtomicU64,
    failed_calls: AtomicU64,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
    cost_bits: AtomicU64,
    has_cost: AtomicBool,
    cached_calls: AtomicU64,
    saved_tokens: AtomicU64,
    saved_cost_bits: AtomicU64,
}

/// A copy of a [`UsageMeter`]'s counters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UsageSnapshot {
    /// Successful LLM calls (batch lines count as calls).
    pub calls: u64,
    /// Failed LLM calls (after retries).
    pub failed_calls: u64,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Cost in USD, when any backend reported one.
    pub cost_usd: Option<f64>,
    /// Calls served from the run store (not paid again).
    pub cached_calls: u64,
    /// Tokens (in + out) of the calls served from the store.
    pub saved_tokens: u64,
    /// Cost in USD of the calls served from the store, where it was known.
    pub saved_cost_usd: f64,
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
            self.has_cost.store(true, Ordering::Relaxed);
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
            Err(_) => {
                self.failed_calls.fetch_add(1, Ordering::Relaxed);
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

    /// The counters now.
    pub fn snapshot(&self) -> UsageSnapshot {
        UsageSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            failed_calls: self.failed_calls.load(Ordering::Relaxed),
            tokens_in: self.tokens_in.load(Ordering::Relaxed),
            tokens_out: self.tokens_out.load(Ordering::Relaxed),
            cost_usd: self
                .has_cost
                .load(Ordering::Relaxed)
                .then(|| f64::from_bits(self.cost_bits.load(Ordering::Relaxed))),
            cached_calls: self.cached_calls.load(Ordering::Relaxed),
            saved_tokens: self.saved_tokens.load(Ordering::Relaxed),
            saved_cost_usd: f64::from_bits(self.saved_cost_bits.load(Ordering::Relaxed)),
        }
    }
}

/// Adds `x` to the `f64` held as bits in `cell`.
fn add_f64(cell: &AtomicU64, x: f64) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
        Some((f64::from_bits(bits) + x).to_bits())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{LlmErrorKind, Usage};
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
                            usage: Some(Usage {
                                input: 3,
                                output: 1,
                                total: 4,
                                ..Default::default()
                            }),
                            cost: Some(crate::llm::Cost::reported(0.25)),
                            ..Default::default()
                        });
                    }
                    m.record_result(&Err(LlmError::new(LlmErrorKind::Server, "x")));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = meter.snapshot();
        assert_eq!(s.calls, 4000);
        assert_eq!(s.failed_calls, 4);
        assert_eq!(s.tokens_in, 12000);
        assert_eq!(s.tokens_out, 4000);
        assert_eq!(s.cost_usd, Some(1000.0));
        assert_eq!(UsageMeter::new().snapshot().cost_usd, None);
    }
}
