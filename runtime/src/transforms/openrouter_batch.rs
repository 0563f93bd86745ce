//! `openrouter_batch_llm`: rows taken in chunks of `batch_size`; each row is
//! one OpenRouter call, run concurrently (at most `pool_size` in flight),
//! each traced as its own call.

use elspeth_schema::config::OpenRouterBatchLlmOptions;
use elspeth_telemetry::call::{GenAiSystem, LlmError, LlmRequest, LlmResponse};

use super::azure_llm::not_started;
use super::context::{BuildContext, start_error};
use super::prompt::Prompt;
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
    prompt: Prompt,
    ctx: BuildContext,
    client: Option<OpenRouterClient>,
}

impl OpenRouterBatchLlm {
    /// Builds the transform (compiles the template; no I/O).
    pub fn new(config: OpenRouterBatchLlmOptions, ctx: &BuildContext) -> Result<Self, String> {
        let prompt = Prompt::new(&config.prompt, &config.call, &config.connection.model)?;
        Ok(Self {
            config,
            prompt,
            ctx: ctx.clone(),
            client: None,
        })
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
        self.config.call.pool_size.max(1) as usize
    }

    fn server_address(&self) -> Option<&str> {
        self.client.as_ref().map(|c| c.host())
    }

    async fn setup(&mut self, ctx: &StartContext) -> Result<(), StartError> {
        let target = self
            .ctx
            .openrouter_target(&ctx.label, &self.config.connection)?;
        let settings = self.ctx.client_settings(&self.config.call, &ctx.tier1);
        self.client =
            Some(OpenRouterClient::new(target, &settings).map_err(|m| start_error(&ctx.label, m))?);
        Ok(())
    }

    fn plan(&self, row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        Ok(vec![PlannedCall::single(self.prompt.request(row, None)?)])
    }

    async fn call(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let client = self.client.as_ref().ok_or_else(not_started)?;
        let result = client.chat(request).await;
        self.ctx.meter.record_result(&result);
        result
    }

    fn merge(
        &self,
        row: Row,
        results: Vec<(PlannedCall, Result<LlmResponse, LlmError>)>,
    ) -> Result<Row, RowError> {
        self.prompt.merge(row, results)
    }
}
