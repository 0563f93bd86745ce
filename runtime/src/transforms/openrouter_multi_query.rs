//! `openrouter_multi_query_llm`: a query matrix per row against OpenRouter.

use elspeth_schema::config::OpenRouterMultiQueryLlmOptions;

use super::chat_core::{ChatCore, llm_call_via_core};
use super::matrix::Query;
use crate::clients::OpenRouterClient;
use crate::plan::{BuildTransform, Mode, Resolver, Service, SpecParts, TransformSpec};
use crate::transform::DynTransform;

/// One OpenRouter call per query of the matrix, run concurrently; replies
/// land in the row as `<query>_<field>`. One trace per row, one generation
/// per query. Any failed query fails the row.
#[elspeth_macros::llm_transform(tracing, name = "openrouter_multi_query_llm", crate = crate)]
pub struct OpenRouterMultiQueryLlm {
    config: OpenRouterMultiQueryLlmOptions,
    core: ChatCore<OpenRouterClient>,
}

impl OpenRouterMultiQueryLlm {
    /// The transform of a resolved spec (no I/O: the client is built at
    /// start).
    pub fn from_spec(config: OpenRouterMultiQueryLlmOptions, spec: TransformSpec) -> Self {
        Self {
            config,
            core: ChatCore::from_spec(spec),
        }
    }

    /// The expanded queries, in call order.
    pub fn queries(&self) -> &[Query] {
        self.core.queries()
    }
}

llm_call_via_core!(OpenRouterMultiQueryLlm, OpenRouter, "model", model);

impl BuildTransform for OpenRouterMultiQueryLlmOptions {
    fn resolve(&self, r: &mut Resolver<'_>) -> Option<SpecParts> {
        r.parts(self, Mode::PerCall, Service::OpenRouter)
    }

    fn build(&self, spec: TransformSpec) -> Box<dyn DynTransform> {
        Box::new(OpenRouterMultiQueryLlm::from_spec(self.clone(), spec))
    }
}
