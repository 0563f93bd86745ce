//! The transform lifecycle: `on_start` → `process` per row (or
//! `process_batch` per chunk) → `close`.
//!
//! Most transforms do not implement [`Transform`] by hand: they implement
//! [`LlmCall`](crate::llm::LlmCall) and put `#[llm_transform(tracing)]` on the
//! struct, which generates this impl with the tracing lifecycle around the
//! call.

use std::future::Future;
use std::sync::Arc;

use elspeth_telemetry::{ExportSummary, Tracer, TracingRegistry, TransformLabel};
use serde_json::{Value, json};

use crate::row::{BatchContext, Row, RowContext};
use crate::tier1::Tier1;
use crate::usage::UsageMeter;
use elspeth_schema::config::Env;

/// Why a row failed. It goes to the row's `error` field / the error sink;
/// the run goes on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RowError {
    /// Short class: `template`, `llm`, `parse`, `content_filter`, `batch`, ...
    pub kind: String,
    /// What went wrong (never contains a secret).
    pub message: String,
    /// HTTP status of the failing call, if any.
    pub http_status: Option<u16>,
}

impl RowError {
    /// A row error of `kind`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
            http_status: None,
        }
    }

    /// The JSON written to the row's `error` field.
    pub fn to_json(&self, transform: &TransformLabel) -> Value {
        let mut v = json!({
            "transform": transform.to_string(),
            "kind": self.kind,
            "message": self.message,
        });
        if let Some(status) = self.http_status {
            v["http_status"] = json!(status);
        }
        v
    }
}

impl From<crate::llm::LlmError> for RowError {
    fn from(e: crate::llm::LlmError) -> Self {
        let kind = match e.kind {
            crate::llm::LlmErrorKind::ContentFilter => "content_filter",
            crate::llm::LlmErrorKind::MalformedResponse => "parse",
            crate::llm::LlmErrorKind::Job => "batch",
            crate::llm::LlmErrorKind::Cancelled => "cancelled",
            crate::llm::LlmErrorKind::Store => "store",
            _ => "llm",
        };
        Self {
            kind: kind.into(),
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
    /// Anything else (bad endpoint, unresolvable required secret, ...).
    #[error("{transform}: {message}")]
    Other {
        /// The transform.
        transform: TransformLabel,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// What `on_start` gets: the transform's identity and shared services.
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
    /// The run's token and cost counters: a custom transform records its
    /// calls here (`usage.record_result(&result)`) to appear in the run
    /// summary.
    pub usage: Arc<UsageMeter>,
}

impl StartContext {
    /// A context with the given registry, no Tier 1 telemetry, the
    /// process environment and a fresh usage meter.
    pub fn new(label: TransformLabel, tracing: Arc<TracingRegistry>) -> Self {
        Self {
            label,
            env: Arc::new(elspeth_schema::config::ProcessEnv),
            tracing,
            tier1: Tier1::disabled(),
            checkpoint_dir: None,
            store: None,
            usage: Arc::new(UsageMeter::new()),
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
