//! Resolved settings: what the [`TracingRegistry`](crate::TracingRegistry)
//! and [`Tier1`](crate::tier1::Tier1) are built from.
//!
//! This crate reads no pipeline YAML and resolves no `${VAR}`: the runtime
//! turns the pipeline's `tracing:` blocks and `telemetry:` section into
//! these types (secrets already resolved, as [`SecretString`]s). A value the
//! runtime could not resolve is carried as an [`UnresolvedSettings`], so the
//! transform or exporter it belongs to degrades to one warning here, where
//! the other problems of setting up an exporter are reported too.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

use crate::langfuse::LangfuseSettings;
use crate::tracer::TracerOptions;
pub use crate::tracer::TracingProvider;

/// A setting the runtime could not resolve (an unset `${VAR}`, say), kept
/// as the runtime's own error. Its message names the field and the fix and
/// never contains a secret.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UnresolvedSettings(Box<dyn std::error::Error + Send + Sync>);

impl UnresolvedSettings {
    /// Wraps the runtime's error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }
}

/// The Tier 2 tracing of one transform.
#[derive(Debug)]
pub struct TransformTracing {
    /// Provider, content recording and sampling: known without resolving
    /// anything, so a registry recording into one fixed sink (tests, dry
    /// runs) needs nothing else.
    pub options: TracerOptions,
    /// Where the spans go, or why that could not be resolved (the transform
    /// then runs untraced, after one warning).
    pub exporter: Result<ExporterSettings, UnresolvedSettings>,
}

/// The exporter a transform's spans go to.
#[derive(Debug, Clone)]
pub enum ExporterSettings {
    /// Langfuse over OTLP.
    Langfuse(LangfuseExport),
    /// Azure AI / Application Insights.
    AzureAi(AzureAiExport),
}

/// A Langfuse exporter: the project and its queue tuning.
#[derive(Debug, Clone)]
pub struct LangfuseExport {
    /// Host, keys, environment, release and tags (checked when the exporter
    /// starts).
    pub settings: LangfuseSettings,
    /// Most spans held waiting to be sent.
    pub max_queue: usize,
    /// How often queued spans are sent.
    pub flush_interval: Duration,
}

/// An Application Insights exporter.
#[derive(Clone)]
pub struct AzureAiExport {
    /// The connection string (`InstrumentationKey=...;IngestionEndpoint=...`),
    /// parsed when the exporter starts.
    pub connection_string: SecretString,
    /// Send Live Metrics.
    pub live_metrics: bool,
}

impl fmt::Debug for AzureAiExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureAiExport")
            .field("connection_string", &"<redacted>")
            .field("live_metrics", &self.live_metrics)
            .finish()
    }
}

/// How much Tier 1 telemetry is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum Granularity {
    /// Run start and end only.
    Lifecycle,
    /// Plus one span per row.
    Rows,
    /// Plus one span per external call.
    #[default]
    Full,
}

/// Tier 1 telemetry of a pipeline (an enabled `telemetry:` section).
#[derive(Debug, Default)]
pub struct Tier1Settings {
    /// How much is recorded.
    pub granularity: Granularity,
    /// The OTLP exporters, in the order configured (the index names them in
    /// warnings), each resolved or the reason it could not be.
    pub exporters: Vec<Result<OtlpExporterSettings, UnresolvedSettings>>,
}

/// One Tier 1 OTLP exporter.
#[derive(Clone)]
pub struct OtlpExporterSettings {
    /// Collector base URL (spans go to `{endpoint}/v1/traces`).
    pub endpoint: String,
    /// Extra HTTP headers; the values are secrets.
    pub headers: Vec<(String, SecretString)>,
    /// `service.name` of the exported resource.
    pub service_name: String,
}

impl fmt::Debug for OtlpExporterSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporterSettings")
            .field("endpoint", &self.endpoint)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| (name.as_str(), "<redacted>"))
                    .collect::<Vec<_>>(),
            )
            .field("service_name", &self.service_name)
            .finish()
    }
}

impl OtlpExporterSettings {
    /// An exporter to `endpoint` with no headers and `service.name`
    /// `elspeth`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            service_name: "elspeth".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let a = AzureAiExport {
            connection_string: "InstrumentationKey=secret-ikey".into(),
            live_metrics: false,
        };
        assert!(!format!("{a:?}").contains("secret-ikey"));
        let mut o = OtlpExporterSettings::new("http://c:4318");
        o.headers.push(("x-api-key".into(), "hunter2".into()));
        let shown = format!("{o:?}");
        assert!(shown.contains("x-api-key") && !shown.contains("hunter2"));
    }

    #[test]
    fn provider_names() {
        assert_eq!(TracingProvider::AzureAi.to_string(), "azure_ai");
        assert_eq!(TracingProvider::Langfuse.as_str(), "langfuse");
        assert_eq!(TracingProvider::None.as_str(), "none");
    }
}
