//! The parts of delivered spans kept for the recording threads to fill
//! again: generation parts (their box and buffers) and trace facts (their
//! `Arc` allocation, once no other span of the trace holds it).
//!
//! One pool per thread, with no lock: a delivered batch is handed back to
//! the next enqueue on a recording thread ([`keep`] runs there) and the
//! tracer on that thread takes from the same pool ([`generation`],
//! [`trace`]). Reusing them saves the recording thread a `malloc` + `free`
//! pair per part (and the free of memory another core touched last).

use std::cell::RefCell;
use std::sync::Arc;

use crate::record::{GenerationData, SpanRecord, TraceInfo};

/// Most parts of each kind kept per thread.
const MAX_KEPT: usize = 1024;

/// Boxed on purpose: the boxes themselves are reused (a span holds its
/// generation part boxed).
#[allow(clippy::vec_box)]
struct Pool {
    generations: Vec<Box<GenerationData>>,
    traces: Vec<Arc<TraceInfo>>,
}

std::thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            generations: Vec::new(),
            traces: Vec::new(),
        })
    };
}

/// Empties `batch` (its buffer is kept for the caller), keeping what can
/// be filled again and freeing the rest.
pub(super) fn keep(batch: &mut Vec<SpanRecord>) {
    let kept = POOL.try_with(|pool| {
        let Ok(mut pool) = pool.try_borrow_mut() else {
            return false;
        };
        for span in batch.drain(..) {
            let SpanRecord {
                mut trace,
                generation,
                ..
            } = span;
            if let Some(generation) = generation
                && pool.generations.len() < MAX_KEPT
            {
                pool.generations.push(generation);
            }
            // Unique once the trace's other spans were dropped (they are
            // in the same batch, or were freed before).
            if Arc::get_mut(&mut trace).is_some() && pool.traces.len() < MAX_KEPT {
                pool.traces.push(trace);
            }
        }
        true
    });
    if kept != Ok(true) {
        batch.clear();
    }
}

/// A generation part to fill again, if this thread has one.
pub(super) fn generation() -> Option<Box<GenerationData>> {
    POOL.try_with(|pool| pool.try_borrow_mut().ok()?.generations.pop())
        .ok()
        .flatten()
}

/// A trace's facts to fill again (held by nothing else), if this thread
/// has one.
pub(super) fn trace() -> Option<Arc<TraceInfo>> {
    POOL.try_with(|pool| pool.try_borrow_mut().ok()?.traces.pop())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::record::{ObservationKind, SpanId, SpanKind, SpanMetadata, SpanStatus, TraceId};

    fn span(trace: &Arc<TraceInfo>, generation: bool) -> SpanRecord {
        SpanRecord {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            parent_span_id: None,
            name: "x".into(),
            kind: SpanKind::Internal,
            observation: ObservationKind::Span,
            start: SystemTime::UNIX_EPOCH,
            end: SystemTime::UNIX_EPOCH,
            status: SpanStatus::Unset,
            trace: trace.clone(),
            metadata: SpanMetadata::new(),
            generation: generation.then(Box::default),
        }
    }

    #[test]
    fn keeps_generation_parts_and_traces_nothing_else_holds() {
        let shared = Arc::new(TraceInfo::default());
        let held = Arc::new(TraceInfo::default());
        let mut batch = vec![span(&shared, false), span(&shared, true), span(&held, true)];
        drop(shared);
        keep(&mut batch);
        assert!(batch.is_empty());
        // Two generation parts; one trace (`held` is still held here).
        assert!(generation().is_some() && generation().is_some());
        assert!(generation().is_none());
        let reused = trace().expect("the trace nothing else held");
        assert_eq!(Arc::strong_count(&reused), 1);
        assert!(!Arc::ptr_eq(&reused, &held));
        assert!(trace().is_none());
    }
}
