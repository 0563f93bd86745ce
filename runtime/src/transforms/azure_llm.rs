//! `azure_llm`: one Azure OpenAI chat call per row.

use elspeth_schema::config::AzureLlmOptions;
use elspeth_telemetry::call::{GenAiSystem, LlmError, LlmRequest, LlmResponse};

use super::chat_core::ChatCore;
use super::context::BuildContext;
use crate::clients::AzureChatClient;
use crate::llm::{LlmCall, PlannedCall};
use crate::row::Row;
use crate::transform::{RowError, StartContext, StartError};

/// One Azure OpenAI chat call per row: the rendered `prompt_template` goes
/// out, the reply comes back as `output_field` (text) or as the reply
/// object's keys (`response_format: json`).
#[elspeth_macros::llm_transform(tracing, name = "azure_llm", crate = crate)]
pub struct AzureLlm {
    config: AzureLlmOptions,
    core: ChatCore<AzureChatClient>,
}

impl AzureLlm {
    /// Builds the transform (compiles the template; no I/O).
    pub fn new(config: AzureLlmOptions, ctx: &BuildContext) -> Result<Self, String> {
        let core = ChatCore::new(
            &config.prompt,
            &config.call,
            &config.connection.deployment_name,
            None,
            ctx,
        )?;
        Ok(Self { config, core })
    }

    /// The options it was built from.
    pub fn options(&self) -> &AzureLlmOptions {
        &self.config
    }
}

impl LlmCall for AzureLlm {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::AzureOpenAi
    }

    fn model_label(&self) -> (&'static str, &str) {
        ("deployment", &self.config.connection.deployment_name)
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
