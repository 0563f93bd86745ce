//! Items used by code that `#[llm_transform]` generates. Not a public API:
//! paths and signatures may change in any release.

pub use elspeth_schema::config::{TracingConfig, TracingProvider};
pub use elspeth_telemetry::{GenerationStart, TraceStart, Tracer, TransformLabel};

/// Gives the macro the tracing config held by a transform's field.
///
/// Implemented for `Option<TracingConfig>`, `TracingConfig` and every
/// built-in options type; implement it for your own config type (one line:
/// return `self.tracing.as_ref()`).
pub trait HasTracing {
    /// The tracing block, `None` when absent.
    fn tracing_config(&self) -> Option<&TracingConfig>;
}

impl HasTracing for Option<TracingConfig> {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        self.as_ref()
    }
}

impl HasTracing for TracingConfig {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        Some(self)
    }
}
