//! Where recorded spans go: the [`SpanSink`] trait and an in-memory sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::record::SpanRecord;

/// Counters of one exporter, reported by `close()` and the run summary.
///
/// Exact: every recorded span is in exactly one state, so
/// `sent + dropped + failed + pending + kept == recorded`
/// ([`is_exact`](Self::is_exact)).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportSummary {
    /// Exporter label, e.g. `langfuse https://cloud.langfuse.com`. Never a secret.
    pub exporter: String,
    /// Spans handed to the exporter (sampled-out traces are never recorded).
    pub recorded: u64,
    /// Spans the backend accepted.
    pub sent: u64,
    /// Spans dropped before sending (queue full, or recorded after the
    /// exporter closed).
    pub dropped: u64,
    /// Spans given up on after retries, or rejected by the backend.
    pub failed: u64,
    /// Spans queued or in flight when the summary was taken (at exit: a
    /// request still unanswered when the process stopped waiting).
    pub pending: u64,
    /// Spans not delivered in time and kept for `elspeth traces replay`.
    pub kept: u64,
}

impl ExportSummary {
    /// Whether the states add up to what was recorded.
    pub fn is_exact(&self) -> bool {
        self.sent + self.dropped + self.failed + self.pending + self.kept == self.recorded
    }

    /// Spans recorded and not (yet) accepted by the backend.
    pub fn unsent(&self) -> u64 {
        self.recorded.saturating_sub(self.sent)
    }
}

/// The boxed future of object-safe async methods (`elspeth-core`'s one).
pub use elspeth_core::BoxFuture;

/// Receives finished spans. Implementations must make [`enqueue`](Self::enqueue)
/// cheap and non-blocking (no I/O, no lock held across an `.await`): it is on
/// the pipeline's hot path.
pub trait SpanSink: Send + Sync + 'static {
    /// Label for logs and summaries (never contains a secret).
    fn label(&self) -> String;
    /// Takes one finished span.
    fn enqueue(&self, span: SpanRecord);
    /// Sends what is queued, waiting at most `deadline`.
    fn flush(&self, deadline: Duration) -> BoxFuture<'_, ExportSummary>;
    /// Current counters.
    fn summary(&self) -> ExportSummary;
    /// Final flush at the end of a run: sends what it can within `deadline`,
    /// then gives up on the rest (counted as failed) and stops. Default: a
    /// flush.
    fn shutdown(&self, deadline: Duration) -> BoxFuture<'_, ExportSummary> {
        self.flush(deadline)
    }
    /// The generation part of a span this sink is done with, for the tracer
    /// to fill again instead of allocating a new one (its box and its
    /// buffers: prompt, reply, response id, finish reasons). Default: none.
    fn recycled_generation(&self) -> Option<Box<crate::record::GenerationData>> {
        None
    }
    /// The facts of a trace this sink is done with (no span holds them any
    /// more), for the tracer to fill again instead of allocating new ones.
    /// Default: none.
    fn recycled_trace(&self) -> Option<Arc<crate::record::TraceInfo>> {
        None
    }
}

/// Keeps every span in memory: for tests and for `--dry-run`.
///
/// ```
/// use elspeth_telemetry::sink::{InMemorySink, SpanSink};
/// let sink = InMemorySink::new();
/// assert!(sink.spans().is_empty());
/// ```
#[derive(Debug, Default, Clone)]
pub struct InMemorySink {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
}

impl InMemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the spans received so far, in end order.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Removes and returns the spans received so far.
    pub fn take(&self) -> Vec<SpanRecord> {
        std::mem::take(&mut *self.spans.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl SpanSink for InMemorySink {
    fn label(&self) -> String {
        "in-memory".into()
    }

    fn enqueue(&self, span: SpanRecord) {
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(span);
    }

    fn flush(&self, _deadline: Duration) -> BoxFuture<'_, ExportSummary> {
        Box::pin(async move { self.summary() })
    }

    fn summary(&self) -> ExportSummary {
        let n = self.spans.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        ExportSummary {
            exporter: self.label(),
            recorded: n,
            sent: n,
            ..Default::default()
        }
    }
}
