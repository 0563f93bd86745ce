//! `openrouter_llm`: one OpenRouter chat call per row.

use elspeth_schema::config::OpenRouterLlmOptions;

use super::chat_core::{ChatCore, llm_call_via_core};
use super::context::BuildContext;
use crate::clients::OpenRouterClient;

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

llm_call_via_core!(OpenRouterLlm, OpenRouter, "model", model);
