//! `openrouter_llm`: one OpenRouter chat call per row.

use elspeth_schema::config::OpenRouterLlmOptions;
use elspeth_telemetry::call::{GenAiSystem, LlmError, LlmRequest, LlmResponse};

use super::azure_llm::not_started;
use super::context::{BuildContext, start_error};
use super::prompt::Prompt;
use crate::clients::OpenRouterClient;
use crate::llm::{LlmCall, PlannedCall};
use crate::row::Row;
use crate::transform::{RowError, StartContext, StartError};

/// One OpenRouter chat call per row (cost is counted when OpenRouter
/// reports it).
#[elspeth_macros::llm_transform(tracing, name = "openrouter_llm", crate = crate)]
pub struct OpenRouterLlm {
    config: OpenRouterLlmOptions,
    prompt: Prompt,
    ctx: BuildContext,
    client: Option<OpenRouterClient>,
}

impl OpenRouterLlm {
    /// Builds the transform (compiles the template; no I/O).
    pub fn new(config: OpenRouterLlmOptions, ctx: &BuildContext) -> Result<Self, String> {
        let prompt = Prompt::new(&config.prompt, &config.call, &config.connection.model)?;
        Ok(Self {
            config,
            prompt,
            ctx: ctx.clone(),
            client: None,
        })
    }

    /// The options it was built from.
    pub fn options(&self) -> &OpenRouterLlmOptions {
        &self.config
    }
}

impl LlmCall for OpenRouterLlm {
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
