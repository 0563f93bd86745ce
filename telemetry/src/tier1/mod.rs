//! Tier 1 ops telemetry: the pipeline's `telemetry:` section, resolved by
//! the runtime into [`Tier1Settings`].
//!
//! One OpenTelemetry span per external call (LLM calls, batch API calls)
//! with the target host, latency (the span's duration), HTTP status, error
//! class and **SHA-256 hashes** of the request and response bodies — never
//! their content. Exported with `opentelemetry-otlp` (HTTP protobuf) to any
//! collector, through a tracer provider of its own: nothing is installed as
//! OpenTelemetry's global provider, and Tier 2 exporters (Langfuse,
//! Application Insights) are kept apart from it.
//!
//! **No recursion:** only code that calls [`Tier1::start_call`] records a
//! span. The LLM clients do; the tracing exporters (Tier 2 and this
//! exporter's own OTLP requests) never do, so exporting never produces
//! telemetry about itself.
//!
//! Granularity (`telemetry.granularity`): `lifecycle` records
//! [`Tier1::start_run`] spans only, `rows` adds [`Tier1::start_row`], `full`
//! (default) adds [`Tier1::start_call`].
//!
//! ```no_run
//! # async fn demo() {
//! use elspeth_telemetry::tier1::Tier1;
//! use elspeth_telemetry::{OtlpExporterSettings, Tier1Settings};
//! let settings = Tier1Settings {
//!     exporters: vec![Ok(OtlpExporterSettings::new("http://localhost:4318"))],
//!     ..Tier1Settings::default()
//! };
//! let tier1 = Tier1::from_settings(settings);
//! let call = tier1.start_call("llm.chat", "myresource.openai.azure.com");
//! // ... send the request ...
//! let (request_body, response_body) = (b"{..}".as_slice(), b"{..}".as_slice());
//! call.succeed(200, request_body, response_body);
//! tier1.shutdown(std::time::Duration::from_secs(10)).await;
//! # }
//! ```

mod bridge;
mod scope;

pub use scope::{CallScope, SpanLink};

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use elspeth_core::http::ClientBuildError;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
};
use secrecy::ExposeSecret;

use crate::settings::{Granularity, OtlpExporterSettings, Tier1Settings, UnresolvedSettings};
use crate::sink::ExportSummary;

/// Tuning of the Tier 1 exporters (defaults suit production; tests shorten
/// them).
#[derive(Debug, Clone, PartialEq)]
pub struct Tier1Options {
    /// Spans held waiting for export; beyond that new spans are dropped (by
    /// the OpenTelemetry batch processor) and counted. Default 10,000.
    pub max_queue: usize,
    /// Spans per request. Default 512.
    pub batch_size: usize,
    /// Export interval. Default 1 s.
    pub interval: Duration,
    /// Timeout of one export, retries included. Default 10 s.
    pub timeout: Duration,
}

impl Default for Tier1Options {
    fn default() -> Self {
        Self {
            max_queue: 10_000,
            batch_size: 512,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why Tier 1 telemetry could not be set up (the pipeline then runs
/// without it). Never contains a header value.
#[derive(Debug, thiserror::Error)]
pub enum Tier1Error {
    /// Enabled, but no exporter configured.
    #[error(
        "telemetry is enabled but lists no exporters; add `exporters: [{{ name: otlp, options: {{ endpoint: \"http://localhost:4318\" }} }}]`"
    )]
    NoExporters,
    /// Not called inside a Tokio runtime.
    #[error("Tier 1 telemetry needs a Tokio runtime, and none is running")]
    NoRuntime,
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    /// No exporter could be set up: each one's problem, in order.
    #[error("{}", join(.0))]
    Exporters(Vec<Tier1ExporterError>),
}

fn join(errors: &[Tier1ExporterError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why one Tier 1 exporter was skipped.
#[derive(Debug, thiserror::Error)]
pub enum Tier1ExporterError {
    /// A setting could not be resolved by the runtime (its message names
    /// the field).
    #[error(transparent)]
    Unresolved(#[from] UnresolvedSettings),
    /// The endpoint is not an http(s) URL.
    #[error("telemetry.exporters[{index}].options.endpoint: {problem}")]
    Endpoint {
        /// Position in `telemetry.exporters`.
        index: usize,
        /// What is wrong with it.
        problem: EndpointProblem,
    },
    /// A header name or value cannot be sent.
    #[error(
        "telemetry.exporters[{index}].options.headers.{name}: not a valid HTTP header name or value"
    )]
    Header {
        /// Position in `telemetry.exporters`.
        index: usize,
        /// The header's name.
        name: String,
    },
    /// The OpenTelemetry exporter refused to build.
    #[error("telemetry.exporters[{index}]: could not build the OTLP exporter: {reason}")]
    Build {
        /// Position in `telemetry.exporters`.
        index: usize,
        /// The OpenTelemetry SDK's message.
        reason: String,
    },
}

/// What is wrong with an OTLP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointProblem {
    /// Not a URL.
    #[error("`{endpoint}` is not a URL ({reason}); use e.g. http://localhost:4318")]
    NotAUrl {
        /// The endpoint as given.
        endpoint: String,
        /// The URL parser's complaint.
        reason: String,
    },
    /// Not http(s).
    #[error("`{endpoint}` must start with http:// or https://")]
    Scheme {
        /// The endpoint as given.
        endpoint: String,
    },
}

/// The Tier 1 handle LLM clients record external calls with. Cheap to
/// clone; [`Tier1::disabled`] records nothing and costs nothing.
#[derive(Clone, Default)]
pub struct Tier1 {
    inner: Option<Arc<Inner>>,
}

impl fmt::Debug for Tier1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("Tier1(disabled)"),
            Some(i) => f
                .debug_struct("Tier1")
                .field("granularity", &i.granularity)
                .field(
                    "exporters",
                    &i.pipelines
                        .iter()
                        .map(|p| p.label.as_str())
                        .collect::<Vec<_>>(),
                )
                .finish(),
        }
    }
}

struct Inner {
    granularity: Granularity,
    pipelines: Vec<Pipeline>,
}

struct Pipeline {
    label: String,
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    counters: Arc<Counters>,
}

impl Drop for Pipeline {
    /// Dropped without [`Tier1::shutdown`]: the SDK provider would shut down
    /// (blocking, up to seconds) on whatever thread drops its last
    /// reference, possibly a Tokio worker its exporter needs. Shut it down on
    /// a thread of its own instead (a no-op after an explicit shutdown).
    fn drop(&mut self) {
        let provider = self.provider.clone();
        let spawned = std::thread::Builder::new()
            .name("elspeth-tier1-shutdown".into())
            .spawn(move || {
                let _ = provider.shutdown_with_timeout(Duration::from_secs(5));
            });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "could not start the Tier 1 shutdown thread");
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    recorded: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
}

fn rank(g: Granularity) -> u8 {
    match g {
        Granularity::Lifecycle => 0,
        Granularity::Rows => 1,
        Granularity::Full => 2,
    }
}

impl Tier1 {
    /// A handle that records nothing.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Builds Tier 1 telemetry from resolved `settings`. Problems (a
    /// setting the runtime could not resolve, a bad endpoint, no Tokio
    /// runtime) log one warning each and leave the pipeline running without
    /// Tier 1 telemetry. Call it from inside the Tokio runtime.
    pub fn from_settings(settings: Tier1Settings) -> Self {
        Self::from_settings_with(settings, Tier1Options::default())
    }

    /// [`from_settings`](Self::from_settings) with explicit tuning.
    pub fn from_settings_with(settings: Tier1Settings, options: Tier1Options) -> Self {
        match Self::try_from_settings(settings, options) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "Tier 1 telemetry is not available; the pipeline runs without it");
                Self::disabled()
            }
        }
    }

    /// Like [`from_settings_with`](Self::from_settings_with) but returns
    /// the problem instead of logging it. An exporter that cannot be set up
    /// is an error only when no exporter could be.
    pub fn try_from_settings(
        settings: Tier1Settings,
        options: Tier1Options,
    ) -> Result<Self, Tier1Error> {
        if settings.exporters.is_empty() {
            return Err(Tier1Error::NoExporters);
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Tier1Error::NoRuntime)?;
        let client = crate::http::client()?;
        let mut pipelines = Vec::new();
        let mut errors = Vec::new();
        for (i, exporter) in settings.exporters.into_iter().enumerate() {
            let built = exporter
                .map_err(Tier1ExporterError::from)
                .and_then(|o| pipeline(i, &o, &options, &client, &handle));
            match built {
                Ok(p) => pipelines.push(p),
                Err(e) => {
                    tracing::warn!(exporter = i, error = %e, "Tier 1 exporter skipped");
                    errors.push(e);
                }
            }
        }
        if pipelines.is_empty() {
            return Err(Tier1Error::Exporters(errors));
        }
        Ok(Self {
            inner: Some(Arc::new(Inner {
                granularity: settings.granularity,
                pipelines,
            })),
        })
    }

    /// Whether anything is recorded.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The configured granularity, `None` when disabled.
    pub fn granularity(&self) -> Option<Granularity> {
        self.inner.as_ref().map(|i| i.granularity)
    }

    fn records(&self, level: Granularity) -> Option<&Inner> {
        self.inner
            .as_deref()
            .filter(|i| rank(i.granularity) >= rank(level))
    }

    fn start(
        &self,
        level: Granularity,
        name: Cow<'static, str>,
        kind: SpanKind,
        attrs: Vec<KeyValue>,
        ids: SpanIds,
    ) -> Vec<opentelemetry_sdk::trace::Span> {
        let Some(inner) = self.records(level) else {
            return Vec::new();
        };
        let parent = ids.parent.map_or_else(Context::new, |p| p.as_parent());
        let links: Vec<opentelemetry::trace::Link> = ids
            .links
            .iter()
            .map(|l| opentelemetry::trace::Link::with_context(l.span_context()))
            .collect();
        inner
            .pipelines
            .iter()
            .map(|p| {
                p.counters.recorded.fetch_add(1, Ordering::AcqRel);
                let builder = p
                    .tracer
                    .span_builder(name.clone())
                    .with_kind(kind.clone())
                    .with_attributes(attrs.clone())
                    .with_links(links.clone());
                scope::with_ids(ids.link, || builder.start_with_context(&p.tracer, &parent))
            })
            .collect()
    }

    /// The ids of a call span started now: a child of the current
    /// [`CallScope`]'s row, else a root; and the scope's transform label.
    fn call_ids() -> (SpanIds, Option<KeyValue>) {
        match CallScope::current() {
            Some(scope) => (
                SpanIds::child_of(scope.row),
                Some(KeyValue::new(
                    "elspeth.transform",
                    scope.transform.to_string(),
                )),
            ),
            None => (SpanIds::child_of(None), None),
        }
    }

    /// Starts a call span (granularity `full`) with the attributes `attrs`
    /// builds (only when it is recorded) and the current scope's.
    fn call(&self, name: Cow<'static, str>, attrs: impl FnOnce() -> Vec<KeyValue>) -> Tier1Call {
        if self.records(Granularity::Full).is_none() {
            return Tier1Call { spans: Vec::new() };
        }
        let (ids, transform) = Self::call_ids();
        let mut attrs = attrs();
        attrs.extend(transform);
        Tier1Call {
            spans: self.start(Granularity::Full, name, SpanKind::Client, attrs, ids),
        }
    }

    /// Starts the span of one external call (granularity `full`): `name` is
    /// e.g. `llm.chat` or `llm.batch.poll`, `host` the target host
    /// (`server.address`). Finish it with [`Tier1Call::succeed`],
    /// [`Tier1Call::fail`] or [`Tier1Call::finish`]; dropped unfinished it
    /// is recorded as cancelled.
    pub fn start_call(&self, name: impl Into<Cow<'static, str>>, host: &str) -> Tier1Call {
        self.call(name.into(), || {
            vec![KeyValue::new("server.address", host.to_string())]
        })
    }

    /// Starts the span of one HTTP call like [`start_call`](Self::start_call),
    /// with the OTel HTTP client attributes: `http.request.method`,
    /// `server.address`, `server.port` (explicit, else the scheme's default)
    /// and `url.full`. The URL is redacted first (query values and
    /// the userinfo password masked) since a signed endpoint carries its secret there.
    pub fn start_http_call(
        &self,
        name: impl Into<Cow<'static, str>>,
        method: &str,
        url: &reqwest::Url,
    ) -> Tier1Call {
        self.call(name.into(), || {
            let mut attrs = vec![
                KeyValue::new("http.request.method", method.to_string()),
                KeyValue::new(
                    "server.address",
                    url.host_str().unwrap_or_default().to_string(),
                ),
                KeyValue::new(
                    "url.full",
                    elspeth_core::redact::url(url.as_str()).into_owned(),
                ),
            ];
            if let Some(port) = url.port_or_known_default() {
                attrs.push(KeyValue::new("server.port", i64::from(port)));
            }
            attrs
        })
    }

    /// Records an LLM call served from the run store instead of paid (at
    /// granularity `full`): an `llm.chat` span with `elspeth.cache_hit =
    /// true` and the transform's label, and no HTTP attributes (no request
    /// was sent). Inside a [`CallScope`] it is a child of the row.
    pub fn record_cache_hit(&self, transform: &str) {
        if self.records(Granularity::Full).is_none() {
            return;
        }
        let (ids, _) = Self::call_ids();
        for mut span in self.start(
            Granularity::Full,
            Cow::Borrowed("llm.chat"),
            SpanKind::Client,
            vec![
                KeyValue::new("elspeth.transform", transform.to_string()),
                KeyValue::new("elspeth.cache_hit", true),
            ],
            ids,
        ) {
            span.end();
        }
    }

    /// Starts the span of a pipeline run (every granularity): a trace of
    /// its own, carrying the pipeline name and `run_id`. Rows link to it
    /// through [`Tier1Span::link`].
    /// `shard` (`"1/4"`) names the shard of a sharded run.
    pub fn start_run(&self, pipeline: &str, run_id: &str, shard: Option<&str>) -> Tier1Span {
        let ids = SpanIds::child_of(None);
        let mut attrs = vec![
            KeyValue::new("elspeth.pipeline", pipeline.to_string()),
            KeyValue::new("elspeth.run_id", run_id.to_string()),
        ];
        if let Some(shard) = shard {
            attrs.push(KeyValue::new("elspeth.shard", shard.to_string()));
        }
        let spans = self.start(
            Granularity::Lifecycle,
            Cow::Borrowed("pipeline.run"),
            SpanKind::Internal,
            attrs,
            ids.clone(),
        );
        Tier1Span::new(spans, ids.link)
    }

    /// Starts the span of one row (granularity `rows` or `full`): the root
    /// of the row's own trace `row.trace_id` (the id its Tier 2 trace
    /// uses too), linked to the run span. Run the row's transforms inside
    /// a [`CallScope`] naming it so their calls become its children.
    pub fn start_row(&self, row: RowSpanStart<'_>) -> Tier1Span {
        let ids = SpanIds {
            link: SpanLink::new_in(row.trace_id),
            parent: None,
            links: row.run.into_iter().collect(),
        };
        let mut attrs = vec![
            KeyValue::new("elspeth.pipeline", row.pipeline.to_string()),
            KeyValue::new("elspeth.run_id", row.run_id.to_string()),
            KeyValue::new("elspeth.row.index", row.index as i64),
            KeyValue::new("elspeth.token_id", row.token_id.to_string()),
        ];
        if let Some(shard) = row.shard {
            attrs.push(KeyValue::new("elspeth.shard", shard.to_string()));
        }
        let spans = self.start(
            Granularity::Rows,
            Cow::Borrowed("pipeline.row"),
            SpanKind::Internal,
            attrs,
            ids.clone(),
        );
        Tier1Span::new(spans, ids.link)
    }

    /// Counters per exporter so far (`pending` = recorded, not yet resolved).
    pub fn summary(&self) -> Vec<ExportSummary> {
        let Some(inner) = &self.inner else {
            return Vec::new();
        };
        inner
            .pipelines
            .iter()
            .map(|p| {
                let c = &p.counters;
                let recorded = c.recorded.load(Ordering::Acquire);
                let sent = c.sent.load(Ordering::Acquire);
                let failed = c.failed.load(Ordering::Acquire);
                ExportSummary {
                    exporter: p.label.clone(),
                    recorded,
                    sent,
                    dropped: 0,
                    failed,
                    pending: recorded.saturating_sub(sent + failed),
                    kept: 0,
                }
            })
            .collect()
    }

    /// Exports what is queued and stops, waiting at most `deadline`; logs
    /// and returns one summary per exporter. Spans the batch processor
    /// dropped (queue full) or could not export before the deadline are
    /// `dropped`; ones whose export failed are `failed`.
    pub async fn shutdown(&self, deadline: Duration) -> Vec<ExportSummary> {
        let Some(inner) = &self.inner else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(inner.pipelines.len());
        for p in &inner.pipelines {
            let provider = p.provider.clone();
            let done =
                tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(deadline));
            let timed_out = match tokio::time::timeout(deadline + Duration::from_millis(100), done)
                .await
            {
                Ok(Ok(Ok(()))) => false,
                Ok(Ok(Err(e))) => {
                    tracing::debug!(exporter = %p.label, error = %e, "Tier 1 shutdown reported a problem");
                    true
                }
                _ => true,
            };
            let c = &p.counters;
            let recorded = c.recorded.load(Ordering::Acquire);
            let sent = c.sent.load(Ordering::Acquire);
            let failed = c.failed.load(Ordering::Acquire);
            let lost = recorded.saturating_sub(sent + failed);
            let summary = ExportSummary {
                exporter: p.label.clone(),
                recorded,
                sent,
                dropped: lost,
                failed,
                pending: 0,
                kept: 0,
            };
            if summary.dropped > 0 || summary.failed > 0 {
                tracing::warn!(
                    exporter = %summary.exporter,
                    recorded, sent, dropped = lost, failed,
                    "Tier 1 telemetry summary for {}: {sent} spans sent, {lost} dropped{}, {failed} failed ({recorded} recorded)",
                    summary.exporter,
                    if timed_out { " (not exported before the deadline)" } else { "" }
                );
            } else {
                tracing::info!(
                    exporter = %summary.exporter,
                    recorded, sent, dropped = 0u64, failed = 0u64,
                    "Tier 1 telemetry summary for {}: {sent} spans sent, 0 dropped, 0 failed ({recorded} recorded)",
                    summary.exporter
                );
            }
            out.push(summary);
        }
        out
    }
}

fn pipeline(
    index: usize,
    o: &OtlpExporterSettings,
    options: &Tier1Options,
    client: &reqwest::Client,
    handle: &tokio::runtime::Handle,
) -> Result<Pipeline, Tier1ExporterError> {
    let url = traces_url(&o.endpoint)
        .map_err(|problem| Tier1ExporterError::Endpoint { index, problem })?;
    let mut headers = HashMap::new();
    for (name, value) in &o.headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || http::HeaderValue::from_str(value.expose_secret()).is_err()
        {
            return Err(Tier1ExporterError::Header {
                index,
                name: name.clone(),
            });
        }
        headers.insert(name.clone(), value.expose_secret().to_string());
    }
    let counters = Arc::new(Counters::default());
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(bridge::TokioBridge::new(
            client.clone(),
            handle.clone(),
            options.timeout,
        ))
        .with_endpoint(url.clone())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(options.timeout)
        .with_headers(headers)
        .build()
        .map_err(|e| Tier1ExporterError::Build {
            index,
            reason: e.to_string(),
        })?;
    let processor = BatchSpanProcessor::builder(Counting {
        inner: exporter,
        counters: counters.clone(),
    })
    .with_batch_config(
        BatchConfigBuilder::default()
            .with_max_queue_size(options.max_queue.max(1))
            .with_max_export_batch_size(options.batch_size.clamp(1, options.max_queue.max(1)))
            .with_scheduled_delay(options.interval)
            .build(),
    )
    .build();
    let provider = SdkTracerProvider::builder()
        .with_id_generator(scope::PresetIds)
        .with_resource(
            // `builder_empty` skips the env detectors (a run's resource must
            // not depend on OTEL_* variables), but that also drops the SDK's
            // own `telemetry.sdk.*` attributes, so that detector is added back.
            Resource::builder_empty()
                .with_detector(Box::new(
                    opentelemetry_sdk::resource::TelemetryResourceDetector,
                ))
                .with_service_name(o.service_name.clone())
                .with_attributes([KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))])
                .build(),
        )
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer_with_scope(
        opentelemetry::InstrumentationScope::builder("elspeth.tier1")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    );
    let host = reqwest::Url::parse(&url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_default();
    Ok(Pipeline {
        label: format!("tier1 otlp {host}"),
        provider,
        tracer,
        counters,
    })
}

/// `{endpoint}/v1/traces` (kept as is when it already ends with it).
fn traces_url(endpoint: &str) -> Result<String, EndpointProblem> {
    let base = endpoint.trim().trim_end_matches('/');
    // Errors show the endpoint masked (credentials, query values).
    let shown = || elspeth_core::redact::url(base).into_owned();
    let url = reqwest::Url::parse(base).map_err(|e| EndpointProblem::NotAUrl {
        endpoint: shown(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EndpointProblem::Scheme { endpoint: shown() });
    }
    if base.ends_with("/v1/traces") {
        Ok(base.to_string())
    } else {
        Ok(format!("{base}/v1/traces"))
    }
}

/// Counts what the OTLP exporter sent and what failed.
#[derive(Debug)]
struct Counting<E> {
    inner: E,
    counters: Arc<Counters>,
}

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => self.counters.sent.fetch_add(n, Ordering::AcqRel),
            Err(_) => self.counters.failed.fetch_add(n, Ordering::AcqRel),
        };
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What happened to an external call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tier1Outcome<'a> {
    /// HTTP status of the (last) answer, if there was one.
    pub status: Option<u16>,
    /// Error class (`error.type`) of a failed call, `None` on success.
    pub error_type: Option<&'a str>,
    /// The request body sent (hashed, never exported).
    pub request_body: &'a [u8],
    /// The response body received, if any (hashed, never exported).
    pub response_body: Option<&'a [u8]>,
}

/// One external call being recorded.
#[must_use = "finish the call with succeed(), fail() or finish()"]
pub struct Tier1Call {
    spans: Vec<opentelemetry_sdk::trace::Span>,
}

impl fmt::Debug for Tier1Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier1Call")
            .field("recording", &!self.spans.is_empty())
            .finish()
    }
}

impl Tier1Call {
    /// Whether this call is recorded (Tier 1 on, granularity `full`).
    pub fn is_recording(&self) -> bool {
        !self.spans.is_empty()
    }

    /// Records a successful call.
    pub fn succeed(self, status: u16, request_body: &[u8], response_body: &[u8]) {
        self.finish(Tier1Outcome {
            status: Some(status),
            error_type: None,
            request_body,
            response_body: Some(response_body),
        });
    }

    /// Records a failed call (`error_type` as in `LlmError::error_type`).
    pub fn fail(
        self,
        status: Option<u16>,
        error_type: &str,
        request_body: &[u8],
        response_body: Option<&[u8]>,
    ) {
        self.finish(Tier1Outcome {
            status,
            error_type: Some(error_type),
            request_body,
            response_body,
        });
    }

    /// Records the call's outcome: status, error class, body sizes and
    /// SHA-256 hashes (`elspeth.request.sha256`, `elspeth.response.sha256`).
    pub fn finish(mut self, outcome: Tier1Outcome<'_>) {
        if self.spans.is_empty() {
            return;
        }
        let mut attrs = vec![
            KeyValue::new("elspeth.cache_hit", false),
            KeyValue::new("elspeth.request.sha256", sha256_hex(outcome.request_body)),
            KeyValue::new("http.request.body.size", outcome.request_body.len() as i64),
        ];
        if let Some(body) = outcome.response_body {
            attrs.push(KeyValue::new("elspeth.response.sha256", sha256_hex(body)));
            attrs.push(KeyValue::new("http.response.body.size", body.len() as i64));
        }
        if let Some(status) = outcome.status {
            attrs.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if let Some(e) = outcome.error_type {
            attrs.push(KeyValue::new("error.type", e.to_string()));
        }
        for mut span in std::mem::take(&mut self.spans) {
            span.set_attributes(attrs.clone());
            if let Some(e) = outcome.error_type {
                span.set_status(Status::error(e.to_string()));
            }
            span.end();
        }
    }
}

impl Drop for Tier1Call {
    fn drop(&mut self) {
        for mut span in std::mem::take(&mut self.spans) {
            span.set_attribute(KeyValue::new("error.type", "cancelled"));
            span.set_status(Status::error("cancelled"));
            span.end();
        }
    }
}

/// A run or row span; recorded when [`end`](Self::end)ed or dropped.
pub struct Tier1Span {
    spans: Vec<opentelemetry_sdk::trace::Span>,
    link: Option<SpanLink>,
}

/// What identifies a row's span (see [`Tier1::start_row`]).
#[derive(Debug, Clone, Copy)]
pub struct RowSpanStart<'a> {
    /// The run's span, linked from the row's.
    pub run: Option<SpanLink>,
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// The run's id (as on `pipeline.run`).
    pub run_id: &'a str,
    /// 0-based position of the row in the source.
    pub index: u64,
    /// The row's token id (`row-<index>`).
    pub token_id: &'a str,
    /// The row's trace id, shared with its Tier 2 trace.
    pub trace_id: crate::record::TraceId,
    /// The shard of a sharded run (`"1/4"`).
    pub shard: Option<&'a str>,
}

/// The ids of a span about to start.
#[derive(Debug, Clone)]
struct SpanIds {
    link: SpanLink,
    parent: Option<SpanLink>,
    links: Vec<SpanLink>,
}

impl SpanIds {
    /// A child of `parent` (same trace), or the root of a new trace.
    fn child_of(parent: Option<SpanLink>) -> Self {
        let trace_id = parent.map_or_else(crate::record::TraceId::random, |p| p.trace_id);
        Self {
            link: SpanLink::new_in(trace_id),
            parent,
            links: Vec::new(),
        }
    }
}

impl fmt::Debug for Tier1Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier1Span")
            .field("recording", &!self.spans.is_empty())
            .finish()
    }
}

impl Tier1Span {
    fn new(spans: Vec<opentelemetry_sdk::trace::Span>, link: SpanLink) -> Self {
        let link = (!spans.is_empty()).then_some(link);
        Self { spans, link }
    }

    /// A span that records nothing.
    pub fn disabled() -> Self {
        Self {
            spans: Vec::new(),
            link: None,
        }
    }

    /// Whether this span is recorded.
    pub fn is_recording(&self) -> bool {
        !self.spans.is_empty()
    }

    /// The span's ids, for children and links (`None` when not recorded).
    pub fn link(&self) -> Option<SpanLink> {
        self.link
    }

    /// Marks the span failed with `error_type` and ends it.
    pub fn fail(mut self, error_type: &str) {
        for mut span in std::mem::take(&mut self.spans) {
            span.set_attribute(KeyValue::new("error.type", error_type.to_string()));
            span.set_status(Status::error(error_type.to_string()));
            span.end();
        }
    }

    /// Ends the span.
    pub fn end(self) {}
}

impl Drop for Tier1Span {
    fn drop(&mut self) {
        for mut span in std::mem::take(&mut self.spans) {
            span.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn traces_url_forms() {
        assert_eq!(
            traces_url("http://c:4318").unwrap(),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/").unwrap(),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/v1/traces").unwrap(),
            "http://c:4318/v1/traces"
        );
        assert!(traces_url("c:4318").is_err());
    }

    #[test]
    fn disabled_records_nothing() {
        let t = Tier1::disabled();
        let call = t.start_call("llm.chat", "h");
        assert!(!call.is_recording());
        call.succeed(200, b"a", b"b");
        assert!(t.summary().is_empty());
    }
}
