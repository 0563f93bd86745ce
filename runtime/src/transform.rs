//! The transform lifecycle: `on_start` → `process` per row (or
//! `process_batch` per chunk) → `close`.
//!
//! Most transforms do not implement [`Transform`] by hand: they implement
//! [`LlmCall`](crate::llm::LlmCall) and put `#[llm_transform(tracing)]` on the
//! struct, which generates this impl with the tracing lifecycle around the
//! call.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use elspeth_telemetry::{ExportSummary, Tracer, TracingRegistry, TransformLabel};
use serde_json::{Value, json};

use elspeth_schema::config::{CallOptions, Env, EnvString, SecretRef};
use elspeth_schema::interpolate::EnvError;
use secrecy::SecretString;

use crate::clients::{ClientSettings, RetryPolicy};
use crate::llm::{LlmError, LlmErrorKind};
use crate::row::{BatchContext, Row, RowContext};
use crate::tier1::Tier1;
use crate::usage::UsageMeter;

/// The class of a row failure, written as the `kind` of the row's `error`
/// field (the strings are part of the output format: [`as_str`](Self::as_str)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RowErrorKind {
    /// The prompt template could not be rendered for the row (`template`).
    Template,
    /// The LLM call failed after its retries (`llm`).
    Llm,
    /// The reply could not be read (`parse`).
    Parse,
    /// The reply is JSON but does not match the transform's
    /// `response_format` JSON Schema (`schema`).
    Schema,
    /// The service's content filter refused the prompt or reply
    /// (`content_filter`).
    ContentFilter,
    /// The batch job failed or lost the row (`batch`).
    Batch,
    /// The run stopped before the row was processed (`cancelled`).
    Cancelled,
    /// The reply could not be committed to the run store (`store`).
    Store,
    /// The source line could not be read as a row (`source`).
    Source,
    /// A class of a custom transform's own (written as given).
    Other(String),
}

impl RowErrorKind {
    /// The kind as written in the row's `error` field.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Template => "template",
            Self::Llm => "llm",
            Self::Parse => "parse",
            Self::Schema => "schema",
            Self::ContentFilter => "content_filter",
            Self::Batch => "batch",
            Self::Cancelled => "cancelled",
            Self::Store => "store",
            Self::Source => "source",
            Self::Other(kind) => kind,
        }
    }
}

impl From<&str> for RowErrorKind {
    fn from(kind: &str) -> Self {
        match kind {
            "template" => Self::Template,
            "llm" => Self::Llm,
            "parse" => Self::Parse,
            "schema" => Self::Schema,
            "content_filter" => Self::ContentFilter,
            "batch" => Self::Batch,
            "cancelled" => Self::Cancelled,
            "store" => Self::Store,
            "source" => Self::Source,
            other => Self::Other(other.to_string()),
        }
    }
}

impl From<String> for RowErrorKind {
    fn from(kind: String) -> Self {
        Self::from(kind.as_str())
    }
}

impl From<LlmErrorKind> for RowErrorKind {
    fn from(kind: LlmErrorKind) -> Self {
        match kind {
            LlmErrorKind::ContentFilter => Self::ContentFilter,
            LlmErrorKind::MalformedResponse => Self::Parse,
            LlmErrorKind::Job => Self::Batch,
            LlmErrorKind::Cancelled => Self::Cancelled,
            LlmErrorKind::Store => Self::Store,
            _ => Self::Llm,
        }
    }
}

impl std::fmt::Display for RowErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for RowErrorKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RowErrorKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for RowErrorKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Why a row failed. It goes to the row's `error` field / the error sink;
/// the run goes on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RowError {
    /// Its class (`template`, `llm`, `parse`, `schema`, `content_filter`, `batch`, ...).
    pub kind: RowErrorKind,
    /// What went wrong (never contains a secret).
    pub message: String,
    /// HTTP status of the failing call, if any.
    pub http_status: Option<u16>,
}

impl RowError {
    /// A row error of `kind` (a [`RowErrorKind`], or its name).
    pub fn new(kind: impl Into<RowErrorKind>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
            http_status: None,
        }
    }

    /// The JSON written to the row's `error` field.
    pub fn to_json(&self, transform: &TransformLabel) -> Value {
        self.to_json_at(&transform.to_string())
    }

    /// [`to_json`](Self::to_json) for a failure outside a transform (the
    /// source).
    pub(crate) fn to_json_at(&self, transform: &str) -> Value {
        let mut v = json!({
            "transform": transform,
            "kind": self.kind,
            "message": self.message,
        });
        if let Some(status) = self.http_status {
            v["http_status"] = json!(status);
        }
        v
    }
}

impl From<LlmError> for RowError {
    fn from(e: LlmError) -> Self {
        Self {
            kind: e.kind.into(),
            message: e.message,
            http_status: e.http_status,
        }
    }
}

/// A transform could not start (the run does not start either).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The tracing config names a provider this transform excludes.
    #[error(transparent)]
    ProviderNotAccepted(#[from] elspeth_telemetry::ProviderNotAccepted),
    /// A `${VAR}` reference of one of the transform's fields does not
    /// resolve (the message says how to fix it).
    #[error("{transform}: {field}: {source}")]
    Env {
        /// The transform.
        transform: TransformLabel,
        /// The option, e.g. `api_key`.
        field: String,
        /// Every problem of the reference.
        #[source]
        source: EnvError,
    },
    /// Anything else (bad endpoint, ...).
    #[error("{transform}: {message}")]
    Other {
        /// The transform.
        transform: TransformLabel,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// The one context of a transform's build and start: its identity and
/// the run's shared services (environment, usage meter, retry backoff,
/// Tier 1 telemetry, tracing, run store, checkpoint folder).
///
/// ```
/// use std::sync::Arc;
/// use elspeth_runtime::StartContext;
/// use elspeth_schema::config::EnvString;
/// use elspeth_telemetry::{TracingRegistry, TransformLabel};
/// let env: std::collections::HashMap<String, String> =
///     [("BASE".to_string(), "http://127.0.0.1:1".to_string())].into();
/// let registry = Arc::new(TracingRegistry::new());
/// let mut ctx = StartContext::new(TransformLabel { index: 0, plugin: "mine".into() }, registry);
/// ctx.env = Arc::new(env);
/// assert_eq!(ctx.resolve("base_url", &EnvString::new("${BASE}/v1")).unwrap(), "http://127.0.0.1:1/v1");
/// let e = ctx.resolve("api_key", &EnvString::new("${KEY}")).unwrap_err();
/// assert!(e.to_string().starts_with("transforms[0] (mine): api_key: environment variable `KEY` is not set"));
/// assert_eq!(ctx.usage.snapshot().calls, 0);
/// ```
pub struct StartContext {
    /// The transform's position and plugin.
    pub label: TransformLabel,
    /// Builds tracers; owns the Tier 2 exporters.
    pub tracing: Arc<TracingRegistry>,
    /// Tier 1 telemetry (disabled when the pipeline has none).
    pub tier1: Tier1,
    /// Folder for checkpoints (the sink's folder), `None` when not running
    /// from a pipeline file.
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// The run store, when the run has one: batch transforms keep their
    /// checkpoints there instead of in `checkpoint_dir`.
    pub store: Option<Arc<crate::store::RunStore>>,
    /// Where `${VAR}` references are resolved (the run's environment, e.g.
    /// the mocks' overlay under `--with-mocks`).
    pub env: Arc<dyn Env + Send + Sync>,
    /// The transform's own counters (calls, failures, retries, tokens,
    /// cost, latency): it records its calls here
    /// ([`UsageMeter::record_result`]) to appear in the run summary.
    pub usage: Arc<UsageMeter>,
    /// Backoff before the first retry (doubled per retry).
    pub backoff_base: Duration,
    /// Longest backoff between retries.
    pub backoff_max: Duration,
}

impl std::fmt::Debug for StartContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartContext")
            .field("label", &self.label)
            .field("checkpoint_dir", &self.checkpoint_dir)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .finish_non_exhaustive()
    }
}

impl StartContext {
    /// A context with the given registry, no Tier 1 telemetry, the
    /// process environment, a fresh usage meter and the default backoff
    /// (0.5 s doubling up to 30 s).
    pub fn new(label: TransformLabel, tracing: Arc<TracingRegistry>) -> Self {
        let policy = RetryPolicy::default();
        Self {
            label,
            env: Arc::new(elspeth_schema::config::ProcessEnv),
            tracing,
            tier1: Tier1::disabled(),
            checkpoint_dir: None,
            store: None,
            usage: Arc::new(UsageMeter::new()),
            backoff_base: policy.base_delay,
            backoff_max: policy.max_delay,
        }
    }

    /// Client settings from a transform's call options: timeout, retries
    /// with this context's backoff, at most `pool_size` calls in flight,
    /// Tier 1 spans.
    pub fn client_settings(&self, call: &CallOptions) -> ClientSettings {
        ClientSettings {
            timeout: Duration::from_secs_f64(call.timeout_s.clamp(0.001, 86_400.0)),
            retry: RetryPolicy::new(call.max_retries)
                .with_backoff(self.backoff_base, self.backoff_max),
            max_in_flight: call.pool_size.max(1) as usize,
            tier1: self.tier1.clone(),
            usage: self.usage.clone(),
        }
    }

    /// `value` with its `${VAR}` references resolved against [`env`](Self::env);
    /// the error names the transform and `field` and says how to fix it.
    pub fn resolve(&self, field: &str, value: &EnvString) -> Result<String, StartError> {
        value
            .resolve(self.env.as_ref())
            .map_err(|source| self.env_error(field, source))
    }

    /// [`resolve`](Self::resolve) for a secret (the value never appears in
    /// an error).
    pub fn resolve_secret(
        &self,
        field: &str,
        value: &SecretRef,
    ) -> Result<SecretString, StartError> {
        value
            .resolve(self.env.as_ref())
            .map_err(|source| self.env_error(field, source))
    }

    /// The error of this transform's `field` not resolving.
    pub fn env_error(&self, field: &str, source: EnvError) -> StartError {
        StartError::Env {
            transform: self.label.clone(),
            field: field.to_string(),
            source,
        }
    }

    /// Any other start failure of this transform (a client that cannot be
    /// built, ...), prefixed with the transform's label.
    pub fn error(&self, message: impl std::fmt::Display) -> StartError {
        StartError::Other {
            transform: self.label.clone(),
            message: message.to_string(),
        }
    }
}

/// What `close` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseReport {
    /// The tracing exporter's counters after the final flush, if traced.
    pub tracing: Option<ExportSummary>,
}

/// A row handed to [`Transform::process_batch`], with its token id and index.
#[derive(Debug, Clone)]
pub struct BatchRow {
    /// The row.
    pub row: Row,
    /// Its token id.
    pub token_id: String,
    /// Its source index.
    pub index: u64,
}

/// One step of a pipeline. See the module docs for the lifecycle.
pub trait Transform: Send + Sync + 'static {
    /// Plugin name (e.g. `azure_llm`); traces are named `elspeth.<plugin>`.
    fn plugin(&self) -> &str;

    /// Most calls in flight at once (the runner's concurrency for this transform).
    fn concurrency(&self) -> usize {
        1
    }

    /// Rows per [`process_batch`](Self::process_batch) call; `None` = per row.
    fn batch_size(&self) -> Option<usize> {
        None
    }

    /// Prepares the transform and returns its tracer
    /// ([`Tracer::disabled`] when untraced).
    fn on_start(
        &mut self,
        ctx: &StartContext,
    ) -> impl Future<Output = Result<Tracer, StartError>> + Send;

    /// Processes one row.
    fn process(
        &self,
        row: Row,
        ctx: RowContext<'_>,
    ) -> impl Future<Output = Result<Row, RowError>> + Send;

    /// Processes a chunk of rows; one result per row, in order. The default
    /// processes them one by one.
    fn process_batch(
        &self,
        rows: Vec<BatchRow>,
        ctx: BatchContext<'_>,
    ) -> impl Future<Output = Vec<Result<Row, RowError>>> + Send {
        async move {
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(self.process(r.row, ctx.row(&r.token_id, r.index)).await);
            }
            out
        }
    }

    /// Flushes and releases resources. Gets back the tracer from `on_start`.
    fn close(&mut self, tracer: Tracer) -> impl Future<Output = CloseReport> + Send;
}

/// A boxed, `Send` future (`elspeth-core`'s one, shared with the telemetry
/// crate's sinks).
pub use elspeth_core::BoxFuture;

/// Object-safe form of [`Transform`], implemented for every `Transform`;
/// the runner holds `Box<dyn DynTransform>`.
pub trait DynTransform: Send + Sync + 'static {
    /// See [`Transform::plugin`].
    fn plugin(&self) -> &str;
    /// See [`Transform::concurrency`].
    fn concurrency(&self) -> usize;
    /// See [`Transform::batch_size`].
    fn batch_size(&self) -> Option<usize>;
    /// See [`Transform::on_start`].
    fn on_start<'a>(
        &'a mut self,
        ctx: &'a StartContext,
    ) -> BoxFuture<'a, Result<Tracer, StartError>>;
    /// See [`Transform::process`].
    fn process<'a>(&'a self, row: Row, ctx: RowContext<'a>)
    -> BoxFuture<'a, Result<Row, RowError>>;
    /// See [`Transform::process_batch`].
    fn process_batch<'a>(
        &'a self,
        rows: Vec<BatchRow>,
        ctx: BatchContext<'a>,
    ) -> BoxFuture<'a, Vec<Result<Row, RowError>>>;
    /// See [`Transform::close`].
    fn close(&mut self, tracer: Tracer) -> BoxFuture<'_, CloseReport>;
}

impl<T: Transform> DynTransform for T {
    fn plugin(&self) -> &str {
        Transform::plugin(self)
    }
    fn concurrency(&self) -> usize {
        Transform::concurrency(self)
    }
    fn batch_size(&self) -> Option<usize> {
        Transform::batch_size(self)
    }
    fn on_start<'a>(
        &'a mut self,
        ctx: &'a StartContext,
    ) -> BoxFuture<'a, Result<Tracer, StartError>> {
        Box::pin(Transform::on_start(self, ctx))
    }
    fn process<'a>(
        &'a self,
        row: Row,
        ctx: RowContext<'a>,
    ) -> BoxFuture<'a, Result<Row, RowError>> {
        Box::pin(Transform::process(self, row, ctx))
    }
    fn process_batch<'a>(
        &'a self,
        rows: Vec<BatchRow>,
        ctx: BatchContext<'a>,
    ) -> BoxFuture<'a, Vec<Result<Row, RowError>>> {
        Box::pin(Transform::process_batch(self, rows, ctx))
    }
    fn close(&mut self, tracer: Tracer) -> BoxFuture<'_, CloseReport> {
        Box::pin(Transform::close(self, tracer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn context(vars: &[(&str, &str)]) -> StartContext {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut ctx = StartContext::new(
            TransformLabel {
                index: 1,
                plugin: "mine".into(),
            },
            Arc::new(TracingRegistry::new()),
        );
        ctx.env = Arc::new(env);
        ctx
    }

    #[test]
    fn settings_follow_call_options_and_backoff() {
        let mut ctx = context(&[]);
        ctx.backoff_base = Duration::from_millis(5);
        let s = ctx.client_settings(&CallOptions {
            timeout_s: 2.5,
            max_retries: 7,
            pool_size: 33,
            ..Default::default()
        });
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert_eq!(s.retry.max_retries, 7);
        assert_eq!(s.max_in_flight, 33);
        assert_eq!(s.retry.base_delay, Duration::from_millis(5));
    }

    #[test]
    fn references_resolve_against_the_run_env_with_one_error_type() {
        let ctx = context(&[("KEY", "s3cret")]);
        let key = ctx
            .resolve_secret("api_key", &SecretRef::new("${KEY}"))
            .unwrap();
        assert_eq!(secrecy::ExposeSecret::expose_secret(&key), "s3cret");
        let e = ctx
            .resolve("base_url", &EnvString::new("${MISSING}"))
            .unwrap_err();
        let StartError::Env { field, source, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(field, "base_url");
        assert_eq!(source.problems.len(), 1);
        assert_eq!(
            e.to_string(),
            "transforms[1] (mine): base_url: environment variable `MISSING` is not set (set it (`export MISSING=...`) or give a default: `${MISSING:-default}`)"
        );
        assert_eq!(
            ctx.error("bad endpoint").to_string(),
            "transforms[1] (mine): bad endpoint"
        );
    }

    #[test]
    fn row_error_kinds_are_written_as_before() {
        for kind in [
            "template",
            "llm",
            "parse",
            "content_filter",
            "batch",
            "cancelled",
            "store",
            "source",
            "test",
        ] {
            let k = RowErrorKind::from(kind);
            assert_eq!(k.as_str(), kind);
            assert_eq!(serde_json::to_value(&k).unwrap(), kind);
        }
        assert_eq!(RowErrorKind::from("template"), RowErrorKind::Template);
        assert_eq!(
            RowErrorKind::from("mine"),
            RowErrorKind::Other("mine".into())
        );
        let e = RowError::from(LlmError::new(LlmErrorKind::ContentFilter, "no"));
        assert_eq!(e.kind, RowErrorKind::ContentFilter);
        let label = TransformLabel {
            index: 0,
            plugin: "p".into(),
        };
        assert_eq!(e.to_json(&label)["kind"], "content_filter");
    }
}
