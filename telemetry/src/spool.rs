//! Where an exporter keeps what it could not deliver: a [`SpanSpool`].
//!
//! At shutdown, spans still queued, in flight, or given up on after their
//! retries (backend down, hung, slow; a SIGTERM cutting the flush short)
//! go to the exporter's spool instead of being lost; they count as `kept`
//! in its [`ExportSummary`](crate::ExportSummary). The runtime's run store
//! is the spool of `elspeth run`; `elspeth traces replay` sends them later.
//! Spans the backend refused for good (a 400, wrong keys) are not kept:
//! sending them again would fail the same way.

use crate::record::SpanRecord;

/// Why spans could not be kept (they are then counted as failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not keep spans for replay: {reason}")]
pub struct SpoolError {
    reason: String,
}

impl SpoolError {
    /// An error saying `reason` (never a secret).
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// Keeps undelivered spans for a later replay.
pub trait SpanSpool: Send + Sync + 'static {
    /// Keeps `spans` of the exporter labelled `exporter`, as many as the
    /// spool's cap allows; returns how many were kept (the rest are
    /// counted as failed, with a warning naming the cap). May block
    /// briefly (a local database write): it runs once, at shutdown.
    fn keep(&self, exporter: &str, spans: &[SpanRecord]) -> Result<usize, SpoolError>;

    /// The most spans the spool holds (for the warning when it is full).
    fn cap(&self) -> u64;
}
