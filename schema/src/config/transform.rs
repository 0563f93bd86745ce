//! The `transforms:` list: one entry per LLM transform, selected by `plugin`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::llm::{
    AzureBatchOptions, AzureConnection, CallOptions, OpenRouterBatchOptions, OpenRouterConnection,
    PromptOptions, QueryMatrix,
};
use super::tracing::TracingConfig;

/// One LLM transform: `plugin` selects it, `options` configures it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "plugin",
    content = "options",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum TransformConfig {
    /// One Azure OpenAI chat call per row.
    AzureLlm(AzureLlmOptions),
    /// A query matrix per row against Azure OpenAI: one call per query, run concurrently.
    AzureMultiQueryLlm(AzureMultiQueryLlmOptions),
    /// One OpenRouter chat call per row.
    OpenrouterLlm(OpenRouterLlmOptions),
    /// A query matrix per row against OpenRouter: one call per query, run concurrently.
    OpenrouterMultiQueryLlm(OpenRouterMultiQueryLlmOptions),
    /// Many rows per Azure Batch API job (upload JSONL, poll, download results).
    AzureBatchLlm(AzureBatchLlmOptions),
    /// Rows in chunks against OpenRouter, one concurrent call per row.
    OpenrouterBatchLlm(OpenRouterBatchLlmOptions),
}

impl TransformConfig {
    /// Every plugin name, in schema order.
    pub const PLUGINS: [&'static str; 6] = [
        "azure_llm",
        "azure_multi_query_llm",
        "openrouter_llm",
        "openrouter_multi_query_llm",
        "azure_batch_llm",
        "openrouter_batch_llm",
    ];

    /// The plugin name used in YAML.
    pub fn plugin(&self) -> &'static str {
        match self {
            Self::AzureLlm(_) => Self::PLUGINS[0],
            Self::AzureMultiQueryLlm(_) => Self::PLUGINS[1],
            Self::OpenrouterLlm(_) => Self::PLUGINS[2],
            Self::OpenrouterMultiQueryLlm(_) => Self::PLUGINS[3],
            Self::AzureBatchLlm(_) => Self::PLUGINS[4],
            Self::OpenrouterBatchLlm(_) => Self::PLUGINS[5],
        }
    }

    /// The transform's tracing block, if any.
    pub fn tracing(&self) -> Option<&TracingConfig> {
        match self {
            Self::AzureLlm(o) => o.tracing.as_ref(),
            Self::AzureMultiQueryLlm(o) => o.tracing.as_ref(),
            Self::OpenrouterLlm(o) => o.tracing.as_ref(),
            Self::OpenrouterMultiQueryLlm(o) => o.tracing.as_ref(),
            Self::AzureBatchLlm(o) => o.tracing.as_ref(),
            Self::OpenrouterBatchLlm(o) => o.tracing.as_ref(),
        }
    }

    /// The prompt options every plugin has.
    pub fn prompt(&self) -> &PromptOptions {
        match self {
            Self::AzureLlm(o) => &o.prompt,
            Self::AzureMultiQueryLlm(o) => &o.prompt,
            Self::OpenrouterLlm(o) => &o.prompt,
            Self::OpenrouterMultiQueryLlm(o) => &o.prompt,
            Self::AzureBatchLlm(o) => &o.prompt,
            Self::OpenrouterBatchLlm(o) => &o.prompt,
        }
    }

    /// The query matrix of a multi-query plugin.
    pub fn queries(&self) -> Option<&QueryMatrix> {
        match self {
            Self::AzureMultiQueryLlm(o) => Some(&o.queries),
            Self::OpenrouterMultiQueryLlm(o) => Some(&o.queries),
            _ => None,
        }
    }
}

/// Options of `azure_llm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AzureLlmOptions {
    /// Azure OpenAI deployment, endpoint, key and API version.
    #[serde(flatten)]
    pub connection: AzureConnection,
    /// Prompt and reply handling.
    #[serde(flatten)]
    pub prompt: PromptOptions,
    /// Sampling, limits, retries and concurrency.
    #[serde(flatten)]
    pub call: CallOptions,
    /// Tier 2 tracing of this transform's LLM calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
}

/// Options of `azure_multi_query_llm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AzureMultiQueryLlmOptions {
    /// Azure OpenAI deployment, endpoint, key and API version.
    #[serde(flatten)]
    pub connection: AzureConnection,
    /// Prompt and reply handling.
    #[serde(flatten)]
    pub prompt: PromptOptions,
    /// Sampling, limits, retries and concurrency.
    #[serde(flatten)]
    pub call: CallOptions,
    /// The query matrix: dimensions of named items; one call per combination.
    pub queries: QueryMatrix,
    /// Tier 2 tracing of this transform's LLM calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
}

/// Options of `openrouter_llm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRouterLlmOptions {
    /// OpenRouter model, key and base URL.
    #[serde(flatten)]
    pub connection: OpenRouterConnection,
    /// Prompt and reply handling.
    #[serde(flatten)]
    pub prompt: PromptOptions,
    /// Sampling, limits, retries and concurrency.
    #[serde(flatten)]
    pub call: CallOptions,
    /// Tier 2 tracing of this transform's LLM calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
}

/// Options of `openrouter_multi_query_llm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRouterMultiQueryLlmOptions {
    /// OpenRouter model, key and base URL.
    #[serde(flatten)]
    pub connection: OpenRouterConnection,
    /// Prompt and reply handling.
    #[serde(flatten)]
    pub prompt: PromptOptions,
    /// Sampling, limits, retries and concurrency.
    #[serde(flatten)]
    pub call: CallOptions,
    /// The query matrix: dimensions of named items; one call per combination.
    pub queries: QueryMatrix,
    /// Tier 2 tracing of this transform's LLM calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
}

/// Options of `azure_batch_llm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AzureBatchLlmOptions {
    /// Azure OpenAI deployment, endpoint, key and API version.
    #[serde(flatten)]
    pub connection: AzureConnection,
    /// Prompt and reply handling.
    #[serde(flatten)]
    pub prompt: PromptOptions,
    /// Sampling, limits, retries (of the job's HTTP calls) and concurrency.
    #[serde(flatten)]
    pub call: CallOptions,
    /// Batch job size, polling and completion window.
    #[serde(flatten)]
    pub batch: AzureBatchOptions,
    /// Tier 2 tracing: a span per batch job and a generation per row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
}

/// Options of `openrouter_batch_llm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRouterBatchLlmOptions {
    /// OpenRouter model, key and base URL.
    #[serde(flatten)]
    pub connection: OpenRouterConnection,
    /// Prompt and reply handling.
    #[serde(flatten)]
    pub prompt: PromptOptions,
    /// Sampling, limits, retries and concurrency.
    #[serde(flatten)]
    pub call: CallOptions,
    /// Rows per chunk.
    #[serde(flatten)]
    pub batch: OpenRouterBatchOptions,
    /// Tier 2 tracing of this transform's LLM calls (one trace per call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
}
