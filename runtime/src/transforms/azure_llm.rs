//! `azure_llm`: one Azure OpenAI chat call per row.

use elspeth_schema::config::AzureLlmOptions;
use elspeth_telemetry::call::{GenAiSystem, LlmError, LlmErrorKind, LlmRequest, LlmResponse};

use super::context::{BuildContext, start_error};
use super::prompt::Prompt;
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
    prompt: Prompt,
    ctx: BuildContext,
    client: Option<AzureChatClient>,
}

impl AzureLlm {
    /// Builds the transform (compiles the template; no I/O).
    pub fn new(config: AzureLlmOptions, ctx: &BuildContext) -> Result<Self, String> {
        let prompt = Prompt::new(
            &config.prompt,
            &config.call,
            &config.connection.deployment_name,
        )?;
        Ok(Self {
            config,
            prompt,
            ctx: ctx.clone(),
            client: None,
        })
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
        self.config.call.pool_size.max(1) as usize
    }

    fn server_address(&self) -> Option<&str> {
        self.client.as_ref().map(|c| c.host())
    }

    async fn setup(&mut self, ctx: &StartContext) -> Result<(), StartError> {
        let target = self.ctx.azure_target(&ctx.label, &self.config.connection)?;
        let settings = self.ctx.client_settings(&self.config.call, &ctx.tier1);
        self.client =
            Some(AzureChatClient::new(target, &settings).map_err(|m| start_error(&ctx.label, m))?);
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

/// The error of a call made before `on_start`.
pub(crate) fn not_started() -> LlmError {
    LlmError::new(
        LlmErrorKind::Transport,
        "the transform was not started (on_start was not called)",
    )
}
