//! `openrouter_llm`: one OpenRouter chat call per row.

use elspeth_schema::config::OpenRouterLlmOptions;

use super::chat_core::{ChatCore, llm_call_via_core};
use crate::clients::OpenRouterClient;
use crate::plan::{BuildTransform, Mode, Resolver, Service, SpecParts, TransformSpec};
use crate::transform::DynTransform;

/// One OpenRouter chat call per row (cost is counted when OpenRouter
/// reports it).
#[elspeth_macros::llm_transform(tracing, name = "openrouter_llm", crate = crate)]
pub struct OpenRouterLlm {
    config: OpenRouterLlmOptions,
    core: ChatCore<OpenRouterClient>,
}

impl OpenRouterLlm {
    /// The transform of a resolved spec (no I/O: the client is built at
    /// start).
    pub fn from_spec(config: OpenRouterLlmOptions, spec: TransformSpec) -> Self {
        Self {
            config,
            core: ChatCore::from_spec(spec),
        }
    }

    /// The options it was built from.
    pub fn options(&self) -> &OpenRouterLlmOptions {
        &self.config
    }
}

llm_call_via_core!(OpenRouterLlm, OpenRouter, "model", model);

impl BuildTransform for OpenRouterLlmOptions {
    fn resolve(&self, r: &mut Resolver<'_>) -> Option<SpecParts> {
        r.parts(self, Mode::PerCall, Service::OpenRouter)
    }

    fn build(&self, spec: TransformSpec) -> Box<dyn DynTransform> {
        Box::new(OpenRouterLlm::from_spec(self.clone(), spec))
    }
}
