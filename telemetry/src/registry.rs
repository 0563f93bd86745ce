//! Sets up the tracer of each transform and owns the exporters.
//!
//! - Langfuse: one exporter per distinct (host, public key, secret key)
//!   (and environment / release / tags, which are exporter-wide);
//!   transforms with identical settings share it.
//! - Azure AI: process-wide, first connection string wins (see the plan's
//!   multi-plugin rules and [`AzureMonitorSlot`]); later different ones log
//!   a warning naming both transforms.
//! - `none` (or no `tracing:` block): a disabled tracer.
//!
//! Problems (incomplete config, unresolvable `${VAR}`, bad connection
//! string, no Tokio runtime) degrade to one warning and an untraced
//! transform; only a provider the transform excludes is an error.
//!
//! ```no_run
//! # async fn demo(config: &elspeth_schema::config::TracingConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use elspeth_schema::config::{ProcessEnv, TracingProvider};
//! use elspeth_telemetry::{TracingRegistry, TransformLabel};
//! let registry = TracingRegistry::new(Arc::new(ProcessEnv));
//! let label = TransformLabel { index: 0, plugin: "azure_llm".into() };
//! let tracer = registry.tracer_for(&label, Some(config), &[TracingProvider::AzureAi, TracingProvider::Langfuse])?;
//! // ... record ...
//! let summaries = registry.shutdown(std::time::Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use elspeth_schema::config::{Env, ProcessEnv, TracingConfig, TracingProvider};

use crate::appinsights::AzureMonitorSlot;
use crate::export::{ExportConfig, Exporter};
use crate::exporters::LangfuseKey;
use crate::sink::{ExportSummary, SpanSink};
use crate::tier1::Tier1;
use crate::tracer::{Tracer, TracerOptions};

/// Names a transform in logs: `transforms[1] (azure_llm)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransformLabel {
    /// Position in the pipeline's `transforms:` list.
    pub index: usize,
    /// Plugin name.
    pub plugin: String,
}

impl fmt::Display for TransformLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transforms[{}] ({})", self.index, self.plugin)
    }
}

/// A transform's tracing config names a provider the transform does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{transform} does not support tracing provider `{provider}`; it accepts: {}",
    accepted.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
)]
pub struct ProviderNotAccepted {
    /// The transform.
    pub transform: TransformLabel,
    /// The provider asked for.
    pub provider: TracingProvider,
    /// The providers the transform accepts.
    pub accepted: Vec<TracingProvider>,
}

enum Mode {
    /// Real exporters.
    Live,
    /// Every provider records into one sink (tests, dry runs).
    Fixed(Arc<dyn SpanSink>),
}

enum SlotRef {
    Global,
    Own(Arc<AzureMonitorSlot>),
}

/// Builds tracers and keeps their exporters for the final flush.
pub struct TracingRegistry {
    mode: Mode,
    env: Arc<dyn Env + Send + Sync>,
    sinks: Mutex<Vec<Arc<dyn SpanSink>>>,
    langfuse: Mutex<Vec<(LangfuseKey, Arc<Exporter>)>>,
    azure_slot: SlotRef,
    tier1_active: bool,
    export: ExportConfig,
    client: Mutex<Option<reqwest::Client>>,
}

impl fmt::Debug for TracingRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracingRegistry").finish_non_exhaustive()
    }
}

impl Default for TracingRegistry {
    fn default() -> Self {
        Self::new(Arc::new(ProcessEnv))
    }
}

impl TracingRegistry {
    /// A registry with real exporters, resolving `${VAR}` against `env`.
    pub fn new(env: Arc<dyn Env + Send + Sync>) -> Self {
        Self {
            mode: Mode::Live,
            env,
            sinks: Mutex::new(Vec::new()),
            langfuse: Mutex::new(Vec::new()),
            azure_slot: SlotRef::Global,
            tier1_active: false,
            export: ExportConfig::default(),
            client: Mutex::new(None),
        }
    }

    /// A registry whose tracers all record into `sink`, whatever the provider.
    pub fn fixed(sink: Arc<dyn SpanSink>) -> Self {
        Self {
            mode: Mode::Fixed(sink),
            ..Self::new(Arc::new(ProcessEnv))
        }
    }

    /// Uses `slot` instead of the process-wide Application Insights slot
    /// (tests, or several independent pipelines in one process that must
    /// not share Application Insights).
    pub fn with_azure_slot(mut self, slot: Arc<AzureMonitorSlot>) -> Self {
        self.azure_slot = SlotRef::Own(slot);
        self
    }

    /// Tells the registry whether Tier 1 telemetry is active, so setting up
    /// Azure AI tracing can warn as the plan asks ("Existing OpenTelemetry
    /// tracer detected ...").
    pub fn with_tier1(mut self, tier1: &Tier1) -> Self {
        self.tier1_active = tier1.is_enabled();
        self
    }

    /// Base export tuning (batch size, retries, timeouts) for the exporters
    /// this registry starts. Langfuse's `max_queue` and `flush_interval_ms`
    /// from the YAML override the queue size and interval.
    pub fn with_export_config(mut self, config: ExportConfig) -> Self {
        self.export = config;
        self
    }

    pub(crate) fn export_config(&self) -> &ExportConfig {
        &self.export
    }

    pub(crate) fn tier1_active(&self) -> bool {
        self.tier1_active
    }

    pub(crate) fn azure_slot(&self) -> &AzureMonitorSlot {
        match &self.azure_slot {
            SlotRef::Global => AzureMonitorSlot::global(),
            SlotRef::Own(slot) => slot,
        }
    }

    /// The registry's HTTP client, shared by its exporters.
    pub(crate) fn http_client(&self) -> Result<reqwest::Client, String> {
        let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = client.as_ref() {
            return Ok(c.clone());
        }
        let c = crate::http::client()?;
        *client = Some(c.clone());
        Ok(c)
    }

    /// The Langfuse exporter for `key`, started with `start` if there is none.
    pub(crate) fn langfuse_exporter(
        &self,
        key: LangfuseKey,
        start: impl FnOnce() -> Result<Arc<Exporter>, String>,
    ) -> Result<Arc<Exporter>, String> {
        let mut exporters = self.langfuse.lock().unwrap_or_else(PoisonError::into_inner);
        exporters.retain(|(_, e)| !e.is_closed());
        if let Some((_, e)) = exporters.iter().find(|(k, _)| *k == key) {
            return Ok(e.clone());
        }
        let exporter = start()?;
        exporters.push((key, exporter.clone()));
        Ok(exporter)
    }

    /// Sets up the tracer of one transform.
    ///
    /// `accepted` lists the providers the transform supports (`None` when
    /// untraced is always fine). Incomplete or broken configs log one warning
    /// and return a disabled tracer.
    pub fn tracer_for(
        &self,
        transform: &TransformLabel,
        config: Option<&TracingConfig>,
        accepted: &[TracingProvider],
    ) -> Result<Tracer, ProviderNotAccepted> {
        let Some(config) = config else {
            return Ok(Tracer::disabled());
        };
        let provider = config.provider();
        if provider != TracingProvider::None && !accepted.contains(&provider) {
            return Err(ProviderNotAccepted {
                transform: transform.clone(),
                provider,
                accepted: accepted.to_vec(),
            });
        }
        let errors = config.completeness_errors();
        if !errors.is_empty() {
            for error in errors {
                tracing::warn!(transform = %transform, %error, "Tracing configuration error; running untraced");
            }
            return Ok(Tracer::disabled());
        }
        let (content_recording, sample_rate) = match config {
            TracingConfig::None => return Ok(Tracer::disabled()),
            TracingConfig::AzureAi(c) => (c.enable_content_recording, 1.0),
            TracingConfig::Langfuse(c) => (c.enable_content_recording, c.sample_rate),
        };
        let sink = match &self.mode {
            Mode::Fixed(sink) => sink.clone(),
            Mode::Live => match crate::exporters::build_sink(self, transform, config) {
                Ok(sink) => sink,
                Err(warning) => {
                    tracing::warn!(transform = %transform, provider = %provider, "{warning}; running untraced");
                    return Ok(Tracer::disabled());
                }
            },
        };
        {
            let mut sinks = self.sinks.lock().unwrap_or_else(|e| e.into_inner());
            if !sinks.iter().any(|s| Arc::ptr_eq(s, &sink)) {
                sinks.push(sink.clone());
            }
        }
        Ok(Tracer::new(
            sink,
            TracerOptions {
                provider,
                content_recording,
                sample_rate,
            },
        ))
    }

    /// The environment used to resolve `${VAR}` references.
    pub fn env(&self) -> &(dyn Env + Send + Sync) {
        self.env.as_ref()
    }

    /// The same environment, shared.
    pub fn env_arc(&self) -> Arc<dyn Env + Send + Sync> {
        self.env.clone()
    }

    /// Shuts every exporter down (concurrently, the whole call within about
    /// `deadline`): each sends what it can, gives up on the rest (counted as
    /// failed) and logs one summary line. Returns one summary per exporter.
    pub async fn shutdown(&self, deadline: Duration) -> Vec<ExportSummary> {
        let sinks: Vec<_> = self.sinks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        futures_util::future::join_all(sinks.iter().map(|s| s.shutdown(deadline))).await
    }

    /// The current counters of every exporter, without flushing.
    pub fn summaries(&self) -> Vec<ExportSummary> {
        self.sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|s| s.summary())
            .collect()
    }
}
