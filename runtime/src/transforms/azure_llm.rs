//! `azure_llm`: one Azure OpenAI chat call per row.

use elspeth_schema::config::AzureLlmOptions;

use super::chat_core::{ChatCore, llm_call_via_core};
use crate::clients::AzureChatClient;
use crate::plan::{BuildTransform, Mode, Resolver, Service, SpecParts, TransformSpec};
use crate::transform::DynTransform;

/// One Azure OpenAI chat call per row: the rendered `prompt_template` goes
/// out, the reply comes back as `output_field` (text) or as the reply
/// object's keys (`response_format: json`).
#[elspeth_macros::llm_transform(tracing, name = "azure_llm", crate = crate)]
pub struct AzureLlm {
    config: AzureLlmOptions,
    core: ChatCore<AzureChatClient>,
}

impl AzureLlm {
    /// The transform of a resolved spec (no I/O: the client is built at
    /// start).
    pub fn from_spec(config: AzureLlmOptions, spec: TransformSpec) -> Self {
        Self {
            config,
            core: ChatCore::from_spec(spec),
        }
    }

    /// The options it was built from.
    pub fn options(&self) -> &AzureLlmOptions {
        &self.config
    }
}

llm_call_via_core!(AzureLlm, AzureOpenAi, "deployment", deployment_name);

impl BuildTransform for AzureLlmOptions {
    fn resolve(&self, r: &mut Resolver<'_>) -> Option<SpecParts> {
        r.parts(self, Mode::PerCall, Service::AzureOpenAi)
    }

    fn build(&self, spec: TransformSpec) -> Box<dyn DynTransform> {
        Box::new(AzureLlm::from_spec(self.clone(), spec))
    }
}
