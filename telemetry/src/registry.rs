//! Sets up the tracer of each transform and owns the exporters.
//!
//! - Langfuse: one exporter per distinct (host, public key, secret key);
//!   transforms with identical settings share it.
//! - Azure AI: process-wide, first connection string wins (see the plan's
//!   multi-plugin rules); later different ones log a warning naming both
//!   transforms.
//!
//! Problems (incomplete config, unresolvable `${VAR}`, bad connection
//! string) degrade to one warning and an untraced transform; only a provider
//! the transform excludes is an error.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elspeth_schema::config::{Env, ProcessEnv, TracingConfig, TracingProvider};

use crate::sink::{ExportSummary, SpanSink};
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

/// Builds tracers and keeps their exporters for the final flush.
pub struct TracingRegistry {
    mode: Mode,
    env: Arc<dyn Env + Send + Sync>,
    sinks: Mutex<Vec<Arc<dyn SpanSink>>>,
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
        }
    }

    /// A registry whose tracers all record into `sink`, whatever the provider.
    pub fn fixed(sink: Arc<dyn SpanSink>) -> Self {
        Self {
            mode: Mode::Fixed(sink),
            env: Arc::new(ProcessEnv),
            sinks: Mutex::new(Vec::new()),
        }
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
            Mode::Live => match crate::exporters::build_sink(transform, config, self.env.as_ref()) {
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

    /// Flushes every exporter (each within `deadline`) and returns their
    /// summaries, one per exporter.
    pub async fn shutdown(&self, deadline: Duration) -> Vec<ExportSummary> {
        let sinks: Vec<_> = self
            .sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = Vec::with_capacity(sinks.len());
        for sink in sinks {
            out.push(sink.flush(deadline).await);
        }
        out
    }
}
