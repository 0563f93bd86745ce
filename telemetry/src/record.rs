//! What a tracer records: provider-neutral, owned span records.
//!
//! Exporters translate these into their wire formats (OTLP for Langfuse,
//! Application Insights envelopes). Recording builds a record and enqueues it;
//! nothing here does I/O.
//!
//! The model is built to be cheap to record (about 7 heap allocations per
//! trace + generation built from scratch, most of them the call's own
//! text; none once an exporter hands delivered parts back to be filled
//! again): names, keys and
//! the values that are the same on every span of a tracer (plugin,
//! deployment, model, host) are [`SharedStr`]s — static, inline or interned,
//! never copied to the heap per span — and metadata lives in small inline
//! lists ([`TraceMetadata`], [`SpanMetadata`]) of [`MetaValue`]s.

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use elspeth_core::call::{ChatMessage, Cost, GenAiSystem, Usage};

pub use crate::text::{MetaValue, SharedStr};

/// One metadata entry: key and value.
pub type MetaEntry = (SharedStr, MetaValue);

/// Trace metadata in insertion order, up to 4 entries inline.
pub type TraceMetadata = SmallVec<[MetaEntry; 4]>;

/// A span's own (observation) metadata in insertion order, up to 2
/// entries inline (`latency_ms`, and `query` for a multi-query call).
pub type SpanMetadata = SmallVec<[MetaEntry; 2]>;

/// 16-byte trace id (W3C / OpenTelemetry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TraceId(pub [u8; 16]);

/// 8-byte span id (W3C / OpenTelemetry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// A random, non-zero id.
    pub fn random() -> Self {
        let v = fastrand::u128(1..);
        Self(v.to_be_bytes())
    }
    /// Lowercase hex, 32 characters.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl SpanId {
    /// A random, non-zero id.
    pub fn random() -> Self {
        Self(fastrand::u64(1..).to_be_bytes())
    }
    /// Lowercase hex, 16 characters.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Facts shared by every span of one trace (one row of one transform, or one
/// batch job).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceInfo {
    /// Trace name: `elspeth.<plugin>`.
    pub name: SharedStr,
    /// Trace metadata in insertion order: `token_id`, `plugin`, then
    /// `deployment` or `model` (and more for batch jobs).
    pub metadata: TraceMetadata,
}

/// OpenTelemetry span kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpanKind {
    /// Work inside the process (the per-row trace span, a batch job).
    Internal,
    /// A call to a remote service (the LLM call).
    Client,
}

/// Langfuse observation type of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObservationKind {
    /// A plain span.
    Span,
    /// An LLM generation.
    Generation,
}

/// Span outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpanStatus {
    /// Not set: success.
    Unset,
    /// Failed, with a description (e.g. `HTTP 500`).
    Error(String),
}

/// The LLM-specific part of a generation span.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GenerationData {
    /// Which LLM service.
    pub system: Option<GenAiSystem>,
    /// Model or deployment asked for (`gen_ai.request.model`).
    pub request_model: SharedStr,
    /// Model that answered (`gen_ai.response.model`).
    pub response_model: Option<SharedStr>,
    /// Provider response id (`gen_ai.response.id`).
    pub response_id: Option<String>,
    /// Finish reasons (`gen_ai.response.finish_reasons`).
    pub finish_reasons: Vec<SharedStr>,
    /// Prompt messages; `None` when content recording is off.
    pub input: Option<Vec<ChatMessage>>,
    /// Reply text; `None` when content recording is off or the call failed.
    pub output: Option<String>,
    /// Token usage.
    pub usage: Option<Usage>,
    /// What the call cost, when reported or priced.
    pub cost: Option<Cost>,
    /// Requested temperature.
    pub temperature: Option<f64>,
    /// Requested max tokens.
    pub max_tokens: Option<u32>,
    /// `error.type` of a failed call.
    pub error_type: Option<String>,
    /// HTTP status of a failed call.
    pub http_status: Option<u16>,
    /// Host of the LLM service (`server.address`).
    pub server_address: Option<SharedStr>,
}

/// One finished span, ready to export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// Trace it belongs to.
    pub trace_id: TraceId,
    /// Its own id.
    pub span_id: SpanId,
    /// Parent span, `None` for the trace's root.
    pub parent_span_id: Option<SpanId>,
    /// Observation name: `elspeth.<plugin>` for the root, `llm_call` for a
    /// generation, `batch_job` for a batch job.
    pub name: SharedStr,
    /// OpenTelemetry span kind.
    pub kind: SpanKind,
    /// Langfuse observation type.
    pub observation: ObservationKind,
    /// Start time.
    pub start: SystemTime,
    /// End time.
    pub end: SystemTime,
    /// Outcome.
    pub status: SpanStatus,
    /// The trace's shared facts.
    pub trace: Arc<TraceInfo>,
    /// Observation metadata (`latency_ms`, batch id, ...), insertion order.
    pub metadata: SpanMetadata,
    /// LLM details, for generations.
    pub generation: Option<Box<GenerationData>>,
}

impl SpanRecord {
    /// Duration, zero if the clock went backwards.
    pub fn duration(&self) -> std::time::Duration {
        self.end.duration_since(self.start).unwrap_or_default()
    }
}
