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
//! traced lifecycle; the files here hold only the calls. Each file also
//! holds its plugin's [`BuildTransform`](crate::plan::BuildTransform) impl:
//! how its options resolve into a [`TransformSpec`](crate::plan::TransformSpec)
//! and how the transform is built from one.
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
pub mod matrix;
pub mod openrouter_batch;
pub mod openrouter_llm;
pub mod openrouter_multi_query;
pub mod prompt;

pub use azure_batch::AzureBatchLlm;
pub use azure_llm::AzureLlm;
pub use azure_multi_query::AzureMultiQueryLlm;
pub use openrouter_batch::OpenRouterBatchLlm;
pub use openrouter_llm::OpenRouterLlm;
pub use openrouter_multi_query::OpenRouterMultiQueryLlm;
