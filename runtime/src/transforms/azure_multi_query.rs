//! `azure_multi_query_llm`: a query matrix per row against Azure OpenAI.

use elspeth_schema::config::AzureMultiQueryLlmOptions;

use super::chat_core::{ChatCore, llm_call_via_core};
use super::context::BuildContext;
use super::matrix::Query;
use crate::clients::AzureChatClient;

/// One Azure OpenAI call per query of the matrix, run concurrently; replies
/// land in the row as `<query>_<field>`. One trace per row, one generation
/// per query (the query name in its metadata). Any failed query fails the row.
#[elspeth_macros::llm_transform(tracing, name = "azure_multi_query_llm", crate = crate)]
pub struct AzureMultiQueryLlm {
    config: AzureMultiQueryLlmOptions,
    core: ChatCore<AzureChatClient>,
}

impl AzureMultiQueryLlm {
    /// Builds the transform (compiles the template, expands the matrix; no I/O).
    pub fn new(config: AzureMultiQueryLlmOptions, ctx: &BuildContext) -> Result<Self, String> {
        let core = ChatCore::new(
            &config.prompt,
            &config.call,
            &config.connection.deployment_name,
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

llm_call_via_core!(
    AzureMultiQueryLlm,
    AzureOpenAi,
    "deployment",
    deployment_name
);
