//! LLM calls: the [`LlmCall`] trait a transform author implements, and the
//! request / response vocabulary (re-exported from `elspeth-core`).

use std::future::Future;

pub use elspeth_core::call::{
    ChatMessage, Cost, CostParts, GenAiSystem, JsonSchemaRequest, LlmError, LlmErrorKind,
    LlmRequest, LlmResponse, ResponseFormatRequest, Role, Usage,
};
use serde_json::Value;

use crate::row::Row;
use crate::transform::{RowError, StartContext, StartError};

/// One call planned for a row.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCall {
    /// Query name for multi-query transforms (`cs1_accuracy`), `None` for a
    /// single call.
    pub query: Option<String>,
    /// The request.
    pub request: LlmRequest,
}

impl PlannedCall {
    /// A single, unnamed call.
    pub fn single(request: LlmRequest) -> Self {
        Self {
            query: None,
            request,
        }
    }
}

/// What the author of an LLM transform writes: how a row becomes calls, the
/// call itself, and how replies go back into the row.
/// `#[llm_transform(tracing)]` wraps these in the traced [`Transform`](crate::Transform) lifecycle.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has `#[llm_transform]` but does not implement `LlmCall`",
    label = "`LlmCall` is not implemented for `{Self}`",
    note = "implement `elspeth::LlmCall` for `{Self}` (`system`, `model_label`, `plan`, `call`), or write `mode = job` and implement `elspeth::LlmJob`"
)]
pub trait LlmCall: Send + Sync + 'static {
    /// Which LLM service this transform calls (for the GenAI attributes).
    fn system(&self) -> GenAiSystem;

    /// `("deployment", name)` for Azure, `("model", id)` for others: the
    /// trace metadata key and value.
    fn model_label(&self) -> (&'static str, &str);

    /// Most calls in flight at once.
    fn concurrency(&self) -> usize {
        1
    }

    /// Host of the LLM service (`server.address` on each generation), when
    /// known. Default: `None`.
    fn server_address(&self) -> Option<&str> {
        None
    }

    /// Prepares clients (called from `on_start`). Default: nothing.
    fn setup(&mut self, ctx: &StartContext) -> impl Future<Output = Result<(), StartError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// The calls to make for `row` (one, or one per query).
    fn plan(&self, row: &Row) -> Result<Vec<PlannedCall>, RowError>;

    /// Makes one LLM call.
    fn call(
        &self,
        request: &LlmRequest,
    ) -> impl Future<Output = Result<LlmResponse, LlmError>> + Send;

    /// Puts the replies into the row. `results` are in `plan` order.
    /// Default: a single reply goes to `llm_response`; any failed call fails the row.
    fn merge(
        &self,
        mut row: Row,
        results: Vec<(PlannedCall, Result<LlmResponse, LlmError>)>,
    ) -> Result<Row, RowError> {
        for (call, result) in results {
            let response = result?;
            let key = match call.query {
                Some(q) => format!("{q}_llm_response"),
                None => "llm_response".to_string(),
            };
            row.insert(key, Value::String(response.content));
        }
        Ok(row)
    }
}

/// One line of a batch job: the JSONL `custom_id` and its request.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLine {
    /// Unique id of the line within the job (maps results back to rows).
    pub custom_id: String,
    /// The request.
    pub request: LlmRequest,
}

/// What a finished (or failed, expired, cancelled) batch job returns.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    /// The provider's batch id.
    pub batch_id: String,
    /// Final status (`completed`, `failed`, `expired`, `cancelled`, ...).
    pub status: JobStatus,
    /// Result per `custom_id`; a line missing here failed with the job.
    pub results: std::collections::HashMap<String, Result<LlmResponse, LlmError>>,
    /// When the job was submitted.
    pub started: std::time::SystemTime,
    /// When its output was available.
    pub finished: std::time::SystemTime,
}

/// The final status of a batch job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Every line was processed (some may still have failed alone).
    Completed,
    /// The job failed as a whole.
    Failed,
    /// The completion window ran out.
    Expired,
    /// The job was cancelled.
    Cancelled,
    /// Another status of the provider's, as it names it.
    Other(String),
}

impl JobStatus {
    /// The status as the provider names it (`completed`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Other(s) => s,
        }
    }

    /// Whether the job completed.
    pub fn is_completed(&self) -> bool {
        *self == Self::Completed
    }
}

impl From<&str> for JobStatus {
    fn from(status: &str) -> Self {
        match status {
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            "cancelled" => Self::Cancelled,
            other => Self::Other(other.to_string()),
        }
    }
}

impl From<String> for JobStatus {
    fn from(status: String) -> Self {
        Self::from(status.as_str())
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the author of a batch-job transform writes (`mode = job`): rows
/// become JSONL lines of one job; the job runs remotely; results come back
/// per line. `#[llm_transform(tracing, mode = job)]` wraps it with a job span
/// and one generation per row rebuilt from the job's output.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has `#[llm_transform(mode = job)]` but does not implement `LlmJob`",
    label = "`LlmJob` is not implemented for `{Self}`",
    note = "implement `elspeth::LlmJob` for `{Self}` (`system`, `model_label`, `batch_size`, `plan`, `run_job`, `merge`), or drop `mode = job` and implement `elspeth::LlmCall`"
)]
pub trait LlmJob: Send + Sync + 'static {
    /// Which LLM service this transform calls.
    fn system(&self) -> GenAiSystem;

    /// `("deployment", name)` for Azure, `("model", id)` for others.
    fn model_label(&self) -> (&'static str, &str);

    /// Rows per job.
    fn batch_size(&self) -> usize;

    /// Prepares clients and checkpoints (called from `on_start`). Default: nothing.
    fn setup(&mut self, ctx: &StartContext) -> impl Future<Output = Result<(), StartError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// The request for one row.
    fn plan(&self, row: &Row) -> Result<LlmRequest, RowError>;

    /// Submits the lines as one job, waits for it and collects the results.
    /// `Err` only when no job could be created at all (then every row fails
    /// with that error).
    fn run_job(
        &self,
        lines: Vec<JobLine>,
    ) -> impl Future<Output = Result<JobOutcome, LlmError>> + Send;

    /// Puts one row's result into the row.
    fn merge(&self, row: Row, result: Result<LlmResponse, LlmError>) -> Result<Row, RowError>;
}
