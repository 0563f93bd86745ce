//! `azure_llm`: one Azure OpenAI chat call per row.

use elspeth_schema::config::AzureLlmOptions;

use super::chat_core::{ChatCore, llm_call_via_core};
use super::context::BuildContext;
use crate::clients::AzureChatClient;

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

llm_call_via_core!(AzureLlm, AzureOpenAi, "deployment", deployment_name);
