//! Option groups shared by the LLM transforms. Each plugin's options are
//! these groups flattened into one YAML mapping (see [`super::transform`]).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::values::{EnvString, SecretRef};

/// Default Azure OpenAI API version.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
/// Default OpenRouter API base URL.
pub const DEFAULT_OPENROUTER_BASE_URL: &str = "https://openrouter.ai/api/v1";
/// Pattern of `api_version`: a date, optionally `-preview`.
pub const API_VERSION_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$";
/// Pattern of a query item name (it becomes part of row field names).
pub const QUERY_ITEM_NAME_PATTERN: &str = r"^[A-Za-z0-9_]+$";
/// Most queries a multi-query matrix may expand to (each is one LLM call
/// per row); the validator rejects larger matrices.
pub const MAX_QUERIES: usize = 1000;

/// How to reach an Azure OpenAI deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AzureConnection {
    /// Name of the Azure OpenAI deployment to call (e.g. `gpt-4o`).
    pub deployment_name: String,
    /// Azure OpenAI resource endpoint, e.g. `https://my-resource.openai.azure.com`
    /// or `${AZURE_OPENAI_ENDPOINT}`.
    pub endpoint: EnvString,
    /// Azure OpenAI API key, sent as the `api-key` header. A secret: use
    /// `${AZURE_OPENAI_KEY}`.
    pub api_key: SecretRef,
    /// Azure OpenAI REST API version, a date such as `2024-10-21` (or
    /// `2025-01-01-preview`).
    #[serde(default = "default_api_version")]
    #[schemars(default = "default_api_version", regex(pattern = API_VERSION_PATTERN))]
    pub api_version: String,
    /// The model the deployment runs, as the price table names it (e.g.
    /// `gpt-4o-mini`): Azure answers with deployment names, which are not
    /// priced. Unset: the deployment name, when the price table knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<String>,
}

/// How to reach OpenRouter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OpenRouterConnection {
    /// OpenRouter model id, e.g. `openai/gpt-4o-mini` or `anthropic/claude-3.5-sonnet`.
    pub model: String,
    /// OpenRouter API key, sent as a Bearer token. A secret: use
    /// `${OPENROUTER_API_KEY}`.
    pub api_key: SecretRef,
    /// OpenRouter API base URL (the chat endpoint is `{base_url}/chat/completions`).
    #[serde(default = "default_openrouter_base_url")]
    #[schemars(default = "default_openrouter_base_url")]
    pub base_url: EnvString,
    /// Your site URL, sent as the `HTTP-Referer` header (OpenRouter app attribution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_referer: Option<String>,
    /// Your app name, sent as the `X-Title` header (OpenRouter app attribution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_title: Option<String>,
}

/// What the model is asked and how its reply becomes row fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PromptOptions {
    /// Prompt sent as the user message, a Handlebars template over the row's
    /// fields, e.g. `"Classify: {{ text }}"`.
    pub prompt_template: String,
    /// Optional system message sent before the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// `text`: the reply is stored as is. `json`: the model is asked for a
    /// JSON object and its keys become row fields. `{json_schema: {name,
    /// schema, strict}}`: the reply must be a JSON object matching `schema`
    /// (structured outputs); its properties become row fields.
    #[serde(default)]
    pub response_format: ResponseFormat,
    /// Row field that receives a `text` reply.
    #[serde(default = "default_output_field")]
    #[schemars(default = "default_output_field", length(min = 1))]
    pub output_field: String,
    /// With `response_format: json` or `json_schema`: the reply keys to keep
    /// (each becomes a row field; a missing key is a row error). Empty keeps
    /// every key. With `json_schema`, each must be a property of the schema.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_fields: Vec<String>,
}

/// Format of the model's reply.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Plain text.
    #[default]
    Text,
    /// A JSON object.
    Json,
    /// A JSON object that matches a JSON Schema (structured outputs): the
    /// schema is sent with each request and every reply is checked against
    /// it; a reply that does not match is a row error.
    JsonSchema(JsonSchemaFormat),
}

/// `response_format: {json_schema: {name, schema, strict}}`: the reply is a
/// JSON object that matches `schema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonSchemaFormat {
    /// Name of the schema, sent to the model and named in row errors:
    /// letters, digits, `_` and `-`, at most 64 characters (e.g. `ticket`).
    #[schemars(regex(pattern = JSON_SCHEMA_NAME_PATTERN))]
    pub name: String,
    /// The JSON Schema of the reply: an object schema, e.g.
    /// `{type: object, properties: {category: {type: string, enum: [billing, bug]}}, required: [category], additionalProperties: false}`.
    /// Its top-level `properties` are the row fields the reply adds (or
    /// those `output_fields` picks).
    pub schema: JsonObject,
    /// Ask the service to enforce the schema while generating (OpenAI
    /// strict mode: every object needs `additionalProperties: false` and
    /// every property listed in `required`). Replies are checked against
    /// the schema either way.
    #[serde(default = "default_strict")]
    #[schemars(default = "default_strict")]
    pub strict: bool,
}

impl JsonSchemaFormat {
    /// The schema's top-level property names, in the order written.
    pub fn properties(&self) -> Vec<String> {
        match self.schema.get("properties") {
            Some(serde_json::Value::Object(p)) => p.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// A JSON object (a JSON Schema document, in config).
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Pattern of a `json_schema` `name` (the OpenAI API's).
pub const JSON_SCHEMA_NAME_PATTERN: &str = r"^[A-Za-z0-9_-]{1,64}$";

/// The first Azure OpenAI `api_version` (date) that accepts
/// `response_format` `json_schema` (structured outputs):
/// `2024-08-01-preview`; the first GA version is `2024-10-21`.
pub const AZURE_JSON_SCHEMA_MIN_API_VERSION: &str = "2024-08-01";

/// Whether the Azure `api_version` (`YYYY-MM-DD` or `YYYY-MM-DD-preview`)
/// accepts `response_format` `json_schema`. A version that is not a date
/// is not judged here (the schema's pattern reports it): `true`.
///
/// ```
/// use elspeth_schema::config::azure_supports_json_schema;
/// assert!(azure_supports_json_schema("2024-10-21"));
/// assert!(azure_supports_json_schema("2024-08-01-preview"));
/// assert!(!azure_supports_json_schema("2024-06-01"));
/// assert!(!azure_supports_json_schema("2024-07-01-preview"));
/// ```
pub fn azure_supports_json_schema(api_version: &str) -> bool {
    let date = api_version.strip_suffix("-preview").unwrap_or(api_version);
    let is_date = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    // ISO dates of equal length compare as text.
    !is_date || date >= AZURE_JSON_SCHEMA_MIN_API_VERSION
}

impl PromptOptions {
    /// The row fields a reply adds, before any `<query>_` prefix, or `None`
    /// when they cannot be known (`json` without `output_fields` adds
    /// whatever keys the model returns). `json_schema` without
    /// `output_fields` adds the schema's top-level properties.
    pub fn reply_fields(&self) -> Option<Vec<String>> {
        match &self.response_format {
            ResponseFormat::Text => Some(vec![self.output_field.clone()]),
            _ if !self.output_fields.is_empty() => Some(self.output_fields.clone()),
            ResponseFormat::Json => None,
            ResponseFormat::JsonSchema(f) => Some(f.properties()),
        }
    }
}

/// Sampling, limits, retries and concurrency of the LLM calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CallOptions {
    /// Sampling temperature, 0 to 2. Unset uses the model's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 2.0))]
    pub temperature: Option<f64>,
    /// Most tokens the model may generate per call. Unset uses the model's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u32>,
    /// Timeout of one HTTP call, in seconds.
    #[serde(default = "default_timeout_s")]
    #[schemars(default = "default_timeout_s", range(min = 0.001, max = 3600.0))]
    pub timeout_s: f64,
    /// Retries after a 429, a 5xx or a timeout (with exponential backoff,
    /// honouring `Retry-After`). 0 disables retries.
    #[serde(default = "default_max_retries")]
    #[schemars(default = "default_max_retries", range(max = 20))]
    pub max_retries: u32,
    /// Most LLM calls in flight at once for this transform.
    #[serde(default = "default_pool_size")]
    #[schemars(default = "default_pool_size", range(min = 1, max = 1000))]
    pub pool_size: u32,
    /// This transform's price, instead of the price table's (USD per 1
    /// million tokens). A cost the provider reports (OpenRouter) still wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<PricingConfig>,
}

/// A transform's own price, in USD per 1 million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// Prompt tokens.
    #[schemars(range(min = 0.0))]
    pub input_per_mtok: f64,
    /// Completion tokens (reasoning included).
    #[schemars(range(min = 0.0))]
    pub output_per_mtok: f64,
    /// Prompt tokens served from the provider's cache. Unset: priced as input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub cached_input_per_mtok: Option<f64>,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            temperature: None,
            max_tokens: None,
            timeout_s: default_timeout_s(),
            max_retries: default_max_retries(),
            pool_size: default_pool_size(),
            pricing: None,
        }
    }
}

/// The query matrix of a multi-query transform.
///
/// Each key is a dimension (e.g. `case_study`, `criterion`) holding a list of
/// items. One query is made per combination of one item from each dimension
/// (with one dimension, one per item). Its name is the items' names joined by
/// `_` (e.g. `cs1_accuracy`), and its outputs land in the row as
/// `<query>_<field>`. In the prompt template, `{{ criterion.name }}` or
/// `{{ criterion.<var> }}` refers to the current item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(extend("minProperties" = 1))]
pub struct QueryMatrix(pub BTreeMap<String, Vec<QueryItem>>);

/// One item of a query-matrix dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryItem {
    /// Item name: letters, digits and `_`; part of the query name and of the
    /// output field names.
    #[schemars(regex(pattern = QUERY_ITEM_NAME_PATTERN))]
    pub name: String,
    /// Values the prompt template can use as `{{ <dimension>.<var> }}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
}

/// Azure Batch API job settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AzureBatchOptions {
    /// Rows per batch job (one JSONL line each).
    #[serde(default = "default_batch_size")]
    #[schemars(default = "default_batch_size", range(min = 1, max = 100_000))]
    pub batch_size: u32,
    /// Seconds between two status polls of a running batch job.
    #[serde(default = "default_poll_interval_s")]
    #[schemars(default = "default_poll_interval_s", range(min = 0.001, max = 3600.0))]
    pub poll_interval_s: f64,
    /// How long Azure may take to finish the job. The Batch API accepts `24h`.
    #[serde(default)]
    pub completion_window: CompletionWindow,
}

/// Batch completion window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum CompletionWindow {
    /// 24 hours.
    #[default]
    #[serde(rename = "24h")]
    Hours24,
}

impl CompletionWindow {
    /// The wire value (`24h`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hours24 => "24h",
        }
    }
}

/// Chunking of an OpenRouter batch: rows are taken in chunks and each row is
/// one call, run concurrently up to `pool_size`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OpenRouterBatchOptions {
    /// Rows taken per chunk.
    #[serde(default = "default_batch_size")]
    #[schemars(default = "default_batch_size", range(min = 1, max = 100_000))]
    pub batch_size: u32,
}

fn default_api_version() -> String {
    DEFAULT_AZURE_API_VERSION.into()
}
fn default_openrouter_base_url() -> EnvString {
    EnvString::new(DEFAULT_OPENROUTER_BASE_URL)
}
fn default_strict() -> bool {
    true
}
fn default_output_field() -> String {
    "llm_response".into()
}
fn default_timeout_s() -> f64 {
    60.0
}
fn default_max_retries() -> u32 {
    3
}
fn default_pool_size() -> u32 {
    10
}
fn default_batch_size() -> u32 {
    100
}
fn default_poll_interval_s() -> f64 {
    30.0
}
