//! `openrouter_multi_query_llm`: a query matrix per row against OpenRouter.

use elspeth_schema::config::OpenRouterMultiQueryLlmOptions;
use elspeth_telemetry::call::{GenAiSystem, LlmError, LlmRequest, LlmResponse};

use super::azure_llm::not_started;
use super::azure_multi_query::plan_queries;
use super::context::{BuildContext, start_error};
use super::matrix::{Query, expand};
use super::prompt::Prompt;
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
    prompt: Prompt,
    queries: Vec<Query>,
    ctx: BuildContext,
    client: Option<OpenRouterClient>,
}

impl OpenRouterMultiQueryLlm {
    /// Builds the transform (compiles the template, expands the matrix; no I/O).
    pub fn new(config: OpenRouterMultiQueryLlmOptions, ctx: &BuildContext) -> Result<Self, String> {
        let prompt = Prompt::new(&config.prompt, &config.call, &config.connection.model)?;
        let queries = expand(&config.queries)?;
        Ok(Self {
            config,
            prompt,
            queries,
            ctx: ctx.clone(),
            client: None,
        })
    }

    /// The expanded queries, in call order.
    pub fn queries(&self) -> &[Query] {
        &self.queries
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
        plan_queries(&self.prompt, &self.queries, row)
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
