//! The export machinery every Tier 2 exporter runs on: it never hurts the
//! pipeline.
//!
//! - **Recording is an enqueue.** [`Exporter::enqueue`](crate::sink::SpanSink::enqueue)
//!   pushes the span on a bounded queue behind a `std::sync::Mutex` held for
//!   a `VecDeque` push (no I/O, no `.await`, no allocation beyond the queue's
//!   own growth up to `max_queue`). When the queue is full the **oldest** span
//!   is dropped and counted.
//! - **Export runs in the background**: one worker task per exporter takes
//!   batches (`batch_size` spans, or whatever is queued once `interval` has
//!   passed or a flush is waiting) and hands each to a delivery task (at most
//!   `max_in_flight` at once). A delivered batch is handed back to be
//!   freed by the next enqueue, on a recording thread (whose allocations
//!   it holds), its generation parts and trace facts kept in that thread's
//!   pool for the tracers to fill again
//!   ([`SpanSink::recycled_generation`](crate::sink::SpanSink::recycled_generation),
//!   [`SpanSink::recycled_trace`](crate::sink::SpanSink::recycled_trace)).
//!   Memory stays bounded by `max_queue + (max_in_flight + 4) × batch_size`
//!   spans.
//! - **Delivery** ([`Transport`] per backend) retries 429 / 5xx / timeouts /
//!   connection errors with exponential backoff and jitter, honouring
//!   `Retry-After`; 401/403 log one warning and disable the exporter (every
//!   later span is counted as failed, no request is made); 413 splits the
//!   batch in halves, and a single span that is still too large is re-sent
//!   with its attribute values truncated (and marked as truncated).
//! - **`flush(deadline)`** returns within its deadline, whatever the backend
//!   does (logging at debug level only); **`shutdown(deadline)`** flushes,
//!   then abandons what is left, counts it as failed and logs the
//!   exporter's one summary line (sent, dropped, failed, not sent yet, out
//!   of recorded).
//!
//! Counters are exact: the queue and the counters share one lock, so a
//! summary is a consistent snapshot in which
//! `recorded = sent + dropped + failed + pending + kept`.

mod recycle;
mod transport;
mod worker;

use std::time::Duration;

pub use crate::exporters::transport_for;
pub use elspeth_core::http::RetryPolicy;
pub use transport::{SendOutcome, Transport, classify_reqwest_error, classify_status};
pub use worker::{Exporter, NoRuntime};

/// Tuning of one exporter's queue, batching and retries.
///
/// ```
/// use elspeth_telemetry::export::ExportConfig;
/// let config = ExportConfig::default();
/// assert_eq!(config.max_queue, 10_000);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    /// Most spans waiting to be sent; when full the oldest is dropped and
    /// counted. Default 10,000.
    pub max_queue: usize,
    /// Most spans per request. Default 512.
    pub batch_size: usize,
    /// A partial batch is sent once this much time has passed (Langfuse:
    /// `flush_interval_ms`). Default 1 s.
    pub interval: Duration,
    /// Requests in flight at once. Default 2.
    pub max_in_flight: usize,
    /// Timeout of one request. Default 10 s.
    pub request_timeout: Duration,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            max_queue: 10_000,
            batch_size: 512,
            interval: Duration::from_secs(1),
            max_in_flight: 2,
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::exporter(),
        }
    }
}

impl ExportConfig {
    /// The config with every value at least 1 (a zero queue or batch would
    /// drop everything or spin).
    pub(crate) fn sanitized(mut self) -> Self {
        self.max_queue = self.max_queue.max(1);
        self.batch_size = self.batch_size.max(1);
        self.max_in_flight = self.max_in_flight.max(1);
        if self.interval.is_zero() {
            self.interval = Duration::from_millis(1);
        }
        if self.request_timeout.is_zero() {
            self.request_timeout = Duration::from_millis(1);
        }
        self
    }
}
