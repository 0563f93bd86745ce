//! `openrouter_multi_query_llm`: a query matrix per row against OpenRouter.

use elspeth_schema::config::OpenRouterMultiQueryLlmOptions;
use elspeth_telemetry::call::{GenAiSystem, LlmError, LlmRequest, LlmResponse};

use super::chat_core::ChatCore;
use super::context::BuildContext;
use super::matrix::Query;
use crate::clients::OpenRouterClient;
use crate::llm::{LlmCall, PlannedCall};
use crate::row::Row;
use crate::transform::{RowError, StartContext, StartError};

/// One OpenRouter call per query of the matrix, run concurrently; replies
/// land in the row as `<query>_<field>`. One trace per row, one generation
/// per query. Any failed query fails the row.
#[elspeth_macros::llm_transform(tracing, name = "openrouter_multi_query_llm", crate = crate)]
pub struct OpenRouterMultiQueryLlm {
    config: OpenRouterMultiQueryLlmOptions,
    core: ChatCore<OpenRouterClient>,
}

impl OpenRouterMultiQueryLlm {
    /// Builds the transform (compiles the template, expands the matrix; no I/O).
    pub fn new(config: OpenRouterMultiQueryLlmOptions, ctx: &BuildContext) -> Result<Self, String> {
        let core = ChatCore::new(
            &config.prompt,
            &config.call,
            &config.connection.model,
            Some(&config.queries),
            ctx,
        )?;
        Ok(Self { config, core })
    }

    /// The expanded queries, in call order.
    pub fn queries(&self) -> &[Query] {
        self.core.queries()
    }
}

impl LlmCall for OpenRouterMultiQueryLlm {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::OpenRouter
    }

    fn model_label(&self) -> (&'static str, &str) {
        ("model", &self.config.connection.model)
    }

    fn concurrency(&self) -> usize {
        self.core.concurrency()
    }

    fn server_address(&self) -> Option<&str> {
        self.core.server_address()
    }

    async fn setup(&mut self, ctx: &StartContext) -> Result<(), StartError> {
        self.core.connect(ctx, &self.config.connection)
    }

    fn plan(&self, row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        self.core.plan(row)
    }

    async fn call(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        self.core.call(request).await
    }

    fn merge(
        &self,
        row: Row,
        results: Vec<(PlannedCall, Result<LlmResponse, LlmError>)>,
    ) -> Result<Row, RowError> {
        self.core.merge(row, results)
    }
}
