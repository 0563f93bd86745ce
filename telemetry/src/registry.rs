//! Sets up the tracer of each transform and owns the exporters.
//!
//! - Langfuse: one exporter per distinct (host, public key, secret key)
//!   (and environment / release / tags, which are exporter-wide);
//!   transforms with identical settings share it.
//! - Azure AI: process-wide, first connection string wins (Application
//!   Insights has one exporter per process, see [`AzureMonitorSlot`]); later
//!   different ones log a warning naming both transforms.
//! - `none` (or no `tracing:` block): a disabled tracer.
//!
//! It reads no config: the runtime resolves each transform's `tracing:`
//! block into a [`TransformTracing`]. Problems (a setting the runtime could
//! not resolve, a bad host or connection string, no Tokio runtime) degrade
//! to one warning and an untraced transform; only a provider the transform
//! excludes is an error.
//!
//! ```no_run
//! # async fn demo(tracing: elspeth_telemetry::TransformTracing) -> Result<(), Box<dyn std::error::Error>> {
//! use elspeth_telemetry::{TracingProvider, TracingRegistry, TransformLabel};
//! let registry = TracingRegistry::new();
//! let label = TransformLabel { index: 0, plugin: "azure_llm".into() };
//! let tracer = registry.tracer_for(&label, Some(tracing), &[TracingProvider::AzureAi, TracingProvider::Langfuse])?;
//! // ... record ...
//! let summaries = registry.shutdown(std::time::Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elspeth_core::TransformLabel;

use crate::appinsights::AzureMonitorSlot;
use crate::error::ExporterError;
use crate::export::ExportConfig;
use crate::exporters::{Exporters, SlotRef};
use crate::settings::{TracingProvider, TransformTracing};
use crate::sink::{ExportSummary, SpanSink};
use crate::tier1::Tier1;
use crate::tracer::Tracer;

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

impl ProviderNotAccepted {
    /// `Err` when `provider` is neither `none` nor in `accepted`.
    pub fn check(
        transform: &TransformLabel,
        provider: TracingProvider,
        accepted: &[TracingProvider],
    ) -> Result<(), Self> {
        if provider == TracingProvider::None || accepted.contains(&provider) {
            return Ok(());
        }
        Err(Self {
            transform: transform.clone(),
            provider,
            accepted: accepted.to_vec(),
        })
    }
}

enum Mode {
    /// Real exporters.
    Live,
    /// Every provider records into one sink (tests, dry runs).
    Fixed(Arc<dyn SpanSink>),
}

/// Builds tracers and keeps their exporters for the final flush.
pub struct TracingRegistry {
    mode: Mode,
    sinks: Mutex<Vec<Arc<dyn SpanSink>>>,
    exporters: Exporters,
}

impl fmt::Debug for TracingRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracingRegistry").finish_non_exhaustive()
    }
}

impl Default for TracingRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl TracingRegistry {
    /// A registry with real exporters.
    pub fn new() -> Self {
        Self {
            mode: Mode::Live,
            sinks: Mutex::new(Vec::new()),
            exporters: Exporters::default(),
        }
    }

    /// A registry whose tracers all record into `sink`, whatever the provider.
    pub fn fixed(sink: Arc<dyn SpanSink>) -> Self {
        Self {
            mode: Mode::Fixed(sink),
            ..Self::new()
        }
    }

    /// Uses `slot` instead of the process-wide Application Insights slot
    /// (tests, or several independent pipelines in one process that must
    /// not share Application Insights).
    pub fn with_azure_slot(mut self, slot: Arc<AzureMonitorSlot>) -> Self {
        self.exporters.azure_slot = SlotRef::Own(slot);
        self
    }

    /// Tells the registry whether Tier 1 telemetry is active, so setting up
    /// Azure AI tracing can warn that another OpenTelemetry tracer exists
    /// ("Existing OpenTelemetry tracer detected ...").
    pub fn with_tier1(mut self, tier1: &Tier1) -> Self {
        self.exporters.tier1_active = tier1.is_enabled();
        self
    }

    /// Keeps what the exporters cannot deliver in `spool` (the run store)
    /// for `elspeth traces replay`, instead of counting it as failed.
    pub fn with_spool(mut self, spool: Arc<dyn crate::spool::SpanSpool>) -> Self {
        self.exporters.spool = Some(spool);
        self
    }

    /// Base export tuning (batch size, retries, timeouts) for the exporters
    /// this registry starts. Langfuse's `max_queue` and flush interval from
    /// the transform's settings override the queue size and interval.
    pub fn with_export_config(mut self, config: ExportConfig) -> Self {
        self.exporters.export = config;
        self
    }

    /// Sets up the tracer of one transform from its resolved `settings`
    /// (`None`: no `tracing:` block, untraced).
    ///
    /// `accepted` lists the providers the transform supports; any other
    /// provider but `none` is an error. Settings the runtime could not
    /// resolve, or an exporter that cannot start, log one warning and give
    /// a disabled tracer. A fixed registry needs only the tracer options.
    pub fn tracer_for(
        &self,
        transform: &TransformLabel,
        settings: Option<TransformTracing>,
        accepted: &[TracingProvider],
    ) -> Result<Tracer, ProviderNotAccepted> {
        let Some(settings) = settings else {
            return Ok(Tracer::disabled());
        };
        let provider = settings.options.provider;
        ProviderNotAccepted::check(transform, provider, accepted)?;
        if provider == TracingProvider::None {
            return Ok(Tracer::disabled());
        }
        let sink = match &self.mode {
            Mode::Fixed(sink) => sink.clone(),
            Mode::Live => match settings
                .exporter
                .map_err(ExporterError::from)
                .and_then(|s| self.exporters.build_sink(transform, &s, &settings.options))
            {
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
        Ok(Tracer::new(sink, settings.options))
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
