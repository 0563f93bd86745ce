//! `openrouter_batch_llm`: rows taken in chunks of `batch_size`; each row is
//! one OpenRouter call, run concurrently (at most `pool_size` in flight),
//! each traced as its own call.

use elspeth_schema::config::OpenRouterBatchLlmOptions;

use super::chat_core::{ChatCore, llm_call_via_core};
use crate::clients::OpenRouterClient;
use crate::plan::{BuildTransform, Mode, Resolver, Service, SpecParts, TransformSpec};
use crate::transform::DynTransform;

/// OpenRouter over chunks of rows. The runner hands it `batch_size` rows at
/// a time ([`chunk_rows`](Self::chunk_rows)) and waits for the whole chunk
/// before taking the next; inside a chunk every row is one concurrent call.
#[elspeth_macros::llm_transform(tracing, name = "openrouter_batch_llm", crate = crate)]
pub struct OpenRouterBatchLlm {
    config: OpenRouterBatchLlmOptions,
    core: ChatCore<OpenRouterClient>,
}

impl OpenRouterBatchLlm {
    /// The transform of a resolved spec (no I/O: the client is built at
    /// start).
    pub fn from_spec(config: OpenRouterBatchLlmOptions, spec: TransformSpec) -> Self {
        Self {
            config,
            core: ChatCore::from_spec(spec),
        }
    }

    /// Rows per chunk (`batch_size`).
    pub fn chunk_rows(&self) -> usize {
        self.config.batch.batch_size.max(1) as usize
    }

    /// The options it was built from.
    pub fn options(&self) -> &OpenRouterBatchLlmOptions {
        &self.config
    }
}

llm_call_via_core!(OpenRouterBatchLlm, OpenRouter, "model", model);

impl BuildTransform for OpenRouterBatchLlmOptions {
    fn resolve(&self, r: &mut Resolver<'_>) -> Option<SpecParts> {
        r.parts(
            self,
            Mode::Chunked {
                rows: self.batch.batch_size.max(1) as usize,
            },
            Service::OpenRouter,
        )
    }

    fn build(&self, spec: TransformSpec) -> Box<dyn DynTransform> {
        Box::new(OpenRouterBatchLlm::from_spec(self.clone(), spec))
    }
}
