//! The recording API used by transforms (and by `#[llm_transform]` code).
//!
//! A [`Tracer`] belongs to one transform. Per row it starts a [`Trace`]
//! (`elspeth.<plugin>`); each LLM call inside is a [`Generation`] (`llm_call`).
//! Finishing a span builds a [`SpanRecord`] and enqueues it on the tracer's
//! [`SpanSink`]: no I/O and no lock held across an `.await`.
//! A disabled tracer ([`Tracer::disabled`]) records nothing and allocates
//! nothing.
//!
//! ```
//! use elspeth_telemetry::{Tracer, TracerOptions, TraceStart, GenerationStart};
//! use elspeth_core::call::{GenAiSystem, LlmRequest, LlmResponse};
//! use elspeth_telemetry::sink::InMemorySink;
//! use std::sync::Arc;
//!
//! let sink = InMemorySink::new();
//! let tracer = Tracer::new(Arc::new(sink.clone()), TracerOptions::default());
//! let trace = tracer.start_trace(TraceStart {
//!     plugin: "azure_llm", token_id: "tok-1", model_key: "deployment", model: "gpt-4o",
//!     row: None,
//! });
//! let request = LlmRequest::user("gpt-4o", "Classify: hello");
//! let generation = trace.generation(GenerationStart::new(GenAiSystem::AzureOpenAi, &request));
//! generation.succeed(&LlmResponse { content: "positive".into(), ..Default::default() });
//! trace.end();
//! let spans = sink.spans();
//! assert_eq!(spans.len(), 2);
//! assert_eq!(spans[0].name, "llm_call");
//! assert_eq!(spans[1].name, "elspeth.azure_llm");
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use std::fmt;

use serde_json::Value;
use smallvec::smallvec;

use crate::record::{
    GenerationData, MetaValue, ObservationKind, SharedStr, SpanId, SpanKind, SpanMetadata,
    SpanRecord, SpanStatus, TraceId, TraceInfo,
};
use crate::sink::{ExportSummary, SpanSink};
use crate::text::Constant;
use elspeth_core::call::{GenAiSystem, LlmError, LlmRequest, LlmResponse};

/// Which tracing backend a transform sends its LLM traces to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TracingProvider {
    /// No tracing.
    None,
    /// Azure AI / Application Insights.
    AzureAi,
    /// Langfuse.
    Langfuse,
}

impl TracingProvider {
    /// The provider's name in the pipeline YAML (`none`, `azure_ai`,
    /// `langfuse`), also used in logs and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::AzureAi => "azure_ai",
            Self::Langfuse => "langfuse",
        }
    }
}

impl fmt::Display for TracingProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a tracer records.
#[derive(Debug, Clone)]
pub struct TracerOptions {
    /// Which provider the sink belongs to (for logs and checks).
    pub provider: TracingProvider,
    /// Record prompt and reply text. When false they are never stored.
    pub content_recording: bool,
    /// Fraction of traces kept, 0..=1: decided by the row's
    /// [`RowTrace::sample_point`] (a hash of the row's identity, so every
    /// run keeps the same rows), else by trace id.
    pub sample_rate: f64,
    /// Record a trace left out by sampling anyway when one of its calls
    /// fails (default true): failures are what people look for.
    pub trace_failures: bool,
}

impl Default for TracerOptions {
    fn default() -> Self {
        Self {
            provider: TracingProvider::None,
            content_recording: true,
            sample_rate: 1.0,
            trace_failures: true,
        }
    }
}

/// The trace a row's spans belong to, chosen once per row by the pipeline:
/// its Tier 2 trace and its Tier 1 `pipeline.row` trace share `trace_id`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowTrace {
    /// The row's trace id.
    pub trace_id: TraceId,
    /// The row's point in [0, 1), from a hash of its identity: the row is
    /// sampled in when it is below `sample_rate`.
    pub sample_point: f64,
    /// The shard of a sharded run (index, count): the trace's `shard`
    /// metadata (`"1/4"`).
    pub shard: Option<(u32, u32)>,
}

struct TracerInner {
    sink: Arc<dyn SpanSink>,
    options: TracerOptions,
    consts: Consts,
}

/// The values a tracer records on every span, interned once (see
/// [`Constant`]): recording them again costs no allocation.
#[derive(Debug, Default)]
struct Consts {
    /// `(plugin, elspeth.<plugin>)`.
    trace_name: std::sync::OnceLock<(SharedStr, SharedStr)>,
    plugin: Constant,
    model_key: Constant,
    model: Constant,
    request_model: Constant,
    response_model: Constant,
    server_address: Constant,
}

impl Consts {
    fn trace_name(&self, plugin: &str) -> SharedStr {
        let (usual, name) = self.trace_name.get_or_init(|| {
            (
                crate::text::intern(plugin),
                crate::text::intern(&trace_name(plugin)),
            )
        });
        if usual.as_str() == plugin {
            name.clone()
        } else {
            SharedStr::from(trace_name(plugin))
        }
    }

    fn model_key(&self, key: &str) -> SharedStr {
        match key {
            "deployment" => SharedStr::from_static("deployment"),
            "model" => SharedStr::from_static("model"),
            other => self.model_key.get(other),
        }
    }
}

/// A finish reason, static when it is one of the usual ones.
fn finish_reason(reason: &str) -> SharedStr {
    match reason {
        "stop" => SharedStr::from_static("stop"),
        "length" => SharedStr::from_static("length"),
        "content_filter" => SharedStr::from_static("content_filter"),
        "tool_calls" => SharedStr::from_static("tool_calls"),
        "function_call" => SharedStr::from_static("function_call"),
        other => SharedStr::from(other),
    }
}

/// One transform's handle for recording traces. Cheap to clone.
#[derive(Clone, Default)]
pub struct Tracer {
    inner: Option<Arc<TracerInner>>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("Tracer(disabled)"),
            Some(i) => f
                .debug_struct("Tracer")
                .field("sink", &i.sink.label())
                .field("options", &i.options)
                .finish(),
        }
    }
}

/// What identifies a row's trace.
#[derive(Debug, Clone, Copy)]
pub struct TraceStart<'a> {
    /// Plugin name; the trace is named `elspeth.<plugin>`.
    pub plugin: &'a str,
    /// The row's token id.
    pub token_id: &'a str,
    /// `deployment` (Azure) or `model` (OpenRouter).
    pub model_key: &'a str,
    /// The deployment or model name.
    pub model: &'a str,
    /// The row's trace (id and sampling point); `None`: a random trace id,
    /// sampled by it.
    pub row: Option<RowTrace>,
}

impl Tracer {
    /// A tracer that records nothing.
    pub const fn disabled() -> Self {
        Self { inner: None }
    }

    /// A tracer that sends finished spans to `sink`.
    pub fn new(sink: Arc<dyn SpanSink>, options: TracerOptions) -> Self {
        Self {
            inner: Some(Arc::new(TracerInner {
                sink,
                options,
                consts: Consts::default(),
            })),
        }
    }

    /// Whether this tracer records anything.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The provider, `none` when disabled.
    pub fn provider(&self) -> TracingProvider {
        self.inner
            .as_ref()
            .map_or(TracingProvider::None, |i| i.options.provider)
    }

    /// Whether prompt and reply text are recorded.
    pub fn content_recording(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|i| i.options.content_recording)
    }

    /// Starts the trace of one row. Sampled out, it records nothing —
    /// unless `trace_failures` is on, in which case it is kept aside and
    /// recorded only if one of its generations fails.
    pub fn start_trace(&self, start: TraceStart<'_>) -> Trace {
        let Some(inner) = &self.inner else {
            return Trace { active: None };
        };
        let rate = inner.options.sample_rate;
        let (trace_id, sampled_in) = match start.row {
            Some(row) => (row.trace_id, sampled_point(row.sample_point, rate)),
            None => {
                let id = TraceId::random();
                (id, sampled(id, rate))
            }
        };
        if !sampled_in && !inner.options.trace_failures {
            return Trace { active: None };
        }
        let consts = &inner.consts;
        // The facts of a delivered trace are filled again when the sink has
        // some (no allocation); else a new one.
        let mut trace = inner.sink.recycled_trace().unwrap_or_default();
        let info = Arc::make_mut(&mut trace);
        info.name = consts.trace_name(start.plugin);
        info.metadata.clear();
        info.metadata.extend([
            (
                SharedStr::from_static("token_id"),
                MetaValue::Str(SharedStr::from(start.token_id)),
            ),
            (
                SharedStr::from_static("plugin"),
                MetaValue::Str(consts.plugin.get(start.plugin)),
            ),
            (
                consts.model_key(start.model_key),
                MetaValue::Str(consts.model.get(start.model)),
            ),
        ]);
        if let Some((index, count)) = start.row.and_then(|r| r.shard) {
            info.metadata.push((
                SharedStr::from_static("shard"),
                MetaValue::from(format!("{index}/{count}")),
            ));
        }
        let mut root = ActiveSpan::root(inner.clone(), trace, trace_id);
        if !sampled_in {
            root.kept = Some(Arc::new(AtomicBool::new(false)));
        }
        Trace { active: Some(root) }
    }

    /// Starts the trace of one batch job (`mode = job`): the root span is the
    /// job; [`JobTrace::record_row`] adds one generation per row.
    pub fn start_job(&self, plugin: &str, model_key: &str, model: &str, rows: usize) -> JobTrace {
        let Some(inner) = &self.inner else {
            return JobTrace { active: None };
        };
        let trace_id = TraceId::random();
        if !sampled(trace_id, inner.options.sample_rate) {
            return JobTrace { active: None };
        }
        let consts = &inner.consts;
        let info = TraceInfo {
            name: consts.trace_name(plugin),
            metadata: smallvec![
                (
                    SharedStr::from_static("plugin"),
                    MetaValue::Str(consts.plugin.get(plugin)),
                ),
                (
                    consts.model_key(model_key),
                    MetaValue::Str(consts.model.get(model)),
                ),
                (SharedStr::from_static("rows"), MetaValue::from(rows)),
            ],
        };
        let mut active = ActiveSpan::root(inner.clone(), Arc::new(info), trace_id);
        active
            .metadata
            .push((SharedStr::from_static("rows"), MetaValue::from(rows)));
        JobTrace {
            active: Some(active),
        }
    }

    /// Sends what is queued, waiting at most `deadline`. Disabled: nothing.
    pub async fn flush(&self, deadline: Duration) -> Option<ExportSummary> {
        match &self.inner {
            Some(i) => Some(i.sink.flush(deadline).await),
            None => None,
        }
    }

    /// The sink's counters, `None` when disabled.
    pub fn summary(&self) -> Option<ExportSummary> {
        self.inner.as_ref().map(|i| i.sink.summary())
    }
}

/// Deterministic sampling: keep the trace when the low 64 bits of its id,
/// as a fraction of 2^64, are below `rate`.
pub fn sampled(trace_id: TraceId, rate: f64) -> bool {
    let low = u64::from_be_bytes(trace_id.0[8..].try_into().expect("8 bytes"));
    sampled_point(low as f64 / (u64::MAX as f64 + 1.0), rate)
}

/// Whether a trace at `point` in [0, 1) is kept at `rate`.
pub fn sampled_point(point: f64, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 || rate.is_nan() {
        return false;
    }
    point < rate
}

/// The clock spans are timed by: one monotonic read per time point, the
/// wall-clock time derived from a per-thread anchor (a `SystemTime` read
/// with its `Instant`, taken again once it is a second old, so a clock
/// step shows within a second). Two spans of a trace + generation cost
/// four clock reads instead of six.
mod clock {
    use std::cell::Cell;
    use std::time::{Duration, Instant, SystemTime};

    /// How long an anchor is used before the wall clock is read again.
    const REANCHOR: Duration = Duration::from_secs(1);

    std::thread_local! {
        static ANCHOR: Cell<Option<(Instant, SystemTime)>> = const { Cell::new(None) };
    }

    /// Now, as the monotonic instant and the wall-clock time.
    pub(super) fn now() -> (Instant, SystemTime) {
        let instant = Instant::now();
        let anchored = ANCHOR.try_with(|anchor| match anchor.get() {
            Some((at, wall)) if instant.saturating_duration_since(at) < REANCHOR => {
                wall + instant.saturating_duration_since(at)
            }
            _ => {
                let wall = SystemTime::now();
                anchor.set(Some((instant, wall)));
                wall
            }
        });
        (instant, anchored.unwrap_or_else(|_| SystemTime::now()))
    }
}

/// A span being recorded; finished (recorded) when dropped.
struct ActiveSpan {
    tracer: Arc<TracerInner>,
    /// Moved into the record when the span ends (always `Some` before).
    trace: Option<Arc<TraceInfo>>,
    trace_id: TraceId,
    span_id: SpanId,
    parent: Option<SpanId>,
    name: &'static str,
    kind: SpanKind,
    observation: ObservationKind,
    start: SystemTime,
    started: Instant,
    status: SpanStatus,
    metadata: SpanMetadata,
    generation: Option<Box<GenerationData>>,
    /// Explicit end time (batch rows are timed by the job, not by us).
    end: Option<SystemTime>,
    /// Set on a trace sampled out but kept aside: recorded only once a
    /// generation of it failed (the flag, shared by the trace's spans).
    kept: Option<Arc<AtomicBool>>,
}

impl ActiveSpan {
    fn root(tracer: Arc<TracerInner>, trace: Arc<TraceInfo>, trace_id: TraceId) -> Self {
        let (started, start) = clock::now();
        Self {
            tracer,
            trace: Some(trace),
            trace_id,
            span_id: SpanId::random(),
            parent: None,
            name: "",
            kind: SpanKind::Internal,
            observation: ObservationKind::Span,
            start,
            started,
            status: SpanStatus::Unset,
            metadata: SpanMetadata::new(),
            generation: None,
            end: None,
            kept: None,
        }
    }

    fn child(&self, name: &'static str, kind: SpanKind, observation: ObservationKind) -> Self {
        let (started, start) = clock::now();
        Self {
            tracer: self.tracer.clone(),
            trace: self.trace.clone(),
            trace_id: self.trace_id,
            span_id: SpanId::random(),
            parent: Some(self.span_id),
            name,
            kind,
            observation,
            start,
            started,
            status: SpanStatus::Unset,
            metadata: SpanMetadata::new(),
            generation: None,
            end: None,
            kept: self.kept.clone(),
        }
    }
}

impl Drop for ActiveSpan {
    fn drop(&mut self) {
        if let Some(kept) = &self.kept
            && !kept.load(Ordering::Acquire)
        {
            return;
        }
        let Some(trace) = self.trace.take() else {
            return;
        };
        let end = self
            .end
            .unwrap_or_else(|| self.start + self.started.elapsed());
        let name = if self.name.is_empty() {
            trace.name.clone()
        } else {
            SharedStr::from_static(self.name)
        };
        let record = SpanRecord {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent,
            name,
            kind: self.kind,
            observation: self.observation,
            start: self.start,
            end,
            status: std::mem::replace(&mut self.status, SpanStatus::Unset),
            trace,
            metadata: std::mem::take(&mut self.metadata),
            generation: self.generation.take(),
        };
        self.tracer.sink.enqueue(record);
    }
}

/// The trace of one row. Recorded when [`end`](Self::end) is called or it is dropped.
pub struct Trace {
    active: Option<ActiveSpan>,
}

impl Trace {
    /// Whether this trace records (tracer enabled and sampled in).
    pub fn is_recording(&self) -> bool {
        self.active.is_some()
    }

    /// Starts a generation (`llm_call`) inside this trace.
    pub fn generation(&self, start: GenerationStart<'_>) -> Generation {
        let Some(parent) = &self.active else {
            return Generation { active: None };
        };
        let mut span = parent.child("llm_call", SpanKind::Client, ObservationKind::Generation);
        span.generation = Some(match parent.tracer.sink.recycled_generation() {
            Some(mut reused) => {
                start.fill(&mut reused, &parent.tracer);
                reused
            }
            None => Box::new(start.data(&parent.tracer)),
        });
        span.metadata = start
            .metadata
            .into_iter()
            .map(|(k, v)| (SharedStr::from(k), MetaValue::from(v)))
            .collect();
        Generation { active: Some(span) }
    }

    /// Ends the trace.
    pub fn end(self) {}
}

/// What starts a generation.
#[derive(Debug, Clone)]
pub struct GenerationStart<'a> {
    /// The LLM service.
    pub system: GenAiSystem,
    /// The request sent.
    pub request: &'a LlmRequest,
    /// Host of the service (`server.address`).
    pub server_address: Option<&'a str>,
    /// Extra observation metadata (e.g. `query` for multi-query).
    pub metadata: Vec<(String, Value)>,
}

impl<'a> GenerationStart<'a> {
    /// A generation for `request` with no extras.
    pub fn new(system: GenAiSystem, request: &'a LlmRequest) -> Self {
        Self {
            system,
            request,
            server_address: None,
            metadata: Vec::new(),
        }
    }

    /// Fills `g` (a generation part the sink is done with) as
    /// [`data`](Self::data) would build it, keeping its buffers.
    fn fill(&self, g: &mut GenerationData, tracer: &TracerInner) {
        let consts = &tracer.consts;
        let GenerationData {
            system,
            request_model,
            response_model,
            response_id,
            finish_reasons,
            input,
            output,
            usage,
            cost,
            temperature,
            max_tokens,
            error_type,
            http_status,
            server_address,
        } = g;
        *system = Some(self.system.clone());
        *request_model = consts.request_model.get(&self.request.model);
        *response_model = None;
        // The reply's buffers are kept (empty) for `apply_response` to copy
        // into; `fail` and a cancelled call set them back to `None`.
        if let Some(id) = response_id {
            id.clear();
        }
        finish_reasons.clear();
        if tracer.options.content_recording {
            let messages = input.get_or_insert_with(Vec::new);
            let source = &self.request.messages;
            messages.truncate(source.len());
            for (m, s) in messages.iter_mut().zip(source) {
                m.role = s.role;
                m.content.clone_from(&s.content);
            }
            let have = messages.len();
            messages.extend_from_slice(&source[have..]);
        } else {
            *input = None;
        }
        match output {
            Some(text) if tracer.options.content_recording => text.clear(),
            _ => *output = None,
        }
        *usage = None;
        *cost = None;
        *temperature = self.request.temperature;
        *max_tokens = self.request.max_tokens;
        *error_type = None;
        *http_status = None;
        *server_address = self.server_address.map(|h| consts.server_address.get(h));
    }

    fn data(&self, tracer: &TracerInner) -> GenerationData {
        let consts = &tracer.consts;
        GenerationData {
            system: Some(self.system.clone()),
            request_model: consts.request_model.get(&self.request.model),
            input: tracer
                .options
                .content_recording
                .then(|| self.request.messages.clone()),
            temperature: self.request.temperature,
            max_tokens: self.request.max_tokens,
            server_address: self.server_address.map(|h| consts.server_address.get(h)),
            ..Default::default()
        }
    }
}

/// One LLM call being recorded. Finish it with [`succeed`](Self::succeed) or
/// [`fail`](Self::fail); dropped unfinished, it is recorded as cancelled.
pub struct Generation {
    active: Option<ActiveSpan>,
}

impl Generation {
    /// Whether this generation records.
    pub fn is_recording(&self) -> bool {
        self.active.is_some()
    }

    /// Records a successful call.
    pub fn succeed(mut self, response: &LlmResponse) {
        if let Some(span) = &mut self.active {
            if let Some(g) = span.generation.as_deref_mut() {
                apply_response(g, response, &span.tracer);
            }
            finish_latency(span);
        }
    }

    /// Records a failed call. With content recording on, the error's
    /// message becomes the status message; with it off, only its class and
    /// HTTP status do (an error message may quote the prompt or the reply).
    pub fn fail(mut self, error: &LlmError) {
        if let Some(span) = &mut self.active {
            if let Some(kept) = &span.kept {
                kept.store(true, Ordering::Release);
            }
            if let Some(g) = span.generation.as_deref_mut() {
                g.error_type = Some(error.error_type());
                g.http_status = error.http_status;
                g.output = None;
                g.response_id = None;
            }
            span.status =
                SpanStatus::Error(status_message(error, span.tracer.options.content_recording));
            finish_latency(span);
        }
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if let Some(span) = &mut self.active
            && !span.metadata.iter().any(|(k, _)| k == "latency_ms")
        {
            // Dropped without succeed/fail: the call was cancelled.
            if let Some(g) = span.generation.as_deref_mut() {
                g.error_type = Some("cancelled".into());
                g.output = None;
                g.response_id = None;
            }
            span.status = SpanStatus::Error("cancelled before completion".into());
            finish_latency(span);
        }
    }
}

/// The status message of a failed call: the error's own message when
/// content is recorded, else a content-free `HTTP 500 (server_error)`.
fn status_message(error: &LlmError, content: bool) -> String {
    if content {
        return error.message.clone();
    }
    match error.http_status {
        Some(status) => format!("HTTP {status} ({})", error.kind.as_str()),
        None => error.kind.as_str().to_string(),
    }
}

fn apply_response(g: &mut GenerationData, response: &LlmResponse, tracer: &TracerInner) {
    g.response_model = response
        .model
        .as_deref()
        .map(|m| tracer.consts.response_model.get(m));
    // Copied into the buffers of a recycled generation part, if any.
    match (&mut g.response_id, &response.id) {
        (Some(buffer), Some(id)) => {
            buffer.clear();
            buffer.push_str(id);
        }
        (slot, id) => *slot = id.clone(),
    }
    g.finish_reasons.clear();
    g.finish_reasons
        .extend(response.finish_reason.as_deref().map(finish_reason));
    g.usage = response.usage;
    g.cost = response.cost;
    if tracer.options.content_recording {
        match &mut g.output {
            Some(buffer) => {
                buffer.clear();
                buffer.push_str(&response.content);
            }
            slot => *slot = Some(response.content.clone()),
        }
    } else {
        g.output = None;
    }
}

/// `elspeth.<plugin>` (without the formatting machinery: this is on the
/// hot path).
fn trace_name(plugin: &str) -> String {
    let mut name = String::with_capacity("elspeth.".len() + plugin.len());
    name.push_str("elspeth.");
    name.push_str(plugin);
    name
}

fn finish_latency(span: &mut ActiveSpan) {
    let elapsed = match span.end {
        Some(end) => end.duration_since(span.start).unwrap_or_default(),
        None => {
            // Read the clock once: the same instant ends the span.
            let elapsed = span.started.elapsed();
            span.end = Some(span.start + elapsed);
            elapsed
        }
    };
    let ms = (elapsed.as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
    span.metadata
        .push((SharedStr::from_static("latency_ms"), MetaValue::Float(ms)));
}

/// The trace of one batch job: the root span is the job, with one generation
/// per row rebuilt from the job's output.
pub struct JobTrace {
    active: Option<ActiveSpan>,
}

/// One row's result inside a batch job.
#[derive(Debug, Clone)]
pub struct RowGeneration<'a> {
    /// The LLM service.
    pub system: GenAiSystem,
    /// The row's token id.
    pub token_id: &'a str,
    /// The JSONL line's `custom_id`.
    pub custom_id: &'a str,
    /// The request in the batch file.
    pub request: &'a LlmRequest,
    /// The line's outcome.
    pub outcome: Result<&'a LlmResponse, &'a LlmError>,
    /// When the job started (rows are timed by the job).
    pub start: SystemTime,
    /// When the job's output was available.
    pub end: SystemTime,
}

impl JobTrace {
    /// Whether this job trace records.
    pub fn is_recording(&self) -> bool {
        self.active.is_some()
    }

    /// Adds the batch id to the job span's metadata.
    pub fn set_batch_id(&mut self, batch_id: &str) {
        if let Some(span) = &mut self.active {
            span.metadata.retain(|(k, _)| k != "batch_id");
            span.metadata.push((
                SharedStr::from_static("batch_id"),
                MetaValue::from(batch_id),
            ));
        }
    }

    /// Records one row's generation, timed by the job.
    pub fn record_row(&self, row: RowGeneration<'_>) {
        let Some(job) = &self.active else { return };
        let mut span = job.child("llm_call", SpanKind::Client, ObservationKind::Generation);
        span.start = row.start;
        span.end = Some(row.end);
        let start = GenerationStart::new(row.system.clone(), row.request);
        let mut data = start.data(&job.tracer);
        span.metadata = smallvec![
            (
                SharedStr::from_static("token_id"),
                MetaValue::from(row.token_id)
            ),
            (
                SharedStr::from_static("custom_id"),
                MetaValue::from(row.custom_id)
            ),
        ];
        match row.outcome {
            Ok(response) => apply_response(&mut data, response, &job.tracer),
            Err(error) => {
                data.error_type = Some(error.error_type());
                data.http_status = error.http_status;
                span.status =
                    SpanStatus::Error(status_message(error, job.tracer.options.content_recording));
            }
        }
        span.generation = Some(Box::new(data));
        finish_latency(&mut span);
    }

    /// Ends the job span with its final status (`completed`, `failed`,
    /// `expired`, ...); an error message marks the span as failed.
    pub fn finish(mut self, status: &str, error: Option<&str>) {
        if let Some(span) = &mut self.active {
            span.metadata
                .push((SharedStr::from_static("status"), MetaValue::from(status)));
            if let Some(message) = error {
                span.status = SpanStatus::Error(message.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::InMemorySink;
    use elspeth_core::call::{LlmErrorKind, Usage};

    fn tracer(content: bool, rate: f64) -> (Tracer, InMemorySink) {
        let sink = InMemorySink::new();
        let t = Tracer::new(
            Arc::new(sink.clone()),
            TracerOptions {
                provider: TracingProvider::Langfuse,
                content_recording: content,
                sample_rate: rate,
                trace_failures: true,
            },
        );
        (t, sink)
    }

    fn start() -> TraceStart<'static> {
        TraceStart {
            plugin: "azure_llm",
            token_id: "tok-1",
            model_key: "deployment",
            model: "gpt-4o",
            row: None,
        }
    }

    #[test]
    fn records_trace_and_generation() {
        let (t, sink) = tracer(true, 1.0);
        let trace = t.start_trace(start());
        let req = LlmRequest::user("gpt-4o", "Classify: hello world");
        trace
            .generation(GenerationStart::new(GenAiSystem::AzureOpenAi, &req))
            .succeed(&LlmResponse {
                content: "positive".into(),
                model: Some("gpt-4o-2024-08-06".into()),
                usage: Some(Usage {
                    input: 12,
                    output: 3,
                    total: 15,
                    ..Default::default()
                }),
                finish_reason: Some("stop".into()),
                id: Some("chatcmpl-1".into()),
                cost: None,
            });
        trace.end();
        let spans = sink.spans();
        let (generation, root) = (&spans[0], &spans[1]);
        assert_eq!(root.name, "elspeth.azure_llm");
        assert_eq!(root.parent_span_id, None);
        assert_eq!(generation.parent_span_id, Some(root.span_id));
        assert_eq!(generation.trace_id, root.trace_id);
        assert_eq!(generation.kind, SpanKind::Client);
        assert_eq!(generation.observation, ObservationKind::Generation);
        assert_eq!(
            root.trace.metadata[..],
            [
                ("token_id".into(), MetaValue::from("tok-1")),
                ("plugin".into(), MetaValue::from("azure_llm")),
                ("deployment".into(), MetaValue::from("gpt-4o")),
            ]
        );
        let g = generation.generation.as_deref().unwrap();
        assert_eq!(g.output.as_deref(), Some("positive"));
        assert_eq!(
            g.input.as_ref().unwrap()[0].content,
            "Classify: hello world"
        );
        assert_eq!(
            g.usage,
            Some(Usage {
                input: 12,
                output: 3,
                total: 15,
                ..Default::default()
            })
        );
        assert_eq!(generation.metadata[0].0, "latency_ms");
        assert_eq!(generation.status, SpanStatus::Unset);
    }

    #[test]
    fn failure_and_no_content() {
        let (t, sink) = tracer(false, 1.0);
        let trace = t.start_trace(start());
        let req = LlmRequest::user("gpt-4o", "secret prompt");
        trace
            .generation(GenerationStart::new(GenAiSystem::AzureOpenAi, &req))
            .fail(&LlmError::new(LlmErrorKind::Server, "HTTP 500").with_status(500));
        drop(trace);
        let spans = sink.spans();
        let g = spans[0].generation.as_deref().unwrap();
        // Content recording off: the status message is content-free.
        assert_eq!(
            spans[0].status,
            SpanStatus::Error("HTTP 500 (server_error)".into())
        );
        assert_eq!(g.error_type.as_deref(), Some("500"));
        assert!(g.input.is_none() && g.output.is_none());
    }

    #[test]
    fn dropped_generation_is_cancelled() {
        let (t, sink) = tracer(true, 1.0);
        let trace = t.start_trace(start());
        let req = LlmRequest::user("m", "p");
        drop(trace.generation(GenerationStart::new(GenAiSystem::OpenRouter, &req)));
        let spans = sink.spans();
        assert_eq!(
            spans[0].status,
            SpanStatus::Error("cancelled before completion".into())
        );
    }

    #[test]
    fn sampling_is_deterministic_and_close_to_rate() {
        let (t, sink) = tracer(true, 0.25);
        for _ in 0..4000 {
            t.start_trace(start()).end();
        }
        let kept = sink.spans().len();
        assert!((800..1200).contains(&kept), "kept {kept} of 4000 at 0.25");
        let id = TraceId::random();
        assert_eq!(sampled(id, 0.5), sampled(id, 0.5));
        let (t0, sink0) = tracer(true, 0.0);
        t0.start_trace(start()).end();
        assert!(sink0.spans().is_empty());
    }

    /// A sink handing out used generation parts full of stale values.
    struct Recycling(InMemorySink);

    impl SpanSink for Recycling {
        fn label(&self) -> String {
            "recycling".into()
        }
        fn enqueue(&self, span: SpanRecord) {
            self.0.enqueue(span);
        }
        fn flush(&self, deadline: Duration) -> crate::sink::BoxFuture<'_, ExportSummary> {
            self.0.flush(deadline)
        }
        fn summary(&self) -> ExportSummary {
            self.0.summary()
        }
        fn recycled_generation(&self) -> Option<Box<GenerationData>> {
            Some(Box::new(GenerationData {
                system: Some(GenAiSystem::OpenRouter),
                request_model: "old-model".into(),
                response_model: Some("old-answer".into()),
                response_id: Some("old-id".into()),
                finish_reasons: vec!["length".into(), "stop".into()],
                input: Some(vec![
                    elspeth_core::call::ChatMessage::system("old system"),
                    elspeth_core::call::ChatMessage::user("old prompt"),
                    elspeth_core::call::ChatMessage::user("older prompt"),
                ]),
                output: Some("old reply".into()),
                usage: Some(Usage::default()),
                cost: None,
                temperature: Some(0.9),
                max_tokens: Some(9),
                error_type: Some("old".into()),
                http_status: Some(599),
                server_address: Some("old.host".into()),
            }))
        }
        fn recycled_trace(&self) -> Option<Arc<TraceInfo>> {
            Some(Arc::new(TraceInfo {
                name: "elspeth.old_plugin".into(),
                metadata: smallvec![
                    ("token_id".into(), MetaValue::from("old-token")),
                    ("plugin".into(), MetaValue::from("old")),
                    ("model".into(), MetaValue::from("old-model")),
                    ("shard".into(), MetaValue::from("0/2")),
                    (
                        "extra".into(),
                        MetaValue::from("spilled past the inline four")
                    ),
                ],
            }))
        }
    }

    #[test]
    fn recycled_generation_parts_and_traces_record_the_same() {
        let req = LlmRequest::user("gpt-4o", "Classify: hello world");
        let ok = LlmResponse {
            content: "positive".into(),
            model: Some("gpt-4o-2024-08-06".into()),
            finish_reason: Some("stop".into()),
            id: Some("chatcmpl-1".into()),
            ..Default::default()
        };
        let no_id = LlmResponse {
            content: "negative".into(),
            ..Default::default()
        };
        let err = LlmError::new(LlmErrorKind::Server, "HTTP 500").with_status(500);
        for content in [true, false] {
            let record = |sink: Arc<dyn SpanSink>| {
                let t = Tracer::new(
                    sink,
                    TracerOptions {
                        provider: TracingProvider::Langfuse,
                        content_recording: content,
                        sample_rate: 1.0,
                        trace_failures: true,
                    },
                );
                let trace = t.start_trace(start());
                let start = || GenerationStart::new(GenAiSystem::AzureOpenAi, &req);
                trace.generation(start()).succeed(&ok);
                trace.generation(start()).succeed(&no_id);
                trace.generation(start()).fail(&err);
                drop(trace.generation(start()));
                trace.end();
            };
            let (fresh, reused) = (InMemorySink::new(), InMemorySink::new());
            record(Arc::new(fresh.clone()));
            record(Arc::new(Recycling(reused.clone())));
            let parts = |sink: &InMemorySink| -> Vec<Option<GenerationData>> {
                sink.spans()
                    .into_iter()
                    .map(|s| s.generation.map(|g| *g))
                    .collect()
            };
            assert_eq!(parts(&fresh), parts(&reused), "content recording {content}");
            let traces = |sink: &InMemorySink| -> Vec<(SharedStr, TraceInfo)> {
                sink.spans()
                    .into_iter()
                    .map(|s| (s.name, (*s.trace).clone()))
                    .collect()
            };
            assert_eq!(
                traces(&fresh),
                traces(&reused),
                "content recording {content}"
            );
        }
    }

    #[test]
    fn disabled_records_nothing() {
        let t = Tracer::disabled();
        let trace = t.start_trace(start());
        assert!(!trace.is_recording());
        let req = LlmRequest::user("m", "p");
        trace
            .generation(GenerationStart::new(GenAiSystem::OpenRouter, &req))
            .succeed(&LlmResponse::default());
        assert!(t.summary().is_none());
    }
}
