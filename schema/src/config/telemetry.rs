//! Tier 1 telemetry: the pipeline's `telemetry:` section, exported to any
//! OpenTelemetry (OTLP) collector.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::values::{EnvString, SecretRef};

/// Tier 1 ops telemetry of the pipeline: spans for every external call with
/// latency, status and content hashes only (never prompt or response text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Turn Tier 1 telemetry on or off without removing the section.
    #[serde(default = "default_true")]
    #[schemars(default = "default_true")]
    pub enabled: bool,
    /// How much is recorded: `lifecycle` (run start/end), `rows` (plus a span
    /// per row) or `full` (plus a span per external call).
    #[serde(default)]
    pub granularity: Granularity,
    /// Where the telemetry goes.
    #[serde(default)]
    pub exporters: Vec<TelemetryExporter>,
}

/// Amount of Tier 1 telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Run start and end only.
    Lifecycle,
    /// Plus one span per row.
    Rows,
    /// Plus one span per external call.
    #[default]
    Full,
}

/// One Tier 1 exporter, selected by `name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "name",
    content = "options",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum TelemetryExporter {
    /// OTLP over HTTP to any OpenTelemetry collector.
    Otlp(OtlpExporterOptions),
}

/// OTLP exporter settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtlpExporterOptions {
    /// Collector base URL, e.g. `http://localhost:4318` (spans go to
    /// `{endpoint}/v1/traces`).
    pub endpoint: EnvString,
    /// Extra HTTP headers (e.g. an API key for a hosted collector). Values
    /// are secrets: use `${VAR}` references.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, SecretRef>,
    /// Wire protocol.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// `service.name` of the exported resource.
    #[serde(default = "default_service_name")]
    #[schemars(default = "default_service_name")]
    pub service_name: String,
}

/// OTLP wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum OtlpProtocol {
    /// Protobuf over HTTP.
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

fn default_true() -> bool {
    true
}
fn default_service_name() -> String {
    "elspeth".into()
}
