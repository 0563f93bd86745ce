//! Rows and per-row context.

use elspeth_telemetry::Tracer;

use crate::store::CallCache;

/// One row: a JSON object, fields in input order.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// What a transform knows about the row it is processing.
#[derive(Debug, Clone, Copy)]
pub struct RowContext<'a> {
    /// Stable id of the row within the run (`row-<index>` by default); it is
    /// the `token_id` of the row's traces.
    pub token_id: &'a str,
    /// 0-based position of the row in the source.
    pub index: u64,
    /// The transform's tracer (disabled when untraced).
    pub tracer: &'a Tracer,
    /// The transform's view of the run store: replies are looked up before
    /// a call is paid and committed before the row goes on. `None` when
    /// the run has no store (or the transform is not fingerprinted).
    pub cache: Option<&'a CallCache>,
}

impl<'a> RowContext<'a> {
    /// A context for row `index` with token id `token_id`.
    pub fn new(token_id: &'a str, index: u64, tracer: &'a Tracer) -> Self {
        Self {
            token_id,
            index,
            tracer,
            cache: None,
        }
    }

    /// The same context, with the run store's `cache`.
    pub fn with_cache(mut self, cache: Option<&'a CallCache>) -> Self {
        self.cache = cache;
        self
    }
}

/// What a transform knows about a chunk of rows handed to
/// [`Transform::process_batch`](crate::Transform::process_batch).
#[derive(Debug, Clone, Copy)]
pub struct BatchContext<'a> {
    /// The transform's tracer (disabled when untraced).
    pub tracer: &'a Tracer,
    /// The transform's view of the run store (see [`RowContext::cache`]).
    pub cache: Option<&'a CallCache>,
}

impl<'a> BatchContext<'a> {
    /// A context with `tracer` and no run store.
    pub fn new(tracer: &'a Tracer) -> Self {
        Self {
            tracer,
            cache: None,
        }
    }

    /// The same context, with the run store's `cache`.
    pub fn with_cache(mut self, cache: Option<&'a CallCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The context of one row of the chunk.
    pub fn row(&self, token_id: &'a str, index: u64) -> RowContext<'a> {
        RowContext::new(token_id, index, self.tracer).with_cache(self.cache)
    }
}
