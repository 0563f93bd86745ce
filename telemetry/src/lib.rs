//! LLM tracing for elspeth.
//!
//! - **Tier 2** (per transform): [`Tracer`] records one trace per row and one
//!   generation per LLM call; exporters send them to Langfuse (OTLP/HTTP) or
//!   Azure AI / Application Insights.
//! - **Tier 1** (per pipeline): ops spans to any OTLP collector.
//!
//! Recording never blocks and never fails the pipeline: a span is built and
//! enqueued; export happens in the background.

pub mod call;
pub mod record;
pub mod sink;
pub mod tracer;

pub use sink::{ExportSummary, InMemorySink, SpanSink};
pub use tracer::{
    Generation, GenerationStart, JobTrace, RowGeneration, Trace, TraceStart, Tracer, TracerOptions,
};
pub mod registry;

mod exporters;

pub use registry::{ProviderNotAccepted, TracingRegistry, TransformLabel};
