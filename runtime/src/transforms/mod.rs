//! The six built-in LLM transforms and the registry that builds them from
//! the `transforms:` list.
//!
//! | plugin | backend | per row |
//! |---|---|---|
//! | `azure_llm` | Azure OpenAI chat | one call |
//! | `azure_multi_query_llm` | Azure OpenAI chat | one call per query of the matrix |
//! | `openrouter_llm` | OpenRouter | one call |
//! | `openrouter_multi_query_llm` | OpenRouter | one call per query of the matrix |
//! | `azure_batch_llm` | Azure OpenAI Batch API | one line of a job of `batch_size` rows |
//! | `openrouter_batch_llm` | OpenRouter | one call, rows in chunks of `batch_size` |
//!
//! Each is written with `#[llm_transform(tracing)]`: the attribute adds the
//! traced lifecycle; the files here hold only the calls.
//!
//! Common behaviour ([`prompt`]): `prompt_template` is a strict Handlebars
//! template over the row's fields (a missing field fails the row with kind
//! `template`, no call is made); `response_format: json` asks for a JSON
//! object (adding "Reply with a JSON object." to the system prompt when no
//! message mentions JSON, as the APIs require) and puts its keys (or only
//! `output_fields`) into the row; text replies go to `output_field`.
//! Multi-query replies are prefixed `<query>_`. A failed call (after
//! retries), a content-filter answer or an unparsable reply fails the row,
//! never the run.

pub mod azure_batch;
pub mod azure_llm;
pub mod azure_multi_query;
mod chat_core;
pub mod checkpoint;
mod context;
pub mod matrix;
pub mod openrouter_batch;
pub mod openrouter_llm;
pub mod openrouter_multi_query;
pub mod prompt;

use elspeth_schema::config::TransformConfig;
use elspeth_telemetry::TransformLabel;

pub use azure_batch::AzureBatchLlm;
pub use azure_llm::AzureLlm;
pub use azure_multi_query::AzureMultiQueryLlm;
pub use context::BuildContext;
pub use openrouter_batch::OpenRouterBatchLlm;
pub use openrouter_llm::OpenRouterLlm;
pub use openrouter_multi_query::OpenRouterMultiQueryLlm;

use crate::transform::DynTransform;

/// A transform's config cannot be built (bad template, bad query matrix...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{transform}: {message}")]
pub struct BuildError {
    /// The transform.
    pub transform: TransformLabel,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A built transform, ready for `on_start`.
pub struct Built {
    /// The transform.
    pub transform: Box<dyn DynTransform>,
    /// Rows the runner hands over per chunk when the transform works per
    /// row but in chunks (`openrouter_batch_llm`); `None` otherwise.
    pub chunk_rows: Option<usize>,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built")
            .field("plugin", &self.transform.plugin())
            .field("chunk_rows", &self.chunk_rows)
            .finish()
    }
}

/// Builds transform number `index` of a pipeline from its config. No I/O:
/// connections are resolved and clients created in `on_start`.
///
/// ```
/// use elspeth_runtime::transforms::{build, BuildContext};
/// use elspeth_schema::config::TransformConfig;
/// let cfg: TransformConfig = serde_json::from_value(serde_json::json!({
///     "plugin": "openrouter_llm",
///     "options": {"model": "openai/gpt-4o-mini", "api_key": "${OPENROUTER_API_KEY}",
///                 "prompt_template": "Classify: {{ text }}"}
/// })).unwrap();
/// let built = build(&cfg, 0, &BuildContext::default()).unwrap();
/// assert_eq!(built.transform.plugin(), "openrouter_llm");
/// assert_eq!(built.transform.concurrency(), 10);
/// ```
pub fn build(
    config: &TransformConfig,
    index: usize,
    ctx: &BuildContext,
) -> Result<Built, BuildError> {
    let error = |message: String| BuildError {
        transform: TransformLabel {
            index,
            plugin: config.plugin().to_string(),
        },
        message,
    };
    let per_row = |t: Box<dyn DynTransform>| Built {
        transform: t,
        chunk_rows: None,
    };
    Ok(match config {
        TransformConfig::AzureLlm(o) => {
            per_row(Box::new(AzureLlm::new(o.clone(), ctx).map_err(error)?))
        }
        TransformConfig::AzureMultiQueryLlm(o) => per_row(Box::new(
            AzureMultiQueryLlm::new(o.clone(), ctx).map_err(error)?,
        )),
        TransformConfig::OpenrouterLlm(o) => {
            per_row(Box::new(OpenRouterLlm::new(o.clone(), ctx).map_err(error)?))
        }
        TransformConfig::OpenrouterMultiQueryLlm(o) => per_row(Box::new(
            OpenRouterMultiQueryLlm::new(o.clone(), ctx).map_err(error)?,
        )),
        TransformConfig::AzureBatchLlm(o) => {
            per_row(Box::new(AzureBatchLlm::new(o.clone(), ctx).map_err(error)?))
        }
        TransformConfig::OpenrouterBatchLlm(o) => {
            let t = OpenRouterBatchLlm::new(o.clone(), ctx).map_err(error)?;
            let chunk = t.chunk_rows();
            Built {
                transform: Box::new(t),
                chunk_rows: Some(chunk),
            }
        }
    })
}
