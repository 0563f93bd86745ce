//! LLM tracing for elspeth.
//!
//! - **Tier 2** (per transform): [`Tracer`] records one trace per row and one
//!   generation per LLM call; exporters send them to Langfuse
//!   ([`langfuse`], OTLP/HTTP protobuf) or Azure AI / Application Insights
//!   ([`appinsights`]). [`TracingRegistry`] builds each transform's tracer
//!   from its resolved [`TransformTracing`] and owns the exporters.
//! - **Tier 1** (per pipeline): [`tier1::Tier1`] exports one span per
//!   external call (latency, status, content hashes only) to any OTLP
//!   collector.
//!
//! This crate reads no pipeline YAML: the runtime resolves the `tracing:`
//! blocks and the `telemetry:` section into the types of [`settings`].
//! The LLM call vocabulary it records (`LlmRequest`, `LlmResponse`, ...)
//! lives in `elspeth-core`.
//!
//! Recording never blocks and never fails the pipeline: a span is built and
//! enqueued; export happens in the background ([`export`]).

#![warn(missing_docs)]

pub mod record;
pub mod sink;
pub mod spool;
pub mod tracer;

pub use sink::{ExportSummary, InMemorySink, SpanSink};
pub use tracer::{
    Generation, GenerationStart, JobTrace, RowGeneration, Trace, TraceStart, Tracer, TracerOptions,
};
pub mod registry;
pub mod settings;

pub mod appinsights;
mod attrs;
mod error;
pub mod export;
mod exporters;
mod genai;
mod gzip;
pub mod http;
pub mod langfuse;
mod pyjson;
mod text;
pub mod tier1;

pub use elspeth_core::TransformLabel;
pub use error::ExporterError;
pub use registry::{ProviderNotAccepted, TracingRegistry};
pub use settings::{
    AzureAiExport, ExporterSettings, Granularity, LangfuseExport, OtlpExporterSettings,
    Tier1Settings, TracingProvider, TransformTracing, UnresolvedSettings,
};
