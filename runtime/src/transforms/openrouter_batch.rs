//! `openrouter_batch_llm`: rows taken in chunks of `batch_size`; each row is
//! one OpenRouter call, run concurrently (at most `pool_size` in flight),
//! each traced as its own call.

use elspeth_schema::config::OpenRouterBatchLlmOptions;
use elspeth_telemetry::call::{GenAiSystem, LlmError, LlmRequest, LlmResponse};

use super::chat_core::ChatCore;
use super::context::BuildContext;
use crate::clients::OpenRouterClient;
use crate::llm::{LlmCall, PlannedCall};
use crate::row::Row;
use crate::transform::{RowError, StartContext, StartError};

/// OpenRouter over chunks of rows. The runner hands it `batch_size` rows at
/// a time ([`chunk_rows`](Self::chunk_rows)) and waits for the whole chunk
/// before taking the next; inside a chunk every row is one concurrent call.
#[elspeth_macros::llm_transform(tracing, name = "openrouter_batch_llm", crate = crate)]
pub struct OpenRouterBatchLlm {
    config: OpenRouterBatchLlmOptions,
    core: ChatCore<OpenRouterClient>,
}

impl OpenRouterBatchLlm {
    /// Builds the transform (compiles the template; no I/O).
    pub fn new(config: OpenRouterBatchLlmOptions, ctx: &BuildContext) -> Result<Self, String> {
        let core = ChatCore::new(
            &config.prompt,
            &config.call,
            &config.connection.model,
            None,
            ctx,
        )?;
        Ok(Self { config, core })
    }

    /// Rows per chunk (`batch_size`).
    pub fn chunk_rows(&self) -> usize {
        self.config.batch.batch_size.max(1) as usize
    }

    /// The options it was built from.
    pub fn options(&self) -> &OpenRouterBatchLlmOptions {
        &self.config
    }
}

impl LlmCall for OpenRouterBatchLlm {
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
