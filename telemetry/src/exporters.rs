//! Real exporters (Langfuse OTLP, Application Insights), started from a
//! transform's resolved [`ExporterSettings`] for the
//! [`TracingRegistry`](crate::TracingRegistry), which owns one [`Exporters`].
//!
//! - Langfuse: one exporter per distinct (host, public key, secret key,
//!   environment, release, tags); transforms with identical settings share
//!   it. (Environment and release are resource attributes of the exporter,
//!   so two transforms of one project with different environments get two
//!   exporters.) For a shared exporter the first transform's `max_queue` and
//!   `flush_interval_ms` apply.
//! - Azure AI: process-wide, first connection string wins
//!   ([`AzureMonitorSlot`]).
//!
//! Every problem comes back as an [`ExporterError`] that names what is wrong
//! and never contains a secret.

use std::sync::{Arc, Mutex, PoisonError};

use elspeth_core::TransformLabel;
use secrecy::ExposeSecret;

use crate::appinsights::{
    AppInsightsError, AppInsightsSettings, AzureMonitorSlot, ConnectionString,
    appinsights_exporter_with,
};
use crate::error::ExporterError;
use crate::export::{ExportConfig, Exporter};
use crate::langfuse::langfuse_exporter_with;
use crate::settings::{AzureAiExport, ExporterSettings, LangfuseExport};
use crate::sink::SpanSink;
use crate::spool::SpanSpool;
use crate::tracer::TracerOptions;

/// What makes two Langfuse exporters the same. The secret key is kept only
/// as a SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LangfuseKey {
    host: String,
    public_key: String,
    secret_sha256: [u8; 32],
    environment: Option<String>,
    release: Option<String>,
    tags: Vec<String>,
}

/// Which Application Insights slot a registry uses.
pub(crate) enum SlotRef {
    /// The process-wide one.
    Global,
    /// A slot of the registry's own.
    Own(Arc<AzureMonitorSlot>),
}

/// The live exporters of one registry and what starting one needs.
pub(crate) struct Exporters {
    langfuse: Mutex<Vec<(LangfuseKey, Arc<Exporter>)>>,
    pub(crate) azure_slot: SlotRef,
    pub(crate) tier1_active: bool,
    pub(crate) export: ExportConfig,
    /// Where undelivered spans are kept (`None`: counted as failed).
    pub(crate) spool: Option<Arc<dyn SpanSpool>>,
    client: Mutex<Option<reqwest::Client>>,
}

impl Default for Exporters {
    fn default() -> Self {
        Self {
            langfuse: Mutex::new(Vec::new()),
            azure_slot: SlotRef::Global,
            tier1_active: false,
            export: ExportConfig::default(),
            spool: None,
            client: Mutex::new(None),
        }
    }
}

impl Exporters {
    fn azure_slot(&self) -> &AzureMonitorSlot {
        match &self.azure_slot {
            SlotRef::Global => AzureMonitorSlot::global(),
            SlotRef::Own(slot) => slot,
        }
    }

    /// The HTTP client, shared by the exporters.
    fn http_client(&self) -> Result<reqwest::Client, ExporterError> {
        let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = client.as_ref() {
            return Ok(c.clone());
        }
        let c = crate::http::client()?;
        *client = Some(c.clone());
        Ok(c)
    }

    /// Builds (or reuses) the exporter for `settings`.
    pub(crate) fn build_sink(
        &self,
        transform: &TransformLabel,
        settings: &ExporterSettings,
        options: &TracerOptions,
    ) -> Result<Arc<dyn SpanSink>, ExporterError> {
        match settings {
            ExporterSettings::Langfuse(s) => self
                .langfuse(transform, s, options)
                .map(|e| e as Arc<dyn SpanSink>),
            ExporterSettings::AzureAi(s) => self
                .azure(transform, s, options)
                .map(|e| e as Arc<dyn SpanSink>),
        }
    }

    fn langfuse(
        &self,
        transform: &TransformLabel,
        s: &LangfuseExport,
        options: &TracerOptions,
    ) -> Result<Arc<Exporter>, ExporterError> {
        let settings = s.settings.clone().validate()?;
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            settings.secret_key.expose_secret().as_bytes(),
        );
        let mut secret_sha256 = [0u8; 32];
        secret_sha256.copy_from_slice(digest.as_ref());
        let key = LangfuseKey {
            host: settings.host.clone(),
            public_key: settings.public_key.clone(),
            secret_sha256,
            environment: settings.environment.clone(),
            release: settings.release.clone(),
            tags: settings.tags.clone(),
        };
        let mut exporters = self.langfuse.lock().unwrap_or_else(PoisonError::into_inner);
        exporters.retain(|(_, e)| !e.is_closed());
        if let Some((_, e)) = exporters.iter().find(|(k, _)| *k == key) {
            return Ok(e.clone());
        }
        let config = ExportConfig {
            max_queue: s.max_queue,
            interval: s.flush_interval,
            ..self.export.clone()
        };
        let label = settings.label();
        let exporter = langfuse_exporter_with(settings, self.http_client()?, config)?;
        tracing::info!(
            transform = %transform,
            provider = "langfuse",
            exporter = %label,
            content_recording = options.content_recording,
            sample_rate = options.sample_rate,
            "Langfuse tracing initialized"
        );
        if let Some(spool) = &self.spool {
            exporter.set_spool(spool.clone());
        }
        exporters.push((key, exporter.clone()));
        Ok(exporter)
    }

    fn azure(
        &self,
        transform: &TransformLabel,
        s: &AzureAiExport,
        options: &TracerOptions,
    ) -> Result<Arc<Exporter>, ExporterError> {
        let connection = ConnectionString::parse(s.connection_string.expose_secret())
            .map_err(AppInsightsError::MalformedConnectionString)?;
        let live_metrics = s.live_metrics;
        let claim = self
            .azure_slot()
            .claim(transform, &connection, live_metrics, || -> Result<_, ExporterError> {
                let settings = AppInsightsSettings {
                    connection: connection.clone(),
                    live_metrics,
                };
                let exporter =
                    appinsights_exporter_with(settings, self.http_client()?, self.export.clone())?;
                if self.tier1_active {
                    tracing::warn!(
                        transform = %transform,
                        existing_provider = "tier1 otlp",
                        "Existing OpenTelemetry tracer detected - Azure AI tracing may conflict with Tier 1 telemetry in tools that install one global tracer; here Azure AI tracing runs in its own exporter, apart from the Tier 1 provider, so both stay active: each LLM call appears in Tier 1 (hashes only) and in Application Insights"
                    );
                }
                tracing::info!(
                    transform = %transform,
                    provider = "azure_ai",
                    exporter = %exporter.label(),
                    content_recording = options.content_recording,
                    live_metrics,
                    "Azure AI tracing initialized"
                );
                Ok(exporter)
            })?;
        let exporter = claim.exporter().clone();
        if let Some(spool) = &self.spool {
            exporter.set_spool(spool.clone());
        }
        Ok(exporter)
    }
}

/// The transport of `settings` alone, without a queue or the process-wide
/// Application Insights slot: what `elspeth traces replay` sends kept
/// spans with. Its [`label`](crate::export::Transport::label) is the label
/// the spans were kept under.
pub fn transport_for(
    settings: &ExporterSettings,
) -> Result<Arc<dyn crate::export::Transport>, ExporterError> {
    let client = crate::http::client()?;
    match settings {
        ExporterSettings::Langfuse(s) => {
            let settings = s.settings.clone().validate()?;
            let transport = crate::langfuse::LangfuseTransport::new(&settings, client)
                .map_err(crate::langfuse::LangfuseError::from)?;
            Ok(Arc::new(transport))
        }
        ExporterSettings::AzureAi(s) => {
            let connection = ConnectionString::parse(s.connection_string.expose_secret())
                .map_err(AppInsightsError::MalformedConnectionString)?;
            let settings = AppInsightsSettings {
                connection,
                live_metrics: false,
            };
            let transport = crate::appinsights::AppInsightsTransport::new(&settings, client)?;
            Ok(Arc::new(transport))
        }
    }
}
