//! Tier 1 ops telemetry handle used by LLM clients to record external calls
//! (latency, status, content hashes only).
//!
//! The implementation lives in [`elspeth_telemetry::tier1`] (next to the
//! OTLP exporter it drives); this module re-exports it so transforms and
//! LLM clients use `elspeth_runtime::tier1::Tier1`.
//!
//! Built from the pipeline's `telemetry:` section by
//! [`tracing_settings::tier1`](crate::tracing_settings::tier1).
//!
//! ```no_run
//! # async fn demo(config: &elspeth_schema::config::TelemetryConfig) {
//! use elspeth_runtime::tier1::Tier1;
//! let tier1: Tier1 = elspeth_runtime::tracing_settings::tier1(config, &elspeth_schema::config::ProcessEnv);
//! let call = tier1.start_call("llm.chat", "myresource.openai.azure.com");
//! let request_body = br#"{"messages":[]}"#;
//! // ... send it, read the answer ...
//! call.succeed(200, request_body, br#"{"choices":[]}"#);
//! # }
//! ```

pub use elspeth_telemetry::tier1::{
    EndpointProblem, Tier1, Tier1Call, Tier1Error, Tier1ExporterError, Tier1Options, Tier1Outcome,
    Tier1Span, sha256_hex,
};
