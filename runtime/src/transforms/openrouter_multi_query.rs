//! `openrouter_multi_query_llm`: a query matrix per row against OpenRouter.

use elspeth_schema::config::OpenRouterMultiQueryLlmOptions;

use super::chat_core::{ChatCore, llm_call_via_core};
use super::context::BuildContext;
use super::matrix::Query;
use crate::clients::OpenRouterClient;

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

llm_call_via_core!(OpenRouterMultiQueryLlm, OpenRouter, "model", model);
