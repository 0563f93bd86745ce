//! `azure_multi_query_llm`: a query matrix per row against Azure OpenAI.

use elspeth_schema::config::AzureMultiQueryLlmOptions;

use super::chat_core::{ChatCore, llm_call_via_core};
use super::matrix::Query;
use crate::clients::AzureChatClient;
use crate::plan::{BuildTransform, Mode, Resolver, Service, SpecParts, TransformSpec};
use crate::transform::DynTransform;

/// One Azure OpenAI call per query of the matrix, run concurrently; replies
/// land in the row as `<query>_<field>`. One trace per row, one generation
/// per query (the query name in its metadata). Any failed query fails the row.
#[elspeth_macros::llm_transform(tracing, name = "azure_multi_query_llm", crate = crate)]
pub struct AzureMultiQueryLlm {
    config: AzureMultiQueryLlmOptions,
    core: ChatCore<AzureChatClient>,
}

impl AzureMultiQueryLlm {
    /// The transform of a resolved spec (no I/O: the client is built at
    /// start).
    pub fn from_spec(config: AzureMultiQueryLlmOptions, spec: TransformSpec) -> Self {
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

llm_call_via_core!(
    AzureMultiQueryLlm,
    AzureOpenAi,
    "deployment",
    deployment_name
);

impl BuildTransform for AzureMultiQueryLlmOptions {
    fn resolve(&self, r: &mut Resolver<'_>) -> Option<SpecParts> {
        r.parts(self, Mode::PerCall, Service::AzureOpenAi)
    }

    fn build(&self, spec: TransformSpec) -> Box<dyn DynTransform> {
        Box::new(AzureMultiQueryLlm::from_spec(self.clone(), spec))
    }
}
