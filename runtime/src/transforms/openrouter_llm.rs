//! `openrouter_llm`: one OpenRouter chat call per row.

use elspeth_schema::config::OpenRouterLlmOptions;
use elspeth_telemetry::call::{GenAiSystem, LlmError, LlmRequest, LlmResponse};

use super::chat_core::ChatCore;
use super::context::BuildContext;
use crate::clients::OpenRouterClient;
use crate::llm::{LlmCall, PlannedCall};
use crate::row::Row;
use crate::transform::{RowError, StartContext, StartError};

/// One OpenRouter chat call per row (cost is counted when OpenRouter
/// reports it).
#[elspeth_macros::llm_transform(tracing, name = "openrouter_llm", crate = crate)]
pub struct OpenRouterLlm {
    config: OpenRouterLlmOptions,
    core: ChatCore<OpenRouterClient>,
}

impl OpenRouterLlm {
    /// Builds the transform (compiles the template; no I/O).
    pub fn new(config: OpenRouterLlmOptions, ctx: &BuildContext) -> Result<Self, String> {
        let core = ChatCore::new(
            &config.prompt,
            &config.call,
            &config.connection.model,
            None,
            ctx,
        )?;
        Ok(Self { config, core })
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
