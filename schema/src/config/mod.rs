//! The typed model of a pipeline YAML file.
//!
//! Doc comments on these types are the JSON Schema's descriptions (the schema
//! is generated from them, see [`crate::schema_gen`]), so they are written
//! for the person editing the YAML.
//!
//! ```
//! use elspeth_schema::config::{PipelineConfig, TransformConfig};
//! let cfg: PipelineConfig = serde_json::from_value(serde_json::json!({
//!     "name": "triage",
//!     "source": {"plugin": "jsonl", "path": "in.jsonl"},
//!     "transforms": [{"plugin": "openrouter_llm", "options": {
//!         "model": "openai/gpt-4o-mini", "api_key": "${OPENROUTER_API_KEY}",
//!         "prompt_template": "Classify: {{ text }}"}}],
//!     "sink": {"plugin": "jsonl", "path": "out.jsonl"}
//! })).unwrap();
//! assert_eq!(cfg.transforms[0].plugin(), "openrouter_llm");
//! assert!(cfg.transforms[0].tracing().is_none());
//! ```

mod fail_fast;
mod io;
mod llm;
mod matrix;
mod store;
mod telemetry;
mod tracing;
mod transform;
mod values;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use fail_fast::{DEFAULT_CONSECUTIVE_FAILURES, FailFastConfig};
pub use io::{SinkConfig, SourceConfig};
pub use llm::{
    API_VERSION_PATTERN, AzureBatchOptions, AzureConnection, CallOptions, CompletionWindow,
    DEFAULT_AZURE_API_VERSION, DEFAULT_OPENROUTER_BASE_URL, MAX_QUERIES, OpenRouterBatchOptions,
    OpenRouterConnection, PricingConfig, PromptOptions, QUERY_ITEM_NAME_PATTERN, QueryItem,
    QueryMatrix, ResponseFormat,
};
pub use llm::{
    AZURE_JSON_SCHEMA_MIN_API_VERSION, JSON_SCHEMA_NAME_PATTERN, JsonObject, JsonSchemaFormat,
    azure_supports_json_schema,
};
pub use matrix::{MatrixProblem, Query};
/// A JSON value (inside a `json_schema`'s `schema`).
pub use serde_json::Value as JsonValue;
pub use store::StoreConfig;
pub use telemetry::{
    Granularity, OtlpExporterOptions, OtlpProtocol, TelemetryConfig, TelemetryExporter,
};
pub use tracing::{
    AzureAiTracingConfig, DEFAULT_LANGFUSE_HOST, LANGFUSE_ENVIRONMENT_PATTERN,
    LangfuseTracingConfig, MISSING_CONNECTION_STRING, MISSING_PUBLIC_KEY, MISSING_SECRET_KEY,
    TracingConfig, TracingProvider, langfuse_environment_problem,
};
// Every plugin's options type, the option-group trait and `TransformConfig`
// (a glob, so adding a plugin's options struct needs no line here).
pub use transform::*;
pub use values::{Env, EnvString, ProcessEnv, SecretRef};

/// Pattern of a pipeline `name`.
pub const PIPELINE_NAME_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_-]*$";

/// An elspeth pipeline: rows from a source, through a chain of LLM
/// transforms, into a sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "elspeth pipeline")]
pub struct PipelineConfig {
    /// Pipeline name: letters, digits, `-` and `_`. Used in logs, traces and
    /// the name of the generated Rust module.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = PIPELINE_NAME_PATTERN)
    )]
    pub name: String,
    /// Where rows come from.
    pub source: SourceConfig,
    /// Tier 1 ops telemetry to an OTLP collector (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryConfig>,
    /// The LLM transforms, applied to every row in order.
    #[schemars(length(min = 1))]
    pub transforms: Vec<TransformConfig>,
    /// Where rows go.
    pub sink: SinkConfig,
    /// When the run stops early (a dead API key, a backend failing every
    /// row). Unset: at the first 401 / 403, or after 25 rows in a row failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_fast: Option<FailFastConfig>,
    /// The run store that makes reruns resume without paying again. Unset:
    /// `<pipeline stem>.elspeth.db` beside the pipeline file, serving
    /// stored replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreConfig>,
    /// The most the run may spend: it stops taking rows before its cost
    /// would pass `max_cost_usd` (`--max-cost-usd` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetConfig>,
}

/// How much a run may spend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// USD. The run stops taking rows when what it spent plus what the
    /// calls in flight may cost would pass it; rerun with a larger budget
    /// to go on (the run store serves what was paid).
    #[schemars(range(min = 0.0))]
    pub max_cost_usd: f64,
}
