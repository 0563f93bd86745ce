//! `azure_multi_query_llm`: a query matrix per row against Azure OpenAI.

use elspeth_schema::config::AzureMultiQueryLlmOptions;
use elspeth_telemetry::call::{GenAiSystem, LlmError, LlmRequest, LlmResponse};

use super::azure_llm::not_started;
use super::context::{BuildContext, start_error};
use super::matrix::{Query, expand};
use super::prompt::Prompt;
use crate::clients::AzureChatClient;
use crate::llm::{LlmCall, PlannedCall};
use crate::row::Row;
use crate::transform::{RowError, StartContext, StartError};

/// One Azure OpenAI call per query of the matrix, run concurrently; replies
/// land in the row as `<query>_<field>`. One trace per row, one generation
/// per query (the query name in its metadata). Any failed query fails the row.
#[elspeth_macros::llm_transform(tracing, name = "azure_multi_query_llm", crate = crate)]
pub struct AzureMultiQueryLlm {
    config: AzureMultiQueryLlmOptions,
    prompt: Prompt,
    queries: Vec<Query>,
    ctx: BuildContext,
    client: Option<AzureChatClient>,
}

impl AzureMultiQueryLlm {
    /// Builds the transform (compiles the template, expands the matrix; no I/O).
    pub fn new(config: AzureMultiQueryLlmOptions, ctx: &BuildContext) -> Result<Self, String> {
        let prompt = Prompt::new(
            &config.prompt,
            &config.call,
            &config.connection.deployment_name,
        )?;
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

impl LlmCall for AzureMultiQueryLlm {
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

/// One named call per query; a template error names the query.
pub(crate) fn plan_queries(
    prompt: &Prompt,
    queries: &[Query],
    row: &Row,
) -> Result<Vec<PlannedCall>, RowError> {
    queries
        .iter()
        .map(|q| {
            let request = prompt.request(row, Some(&q.values)).map_err(|mut e| {
                e.message = format!("query `{}`: {}", q.name, e.message);
                e
            })?;
            Ok(PlannedCall {
                query: Some(q.name.clone()),
                request,
            })
        })
        .collect()
}
