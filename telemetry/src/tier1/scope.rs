//! How Tier 1 spans find their parents.
//!
//! A run has one `pipeline.run` span; each row is its own trace whose root
//! `pipeline.row` links to the run span; each LLM call's `llm.chat` is a
//! child of its row. The LLM clients that record calls sit several layers
//! below the stage that owns the row, so the row's span and the transform
//! running it travel in a task-local [`CallScope`], the way `tracing` keeps
//! its current span: the stage sets it around `Transform::process`
//! ([`CallScope::scope`]), [`Tier1::start_call`](super::Tier1::start_call)
//! reads it. Outside a scope a call span is a root of its own.
//!
//! Ids are chosen here rather than by each exporter's SDK so that every
//! exporter — and the row's Tier 2 trace in Langfuse or Application
//! Insights — uses the same trace id for the same row.

use std::future::Future;
use std::sync::Arc;

use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState};

use crate::record::{SpanId, TraceId};

/// The ids of a recorded span: what children and links point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanLink {
    /// The span's trace.
    pub trace_id: TraceId,
    /// The span itself.
    pub span_id: SpanId,
}

impl SpanLink {
    /// A new span in trace `trace_id`.
    pub fn new_in(trace_id: TraceId) -> Self {
        Self {
            trace_id,
            span_id: SpanId::random(),
        }
    }

    pub(super) fn span_context(self) -> SpanContext {
        SpanContext::new(
            opentelemetry::trace::TraceId::from_bytes(self.trace_id.0),
            opentelemetry::trace::SpanId::from_bytes(self.span_id.0),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        )
    }

    /// An OpenTelemetry context whose (remote) parent is this span.
    pub(super) fn as_parent(self) -> opentelemetry::Context {
        opentelemetry::Context::new().with_remote_span_context(self.span_context())
    }
}

/// What an external call made while processing a row belongs to.
#[derive(Debug, Clone)]
pub struct CallScope {
    /// The row's `pipeline.row` span (`None` when rows are not recorded:
    /// calls are then roots).
    pub row: Option<SpanLink>,
    /// The transform making the calls (`transforms[0] (azure_llm)`).
    pub transform: Arc<str>,
}

tokio::task_local! {
    static CURRENT: CallScope;
}

impl CallScope {
    /// Runs `f` with this scope current: Tier 1 call spans started inside
    /// it (on this task) are children of the row and carry the transform.
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }

    /// The scope of the running task, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }
}

std::thread_local! {
    static PRESET: std::cell::Cell<Option<SpanLink>> = const { std::cell::Cell::new(None) };
}

/// The exporters' id generator: hands out the ids [`with_ids`] preset on
/// this thread (so every exporter's copy of a span has the same ids),
/// random ones otherwise.
#[derive(Debug, Default)]
pub(super) struct PresetIds;

impl opentelemetry_sdk::trace::IdGenerator for PresetIds {
    fn new_trace_id(&self) -> opentelemetry::trace::TraceId {
        let id = PRESET
            .with(Cell::get)
            .map_or_else(TraceId::random, |l| l.trace_id);
        opentelemetry::trace::TraceId::from_bytes(id.0)
    }

    fn new_span_id(&self) -> opentelemetry::trace::SpanId {
        let id = PRESET
            .with(Cell::get)
            .map_or_else(SpanId::random, |l| l.span_id);
        opentelemetry::trace::SpanId::from_bytes(id.0)
    }
}

use std::cell::Cell;

/// Runs `start` (which starts spans synchronously) with `ids` preset for
/// [`PresetIds`].
pub(super) fn with_ids<R>(ids: SpanLink, start: impl FnOnce() -> R) -> R {
    let previous = PRESET.with(|p| p.replace(Some(ids)));
    let out = start();
    PRESET.with(|p| p.set(previous));
    out
}
