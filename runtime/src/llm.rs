//! LLM calls: the [`LlmCall`] trait a transform author implements, and the
//! request / response vocabulary (re-exported from `elspeth-telemetry`).

use std::future::Future;

pub use elspeth_telemetry::call::{
    ChatMessage, GenAiSystem, LlmError, LlmErrorKind, LlmRequest, LlmResponse, Role, Usage,
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

    /// Prepares clients (called from `on_start`). Default: nothing.
    fn setup(&mut self, ctx: &StartContext) -> impl Future<Output = Result<(), StartError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// The calls to make for `row` (one, or one per query).
    fn plan(&self, row: &Row) -> Result<Vec<PlannedCall>, RowError>;

    /// Makes one LLM call.
    fn call(&self, request: &LlmRequest) -> impl Future<Output = Result<LlmResponse, LlmError>> + Send;

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
