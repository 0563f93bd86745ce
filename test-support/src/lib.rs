//! Fixtures shared by the workspace's tests, so each test crate does not
//! build its own copy. A dev-dependency only: nothing here ships.
//!
//! ```
//! let (registry, sink) = elspeth_test_support::memory_tracing();
//! assert!(sink.spans().is_empty());
//! # drop(registry);
//! ```

pub mod figures;

use std::sync::Arc;

use elspeth_telemetry::{InMemorySink, TracingRegistry};

/// A tracing registry that sends every transform's spans to one in-memory
/// sink, whatever provider its config names, and a handle on that sink to
/// read them back (`sink.spans()`, `sink.take()`).
pub fn memory_tracing() -> (Arc<TracingRegistry>, InMemorySink) {
    let sink = InMemorySink::new();
    let registry = Arc::new(TracingRegistry::fixed(Arc::new(sink.clone())));
    (registry, sink)
}

/// [`memory_tracing`]'s registry alone, for tests that never read the
/// spans back.
pub fn discard_tracing() -> Arc<TracingRegistry> {
    memory_tracing().0
}
