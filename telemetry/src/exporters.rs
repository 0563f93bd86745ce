//! Real exporters (Langfuse OTLP, Application Insights), built from a
//! transform's tracing config by the [`TracingRegistry`].
//!
//! - Langfuse: one exporter per distinct (host, public key, secret key,
//!   environment, release, tags); transforms with identical settings share
//!   it. (Environment and release are resource attributes of the exporter,
//!   so two transforms of one project with different environments get two
//!   exporters.) For a shared exporter the first transform's `max_queue` and
//!   `flush_interval_ms` apply.
//! - Azure AI: process-wide, first connection string wins
//!   ([`AzureMonitorSlot`](crate::appinsights::AzureMonitorSlot)).
//!
//! Every problem comes back as a warning text that names what is wrong and
//! never contains a secret.

use std::sync::Arc;

use elspeth_schema::config::{
    AzureAiTracingConfig, Env, EnvString, LangfuseTracingConfig, SecretRef, TracingConfig,
};
use secrecy::{ExposeSecret, SecretString};

use crate::appinsights::{AppInsightsSettings, ConnectionString, appinsights_exporter_with};
use crate::export::{ExportConfig, Exporter};
use crate::langfuse::{LangfuseSettings, langfuse_exporter_with};
use crate::registry::{TracingRegistry, TransformLabel};
use crate::sink::SpanSink;

/// What makes two Langfuse exporters the same. The secret key is kept only
/// as a SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LangfuseKey {
    host: String,
    public_key: String,
    secret_sha256: [u8; 32],
    environment: Option<String>,
    release: Option<String>,
    tags: Vec<String>,
}

fn resolve_env(field: &str, value: &EnvString, env: &dyn Env) -> Result<String, String> {
    value.resolve(env).map_err(|e| format!("{field}: {e}"))
}

fn resolve_secret(field: &str, value: &SecretRef, env: &dyn Env) -> Result<SecretString, String> {
    value.resolve(env).map_err(|e| format!("{field}: {e}"))
}

/// Builds (or reuses) the exporter for `config`.
pub(crate) fn build_sink(
    registry: &TracingRegistry,
    transform: &TransformLabel,
    config: &TracingConfig,
) -> Result<Arc<dyn SpanSink>, String> {
    match config {
        TracingConfig::None => Err("provider none has no exporter".into()),
        TracingConfig::Langfuse(c) => {
            langfuse(registry, transform, c).map(|e| e as Arc<dyn SpanSink>)
        }
        TracingConfig::AzureAi(c) => azure(registry, transform, c).map(|e| e as Arc<dyn SpanSink>),
    }
}

fn langfuse(
    registry: &TracingRegistry,
    transform: &TransformLabel,
    c: &LangfuseTracingConfig,
) -> Result<Arc<Exporter>, String> {
    let env = registry.env();
    let public_key = match &c.public_key {
        Some(k) => resolve_env("langfuse tracing public_key", k, env)?,
        None => return Err(elspeth_schema::config::MISSING_PUBLIC_KEY.into()),
    };
    let secret_key = match &c.secret_key {
        Some(k) => resolve_secret("langfuse tracing secret_key", k, env)?,
        None => return Err(elspeth_schema::config::MISSING_SECRET_KEY.into()),
    };
    let host = resolve_env("langfuse tracing host", &c.host, env)?;
    let mut settings = LangfuseSettings::new(host, public_key, secret_key);
    settings.environment = c.environment.clone();
    settings.release = c.release.clone();
    settings.tags = c.tags.clone();
    let settings = settings.validate()?;
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
    registry.langfuse_exporter(key, || {
        let config = ExportConfig {
            max_queue: c.max_queue,
            interval: std::time::Duration::from_millis(c.flush_interval_ms),
            ..registry.export_config().clone()
        };
        let label = settings.label();
        let exporter = langfuse_exporter_with(settings, registry.http_client()?, config)?;
        tracing::info!(
            transform = %transform,
            provider = "langfuse",
            exporter = %label,
            content_recording = c.enable_content_recording,
            sample_rate = c.sample_rate,
            "Langfuse tracing initialized"
        );
        Ok(exporter)
    })
}

fn azure(
    registry: &TracingRegistry,
    transform: &TransformLabel,
    c: &AzureAiTracingConfig,
) -> Result<Arc<Exporter>, String> {
    let Some(raw) = &c.connection_string else {
        return Err(elspeth_schema::config::MISSING_CONNECTION_STRING.into());
    };
    let raw = resolve_secret("azure_ai tracing connection_string", raw, registry.env())?;
    let connection = ConnectionString::parse(raw.expose_secret()).map_err(|e| {
        format!(
            "azure_ai tracing: the connection string is malformed: {e}. Expected `InstrumentationKey=<guid>;IngestionEndpoint=https://...`, as shown on the Application Insights resource's overview page"
        )
    })?;
    let live_metrics = c.enable_live_metrics;
    let claim = registry.azure_slot().claim(transform, &connection, live_metrics, || {
        let settings = AppInsightsSettings {
            connection: connection.clone(),
            live_metrics,
        };
        let exporter = appinsights_exporter_with(settings, registry.http_client()?, registry.export_config().clone())?;
        if registry.tier1_active() {
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
            content_recording = c.enable_content_recording,
            live_metrics,
            "Azure AI tracing initialized"
        );
        Ok(exporter)
    })?;
    Ok(claim.exporter().clone())
}
