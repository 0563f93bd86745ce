//! What a mock keeps of what it received, for a test to inspect.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::otlp::{DecodedSpan, RecordedRequest, lock};

/// Received items in arrival order: all of them (the default, what a test
/// wants), or only the last `keep` ([`keep_last`](Self::keep_last)), so a
/// long-running `elspeth mock-server` does not grow without bound.
pub(crate) struct Kept<T> {
    items: Mutex<VecDeque<T>>,
    keep: AtomicUsize,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
            keep: AtomicUsize::new(usize::MAX),
        }
    }
}

impl<T> Kept<T> {
    /// Keeps only the last `n` items from now on (older ones go at once).
    pub(crate) fn keep_last(&self, n: usize) {
        self.keep.store(n, Ordering::Relaxed);
        self.extend(std::iter::empty());
    }

    pub(crate) fn push(&self, item: T) {
        self.extend(std::iter::once(item));
    }

    pub(crate) fn extend(&self, new: impl IntoIterator<Item = T>) {
        let keep = self.keep.load(Ordering::Relaxed);
        let mut items = lock(&self.items);
        items.extend(new);
        let excess = items.len().saturating_sub(keep);
        // Dropped outside the lock.
        let old: Vec<T> = items.drain(..excess).collect();
        drop(items);
        drop(old);
    }

    /// Runs `f` over the kept items, in order.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&VecDeque<T>) -> R) -> R {
        f(&lock(&self.items))
    }

    pub(crate) fn clear(&self) {
        lock(&self.items).clear();
    }
}

impl<T: Clone> Kept<T> {
    /// A copy of the kept items, in order.
    pub(crate) fn to_vec(&self) -> Vec<T> {
        self.with(|items| items.iter().cloned().collect())
    }
}

/// What a mock receiving traces (Langfuse, the OTLP collector) keeps: the
/// requests received, the accepted ones decoded, and a count of every
/// accepted span (kept or not).
#[derive(Default)]
pub(crate) struct SpanLog {
    /// Every request received (faulted and refused ones too).
    pub(crate) requests: Kept<RecordedRequest>,
    /// The accepted requests.
    pub(crate) accepted: Kept<ExportTraceServiceRequest>,
    span_total: AtomicUsize,
}

impl SpanLog {
    /// Keeps the last `n` requests (received, and accepted) only.
    pub(crate) fn keep_last(&self, n: usize) {
        self.requests.keep_last(n);
        self.accepted.keep_last(n);
    }

    /// Records an accepted request and counts its spans.
    pub(crate) fn accept(&self, request: ExportTraceServiceRequest) {
        let spans: usize = request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        self.span_total.fetch_add(spans, Ordering::Relaxed);
        self.accepted.push(request);
    }

    /// The kept accepted spans, in arrival order.
    pub(crate) fn spans(&self) -> Vec<DecodedSpan> {
        self.accepted.with(|requests| {
            requests
                .iter()
                .enumerate()
                .flat_map(|(i, r)| DecodedSpan::from_request(r, i))
                .collect()
        })
    }

    /// Every span accepted since the start (or the last `clear`).
    pub(crate) fn span_count(&self) -> usize {
        self.span_total.load(Ordering::Relaxed)
    }

    pub(crate) fn clear(&self) {
        self.requests.clear();
        self.accepted.clear();
        self.span_total.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_or_the_last_n() {
        let kept = Kept::default();
        kept.extend(0..5);
        assert_eq!(kept.to_vec(), vec![0, 1, 2, 3, 4]);
        kept.keep_last(3);
        assert_eq!(kept.to_vec(), vec![2, 3, 4]);
        kept.push(5);
        kept.extend([6, 7]);
        assert_eq!(kept.to_vec(), vec![5, 6, 7]);
        kept.keep_last(0);
        kept.push(8);
        assert!(kept.to_vec().is_empty());
    }
}
