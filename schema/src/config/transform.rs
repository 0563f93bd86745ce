//! The `transforms:` list: one entry per LLM transform, selected by `plugin`.
//!
//! Every plugin's options are made of the same option groups (a
//! connection, the prompt, the call options, perhaps a query matrix or
//! batch settings, tracing); [`TransformOptions`] exposes them, so the
//! validator and the code generator handle a plugin through its groups
//! rather than by name. Adding a plugin here is its options struct (with
//! its `transform_options!` line) and one entry in the `transform_plugins!`
//! list below, which every per-plugin dispatch (here and in the runtime) is
//! generated from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::llm::{
    AzureBatchOptions, AzureConnection, CallOptions, OpenRouterBatchOptions, OpenRouterConnection,
    PromptOptions, QueryMatrix,
};
use super::tracing::TracingConfig;
use super::values::{EnvString, SecretRef};

/// The option groups of one plugin's options.
///
/// ```
/// use elspeth_schema::config::{Connection, TransformConfig};
/// let t: TransformConfig = serde_json::from_value(serde_json::json!({
///     "plugin": "openrouter_llm",
///     "options": {"model": "openai/gpt-4o-mini", "api_key": "${KEY}", "prompt_template": "{{ text }}"},
/// })).unwrap();
/// assert!(matches!(t.connection(), Connection::OpenRouter(c) if c.model == "openai/gpt-4o-mini"));
/// assert_eq!(t.options().call().pool_size, 10);
/// assert!(t.queries().is_none());
/// ```
pub trait TransformOptions {
    /// Where the calls go and with which key.
    fn connection(&self) -> Connection<'_>;
    /// Prompt and reply handling.
    fn prompt(&self) -> &PromptOptions;
    /// Sampling, limits, retries and concurrency.
    fn call(&self) -> &CallOptions;
    /// The query matrix, for a plugin that makes one call per query.
    fn queries(&self) -> Option<&QueryMatrix> {
        None
    }
    /// The tracing block, if any.
    fn tracing(&self) -> Option<&TracingConfig>;
}

/// A plugin's connection group: which backend, and how to reach it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Connection<'a> {
    /// An Azure OpenAI deployment.
    Azure(&'a AzureConnection),
    /// OpenRouter.
    OpenRouter(&'a OpenRouterConnection),
}

impl<'a> Connection<'a> {
    /// The model asked: the Azure deployment name or the OpenRouter model id.
    pub fn model(self) -> &'a str {
        match self {
            Self::Azure(c) => &c.deployment_name,
            Self::OpenRouter(c) => &c.model,
        }
    }

    /// The API key.
    pub fn api_key(self) -> &'a SecretRef {
        match self {
            Self::Azure(c) => &c.api_key,
            Self::OpenRouter(c) => &c.api_key,
        }
    }

    /// The URL the calls go to, with the name of its YAML field
    /// (`endpoint` for Azure, `base_url` for OpenRouter).
    pub fn url(self) -> (&'static str, &'a EnvString) {
        match self {
            Self::Azure(c) => ("endpoint", &c.endpoint),
            Self::OpenRouter(c) => ("base_url", &c.base_url),
        }
    }
}

impl<'a> From<&'a AzureConnection> for Connection<'a> {
    fn from(c: &'a AzureConnection) -> Self {
        Self::Azure(c)
    }
}

impl<'a> From<&'a OpenRouterConnection> for Connection<'a> {
    fn from(c: &'a OpenRouterConnection) -> Self {
        Self::OpenRouter(c)
    }
}

/// Implements [`TransformOptions`] for an options struct with the fields
/// `connection`, `prompt`, `call` and `tracing` (and `queries` when listed).
macro_rules! transform_options {
    ($ty:ty) => {
        transform_options!(@impl $ty {});
    };
    ($ty:ty { queries }) => {
        transform_options!(@impl $ty {
            fn queries(&self) -> Option<&QueryMatrix> {
                Some(&self.queries)
            }
        });
    };
    (@impl $ty:ty { $($extra:tt)* }) => {
        impl TransformOptions for $ty {
            fn connection(&self) -> Connection<'_> {
                Connection::from(&self.connection)
            }
            fn prompt(&self) -> &PromptOptions {
                &self.prompt
            }
            fn call(&self) -> &CallOptions {
                &self.call
            }
            fn tracing(&self) -> Option<&TracingConfig> {
                self.tracing.as_ref()
            }
            $($extra)*
        }
    };
}

/// The one list of plugins: each entry is the variant of
/// [`TransformConfig`], its options type and its YAML name. It hands the
/// list to the macro named `$callback`, which generates a per-plugin match
/// from it: [`TransformConfig`] itself here, the runtime's build dispatch in
/// `elspeth-runtime`. Adding a plugin is one entry here (and its options
/// struct below); every dispatch follows.
#[doc(hidden)]
#[macro_export]
macro_rules! transform_plugins {
    ($callback:ident) => {
        $callback! {
            /// One Azure OpenAI chat call per row.
            AzureLlm($crate::config::AzureLlmOptions) = "azure_llm",
            /// A query matrix per row against Azure OpenAI: one call per query, run concurrently.
            AzureMultiQueryLlm($crate::config::AzureMultiQueryLlmOptions) = "azure_multi_query_llm",
            /// One OpenRouter chat call per row.
            OpenrouterLlm($crate::config::OpenRouterLlmOptions) = "openrouter_llm",
            /// A query matrix per row against OpenRouter: one call per query, run concurrently.
            OpenrouterMultiQueryLlm($crate::config::OpenRouterMultiQueryLlmOptions) = "openrouter_multi_query_llm",
            /// Many rows per Azure Batch API job (upload JSONL, poll, download results).
            AzureBatchLlm($crate::config::AzureBatchLlmOptions) = "azure_batch_llm",
            /// Rows in chunks against OpenRouter, one concurrent call per row.
            OpenrouterBatchLlm($crate::config::OpenRouterBatchLlmOptions) = "openrouter_batch_llm",
        }
    };
}

/// Defines [`TransformConfig`] and its per-plugin matches from the list.
macro_rules! define_transform_config {
    ($( $(#[$meta:meta])* $variant:ident($options:ty) = $name:literal, )*) => {
        /// One LLM transform: `plugin` selects it, `options` configures it.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "plugin", content = "options", deny_unknown_fields)]
        pub enum TransformConfig {
            $( $(#[$meta])* #[serde(rename = $name)] $variant($options), )*
        }

        impl TransformConfig {
            /// Every plugin name, in schema order.
            pub const PLUGINS: [&'static str; [$($name),*].len()] = [$($name),*];

            /// The plugin name used in YAML.
            pub fn plugin(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $name, )*
                }
            }

            /// The plugin's options, by option group.
            pub fn options(&self) -> &dyn TransformOptions {
                match self {
                    $( Self::$variant(o) => o, )*
                }
            }
        }
    };
}

transform_plugins!(define_transform_config);

impl TransformConfig {
    /// The transform's tracing block, if any.
    pub fn tracing(&self) -> Option<&TracingConfig> {
        self.options().tracing()
    }

    /// The prompt options every plugin has.
    pub fn prompt(&self) -> &PromptOptions {
        self.options().prompt()
    }

    /// The call options every plugin has.
    pub fn call(&self) -> &CallOptions {
        self.options().call()
    }

    /// The connection every plugin has.
    pub fn connection(&self) -> Connection<'_> {
        self.options().connection()
    }

    /// The query matrix of a multi-query plugin.
    pub fn queries(&self) -> Option<&QueryMatrix> {
        self.options().queries()
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
transform_options!(AzureLlmOptions);

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
transform_options!(AzureMultiQueryLlmOptions { queries });

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
transform_options!(OpenRouterLlmOptions);

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
transform_options!(OpenRouterMultiQueryLlmOptions { queries });

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
transform_options!(AzureBatchLlmOptions);

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
transform_options!(OpenRouterBatchLlmOptions);
