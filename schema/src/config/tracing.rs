//! Tier 2 tracing: the `options.tracing:` block of an LLM transform.
//!
//! Rules (the messages are part of the interface: tests and users match
//! them exactly):
//! - `tracing` absent → no tracing; `tracing: {}` → provider `none`;
//!   `provider` defaults to `none`.
//! - `azure_ai` needs `connection_string`; `langfuse` needs `public_key` and
//!   `secret_key` (each missing key is its own error).
//!
//! The required keys are `Option`s here so that a config built in code can
//! still be represented and degrade gracefully at run time (a warning, then
//! no tracing); the validator and the JSON Schema report them as errors.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::values::{EnvString, SecretRef};

/// Pattern of a Langfuse `environment` (Langfuse's own rule).
pub const LANGFUSE_ENVIRONMENT_PATTERN: &str = r"^(?!langfuse)[a-z0-9_-]+$";

/// Why `environment` is not a valid Langfuse environment, if it is not.
///
/// ```
/// use elspeth_schema::config::langfuse_environment_problem;
/// assert_eq!(langfuse_environment_problem("production"), None);
/// assert!(langfuse_environment_problem("Prod").is_some());
/// assert!(langfuse_environment_problem("langfuse-dev").is_some());
/// ```
pub fn langfuse_environment_problem(environment: &str) -> Option<&'static str> {
    if environment.is_empty() {
        Some("must not be empty")
    } else if environment.starts_with("langfuse") {
        Some("must not start with `langfuse` (reserved by Langfuse)")
    } else if !environment
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        Some("must be lowercase letters, digits, `-` and `_`")
    } else if environment.len() > 40 {
        Some("must be at most 40 characters")
    } else {
        None
    }
}

/// Default Langfuse host.
pub const DEFAULT_LANGFUSE_HOST: &str = "https://cloud.langfuse.com";

/// Which tracing backend a transform sends its LLM traces to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TracingProvider {
    /// No tracing.
    None,
    /// Azure AI / Application Insights.
    AzureAi,
    /// Langfuse.
    Langfuse,
}

impl TracingProvider {
    /// Every provider, in schema order.
    pub const ALL: [TracingProvider; 3] = [Self::None, Self::AzureAi, Self::Langfuse];

    /// The name used in YAML (`none`, `azure_ai`, `langfuse`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::AzureAi => "azure_ai",
            Self::Langfuse => "langfuse",
        }
    }

    /// Parses a YAML provider name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl std::fmt::Display for TracingProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tier 2 tracing of one LLM transform: where its prompts, responses, token
/// usage and latency are sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum TracingConfig {
    /// `provider: none` (or `tracing: {}`): no tracing.
    #[default]
    None,
    /// `provider: azure_ai`: Azure AI / Application Insights.
    AzureAi(AzureAiTracingConfig),
    /// `provider: langfuse`: Langfuse.
    Langfuse(LangfuseTracingConfig),
}

impl TracingConfig {
    /// The provider this config selects.
    pub fn provider(&self) -> TracingProvider {
        match self {
            Self::None => TracingProvider::None,
            Self::AzureAi(_) => TracingProvider::AzureAi,
            Self::Langfuse(_) => TracingProvider::Langfuse,
        }
    }

    /// Completeness problems, one message per missing key; the wording is
    /// fixed (the validator and the runtime print exactly these).
    ///
    /// ```
    /// use elspeth_schema::config::{TracingConfig, AzureAiTracingConfig};
    /// let cfg = TracingConfig::AzureAi(AzureAiTracingConfig::default());
    /// assert_eq!(cfg.completeness_errors(), vec![
    ///     "azure_ai tracing requires connection_string. Use ${APPLICATIONINSIGHTS_CONNECTION_STRING} in YAML.".to_string()
    /// ]);
    /// ```
    pub fn completeness_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        match self {
            Self::None => {}
            Self::AzureAi(c) => {
                if c.connection_string.is_none() {
                    errors.push(MISSING_CONNECTION_STRING.to_string());
                }
            }
            Self::Langfuse(c) => {
                if c.public_key.is_none() {
                    errors.push(MISSING_PUBLIC_KEY.to_string());
                }
                if c.secret_key.is_none() {
                    errors.push(MISSING_SECRET_KEY.to_string());
                }
            }
        }
        errors
    }
}

/// Message for an `azure_ai` block without `connection_string`.
pub const MISSING_CONNECTION_STRING: &str = "azure_ai tracing requires connection_string. Use ${APPLICATIONINSIGHTS_CONNECTION_STRING} in YAML.";
/// Message for a `langfuse` block without `public_key`.
pub const MISSING_PUBLIC_KEY: &str =
    "langfuse tracing requires public_key. Use ${LANGFUSE_PUBLIC_KEY} in YAML.";
/// Message for a `langfuse` block without `secret_key`.
pub const MISSING_SECRET_KEY: &str =
    "langfuse tracing requires secret_key. Use ${LANGFUSE_SECRET_KEY} in YAML.";

/// Azure AI / Application Insights tracing.
///
/// Application Insights is process-wide: when several transforms configure
/// it, the first connection string wins and later different ones are warned
/// about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AzureAiTracingConfig {
    /// Application Insights connection string
    /// (`InstrumentationKey=...;IngestionEndpoint=...`). Required. It is a
    /// secret: use `${APPLICATIONINSIGHTS_CONNECTION_STRING}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<SecretRef>,
    /// Record prompt and response text. When false no prompt or response
    /// text leaves the process; tokens, model and latency are still sent.
    #[serde(default = "default_true")]
    #[schemars(default = "default_true")]
    pub enable_content_recording: bool,
    /// Send Live Metrics (the portal's real-time view). Adds a little overhead.
    #[serde(default)]
    pub enable_live_metrics: bool,
}

impl Default for AzureAiTracingConfig {
    fn default() -> Self {
        Self {
            connection_string: None,
            enable_content_recording: true,
            enable_live_metrics: false,
        }
    }
}

/// Langfuse tracing, over OTLP/HTTP to `{host}/api/public/otel/v1/traces`.
///
/// Each transform gets its own exporter, so two transforms can trace to two
/// hosts or projects; identical host and keys share one exporter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LangfuseTracingConfig {
    /// Langfuse public key (`pk-lf-...`). Required: use `${LANGFUSE_PUBLIC_KEY}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<EnvString>,
    /// Langfuse secret key (`sk-lf-...`). Required. It is a secret: use
    /// `${LANGFUSE_SECRET_KEY}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<SecretRef>,
    /// Langfuse base URL (cloud or self-hosted), http(s).
    #[serde(default = "default_langfuse_host")]
    #[schemars(default = "default_langfuse_host")]
    pub host: EnvString,
    /// Record prompt and response text. When false no prompt or response
    /// text leaves the process; tokens, model and latency are still sent.
    #[serde(default = "default_true")]
    #[schemars(default = "default_true")]
    pub enable_content_recording: bool,
    /// Fraction of traces to keep, from 0 to 1. Sampling is per row and
    /// deterministic: decided by a hash of the row's identity (the source's
    /// `key` field, else the row's content), so every run and a resumed run
    /// trace the same rows.
    #[serde(default = "default_sample_rate")]
    #[schemars(default = "default_sample_rate", range(min = 0.0, max = 1.0))]
    pub sample_rate: f64,
    /// Trace a row left out by `sample_rate` anyway when one of its LLM
    /// calls fails. Set to false to sample failures like everything else.
    #[serde(default = "default_true")]
    #[schemars(default = "default_true")]
    pub trace_failures: bool,
    /// Langfuse environment (e.g. `production`): lowercase letters, digits,
    /// `-` and `_`, at most 40 characters, not starting with `langfuse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 40), regex(pattern = LANGFUSE_ENVIRONMENT_PATTERN))]
    pub environment: Option<String>,
    /// Release or version of the pipeline, shown on every trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Tags put on every trace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// How often queued spans are sent, in milliseconds.
    #[serde(default = "default_flush_interval_ms")]
    #[schemars(default = "default_flush_interval_ms", range(min = 10, max = 600_000))]
    pub flush_interval_ms: u64,
    /// Most spans held in memory waiting to be sent; when full the oldest
    /// are dropped and counted.
    #[serde(default = "default_max_queue")]
    #[schemars(default = "default_max_queue", range(min = 1, max = 10_000_000))]
    pub max_queue: usize,
}

impl Default for LangfuseTracingConfig {
    fn default() -> Self {
        Self {
            public_key: None,
            secret_key: None,
            host: default_langfuse_host(),
            enable_content_recording: true,
            sample_rate: 1.0,
            trace_failures: true,
            environment: None,
            release: None,
            tags: Vec::new(),
            flush_interval_ms: default_flush_interval_ms(),
            max_queue: default_max_queue(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_langfuse_host() -> EnvString {
    EnvString::new(DEFAULT_LANGFUSE_HOST)
}
fn default_sample_rate() -> f64 {
    1.0
}
fn default_flush_interval_ms() -> u64 {
    1000
}
fn default_max_queue() -> usize {
    10_000
}

// ---- serde: `provider` is an optional discriminator defaulting to `none` ----

impl<'de> Deserialize<'de> for TracingConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let provider = match map.remove("provider") {
            None | Some(serde_json::Value::Null) => "none".to_string(),
            Some(serde_json::Value::String(s)) => s,
            Some(other) => {
                return Err(de::Error::invalid_type(
                    de::Unexpected::Other(&other.to_string()),
                    &"a provider name",
                ));
            }
        };
        let rest = serde_json::Value::Object(map);
        match TracingProvider::from_name(&provider) {
            Some(TracingProvider::None) => {
                if let Some((key, _)) = rest.as_object().and_then(|m| m.iter().next()) {
                    return Err(de::Error::unknown_field(key, &["provider"]));
                }
                Ok(Self::None)
            }
            Some(TracingProvider::AzureAi) => AzureAiTracingConfig::deserialize(rest)
                .map(Self::AzureAi)
                .map_err(de::Error::custom),
            Some(TracingProvider::Langfuse) => LangfuseTracingConfig::deserialize(rest)
                .map(Self::Langfuse)
                .map_err(de::Error::custom),
            None => Err(de::Error::unknown_variant(
                &provider,
                &["none", "azure_ai", "langfuse"],
            )),
        }
    }
}

impl Serialize for TracingConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let body = match self {
            Self::None => serde_json::Value::Object(Default::default()),
            Self::AzureAi(c) => serde_json::to_value(c).map_err(serde::ser::Error::custom)?,
            Self::Langfuse(c) => serde_json::to_value(c).map_err(serde::ser::Error::custom)?,
        };
        let fields = body.as_object().cloned().unwrap_or_default();
        let mut map = serializer.serialize_map(Some(fields.len() + 1))?;
        map.serialize_entry("provider", self.provider().as_str())?;
        for (k, v) in &fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

// ---- JSON Schema: one branch per provider, selected by `provider` ----

impl JsonSchema for TracingConfig {
    fn schema_name() -> Cow<'static, str> {
        "TracingConfig".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let none = json_schema!({
            "title": "No tracing",
            "type": "object",
            "properties": {
                "provider": {
                    "description": "Tracing provider: `none` (default), `azure_ai` or `langfuse`.",
                    "const": "none"
                }
            },
            "additionalProperties": false
        });
        // The structs' own schemas, inline: their nested types go to the
        // root `definitions` through `generator` (a `root_schema_for`
        // would embed a second copy of the definitions in each branch).
        let azure = provider_branch(
            AzureAiTracingConfig::json_schema(generator),
            "azure_ai",
            "Azure AI / Application Insights",
            &["connection_string"],
        );
        let langfuse = provider_branch(
            LangfuseTracingConfig::json_schema(generator),
            "langfuse",
            "Langfuse",
            &["public_key", "secret_key"],
        );
        // `provider` is also declared at the top level (with the full enum)
        // because yaml-language-server completes a value from the branch
        // that matches best so far, which for `provider: ` is `none` only.
        json_schema!({
            "description": "Tier 2 tracing of this transform's LLM calls: `provider: none` (default), `azure_ai` or `langfuse`. Absent means no tracing.",
            "type": "object",
            "properties": {
                "provider": {
                    "description": "Tracing provider: `none` (default), `azure_ai` or `langfuse`.",
                    "enum": ["none", "azure_ai", "langfuse"],
                    "default": "none"
                }
            },
            "oneOf": [none, azure, langfuse]
        })
    }
}

/// Turns a provider's struct schema into a `oneOf` branch: adds the
/// `provider` constant and the required keys.
fn provider_branch(mut schema: Schema, provider: &str, title: &str, required: &[&str]) -> Schema {
    let obj = schema.ensure_object();
    obj.remove("$schema");
    obj.insert("title".into(), title.into());
    let description = obj.remove("description");
    let props = obj
        .entry("properties")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if let Some(props) = props.as_object_mut() {
        let mut with_provider = serde_json::Map::new();
        with_provider.insert(
            "provider".into(),
            serde_json::json!({
                "description": "Tracing provider: `none` (default), `azure_ai` or `langfuse`.",
                "const": provider
            }),
        );
        with_provider.extend(std::mem::take(props));
        *props = with_provider;
    }
    let mut req = vec![serde_json::Value::from("provider")];
    req.extend(required.iter().map(|r| serde_json::Value::from(*r)));
    obj.insert("required".into(), req.into());
    if let Some(d) = description {
        obj.insert("description".into(), d);
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<TracingConfig, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn provider_and_required_key_rules() {
        assert_eq!(parse(json!({})).unwrap(), TracingConfig::None);
        assert_eq!(
            parse(json!({"provider": "none"})).unwrap(),
            TracingConfig::None
        );
        let TracingConfig::AzureAi(a) = parse(json!({"provider": "azure_ai"})).unwrap() else {
            panic!("not azure")
        };
        assert_eq!(a, AzureAiTracingConfig::default());
        assert!(a.enable_content_recording && !a.enable_live_metrics);
        let TracingConfig::Langfuse(l) = parse(json!({"provider": "langfuse"})).unwrap() else {
            panic!("not langfuse")
        };
        assert_eq!(l.host.raw(), "https://cloud.langfuse.com");
        assert_eq!(
            TracingConfig::Langfuse(l).completeness_errors(),
            vec![
                MISSING_PUBLIC_KEY.to_string(),
                MISSING_SECRET_KEY.to_string()
            ]
        );
    }

    #[test]
    fn unknown_provider_and_fields_are_errors() {
        assert!(
            parse(json!({"provider": "langfus"}))
                .unwrap_err()
                .to_string()
                .contains("langfus")
        );
        assert!(
            parse(json!({"provider": "azure_ai", "hots": "x"}))
                .unwrap_err()
                .to_string()
                .contains("hots")
        );
        assert!(
            parse(json!({"host": "x"}))
                .unwrap_err()
                .to_string()
                .contains("host")
        );
    }

    #[test]
    fn round_trip() {
        let v = json!({"provider": "langfuse", "public_key": "${PK}", "secret_key": "${SK}", "tags": ["a"]});
        let cfg = parse(v).unwrap();
        let back = serde_json::to_value(&cfg).unwrap();
        assert_eq!(parse(back).unwrap(), cfg);
    }
}
