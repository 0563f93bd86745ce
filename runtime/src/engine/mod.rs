//! The LLM-transform engine: what `#[llm_transform]` generates calls into,
//! usable by hand just as well (the attribute is sugar, in the way
//! `tracing`'s `Instrument` sits beside `#[instrument]`).
//!
//! A transform author writes an [`LlmCall`] (or [`LlmJob`]) impl and a
//! [`TransformMeta`] impl (plugin name, accepted providers, where the
//! tracing config lives), then either puts `#[llm_transform(tracing)]` on the
//! struct or writes the [`Transform`](crate::Transform) impl with these
//! pieces:
//!
//! | `Transform` method | per-call transform | batch-job transform |
//! |---|---|---|
//! | `on_start` | [`on_start_call`] | [`on_start_job`] |
//! | `process` | [`CallEngine::process`] | [`JobEngine::process_row`] |
//! | `process_batch` | (default) | [`JobEngine::process_batch`] |
//! | `batch_size` | (default) | [`JobEngine::batch_size`] |
//! | `close` | [`close`] | [`close`] |
//!
//! The engine owns everything that records traces or touches the run
//! store: one trace per row and one generation per call, stored replies
//! served instead of paid again, paid replies committed before they are
//! merged, bounded concurrency, job spans and custom ids, the final flush.
//!
//! ```
//! use elspeth_runtime::engine::{CallEngine, TransformMeta, close, on_start_call};
//! use elspeth_runtime::llm::{GenAiSystem, LlmError, LlmRequest, LlmResponse};
//! use elspeth_runtime::{
//!     CloseReport, LlmCall, PlannedCall, Row, RowContext, RowError, StartContext, StartError,
//!     Transform,
//! };
//! use elspeth_schema::config::{TracingConfig, TracingProvider};
//! use elspeth_telemetry::Tracer;
//!
//! /// Echoes the row's `text`, traced, without the attribute.
//! struct Echo { tracing: Option<TracingConfig> }
//!
//! impl TransformMeta for Echo {
//!     const PLUGIN: &'static str = "echo";
//!     const ACCEPTED: &'static [TracingProvider] = elspeth_runtime::engine::ALL_PROVIDERS;
//!     fn tracing_config(&self) -> Option<&TracingConfig> { self.tracing.as_ref() }
//! }
//!
//! impl LlmCall for Echo {
//!     fn system(&self) -> GenAiSystem { GenAiSystem::Other("echo".into()) }
//!     fn model_label(&self) -> (&'static str, &str) { ("model", "echo") }
//!     fn plan(&self, row: &Row) -> Result<Vec<PlannedCall>, RowError> {
//!         let text = row.get("text").and_then(|v| v.as_str()).unwrap_or_default();
//!         Ok(vec![PlannedCall::single(LlmRequest::user("echo", text))])
//!     }
//!     async fn call(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
//!         Ok(LlmResponse { content: request.prompt().unwrap_or_default().into(), ..Default::default() })
//!     }
//! }
//!
//! impl Transform for Echo {
//!     fn plugin(&self) -> &str { Self::PLUGIN }
//!     async fn on_start(&mut self, ctx: &StartContext) -> Result<Tracer, StartError> {
//!         on_start_call(self, ctx).await
//!     }
//!     async fn process(&self, row: Row, ctx: RowContext<'_>) -> Result<Row, RowError> {
//!         CallEngine::new(self).process(row, ctx).await
//!     }
//!     async fn close(&mut self, tracer: Tracer) -> CloseReport { close(tracer).await }
//! }
//!
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let tracer = Tracer::disabled();
//! let mut row = Row::new();
//! row.insert("text".into(), "hi".into());
//! let out = rt.block_on(Transform::process(&Echo { tracing: None }, row, RowContext::new("row-0", 0, &tracer)));
//! assert_eq!(out.unwrap()["llm_response"], "hi");
//! ```

mod calls;
mod jobs;

use std::time::Duration;

pub use elspeth_schema::config::{TracingConfig, TracingProvider};
use elspeth_telemetry::Tracer;

pub use calls::CallEngine;
pub use jobs::JobEngine;

use crate::llm::{LlmCall, LlmJob};
use crate::transform::{CloseReport, StartContext, StartError};

/// How long [`close`] waits for the final flush of a transform's traces.
pub const CLOSE_FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// Every real provider: what `#[llm_transform(tracing)]` accepts when no
/// `providers = [...]` list narrows it.
pub const ALL_PROVIDERS: &[TracingProvider] =
    &[TracingProvider::AzureAi, TracingProvider::Langfuse];

/// Gives the macro the tracing config held by a transform's field.
///
/// Implemented for `Option<TracingConfig>`, `TracingConfig`, every built-in
/// options type and [`TransformConfig`](elspeth_schema::config::TransformConfig);
/// implement it for your own config type (one line: return
/// `self.tracing.as_ref()`).
///
/// ```
/// use elspeth_runtime::HasTracing;
/// use elspeth_schema::config::TracingConfig;
///
/// struct MyOptions { tracing: Option<TracingConfig> }
/// impl HasTracing for MyOptions {
///     fn tracing_config(&self) -> Option<&TracingConfig> { self.tracing.as_ref() }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not hold a tracing config",
    label = "the tracing config field of an `#[llm_transform(tracing)]` struct",
    note = "use `Option<TracingConfig>` or `TracingConfig` for this field, or implement `elspeth::HasTracing` for `{Self}` (return `self.tracing.as_ref()`)"
)]
pub trait HasTracing {
    /// The tracing block, `None` when absent.
    fn tracing_config(&self) -> Option<&TracingConfig>;
}

impl HasTracing for Option<TracingConfig> {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        self.as_ref()
    }
}

impl HasTracing for TracingConfig {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        Some(self)
    }
}

impl<T: HasTracing + ?Sized> HasTracing for &T {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        (**self).tracing_config()
    }
}

impl<T: HasTracing + ?Sized> HasTracing for Box<T> {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        (**self).tracing_config()
    }
}

impl<T: HasTracing + ?Sized> HasTracing for std::sync::Arc<T> {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        (**self).tracing_config()
    }
}

/// What the engine needs to know about a transform besides its [`LlmCall`]
/// or [`LlmJob`] impl. `#[llm_transform(...)]` writes this impl; without
/// the attribute it is three lines.
pub trait TransformMeta {
    /// Plugin name; traces are named `elspeth.<PLUGIN>`.
    const PLUGIN: &'static str;
    /// Providers the transform accepts ([`ALL_PROVIDERS`] for any; empty
    /// when untraced).
    const ACCEPTED: &'static [TracingProvider];
    /// The transform's tracing block, `None` when absent or untraced.
    fn tracing_config(&self) -> Option<&TracingConfig>;
}

/// Asks the registry for the transform's tracer (an incomplete config or an
/// unavailable provider degrades to one warning and a disabled tracer there).
fn tracer<T: TransformMeta + ?Sized>(this: &T, ctx: &StartContext) -> Result<Tracer, StartError> {
    crate::tracing_settings::tracer_for(
        &ctx.tracing,
        &ctx.label,
        this.tracing_config(),
        T::ACCEPTED,
        ctx.env.as_ref(),
    )
    .map_err(StartError::from)
}

/// Refuses a provider the transform excludes, with the registry's message.
fn check_accepted<T: TransformMeta + ?Sized>(
    this: &T,
    ctx: &StartContext,
) -> Result<(), StartError> {
    crate::tracing_settings::check_accepted(&ctx.label, this.tracing_config(), T::ACCEPTED)
        .map_err(StartError::from)
}

/// `Transform::on_start` of a per-call transform: refuses a tracing
/// provider the transform excludes, runs [`LlmCall::setup`], then returns
/// the transform's tracer (disabled when untraced; an incomplete config or
/// an unavailable provider degrades to one warning and a disabled tracer).
pub async fn on_start_call<T: LlmCall + TransformMeta>(
    this: &mut T,
    ctx: &StartContext,
) -> Result<Tracer, StartError> {
    check_accepted(this, ctx)?;
    LlmCall::setup(this, ctx).await?;
    tracer(this, ctx)
}

/// `Transform::on_start` of a batch-job transform: as [`on_start_call`],
/// with [`LlmJob::setup`].
pub async fn on_start_job<T: LlmJob + TransformMeta>(
    this: &mut T,
    ctx: &StartContext,
) -> Result<Tracer, StartError> {
    check_accepted(this, ctx)?;
    LlmJob::setup(this, ctx).await?;
    tracer(this, ctx)
}

/// `Transform::close`: flushes the transform's traces within
/// [`CLOSE_FLUSH_DEADLINE`] and reports the exporter's counters. Nothing is
/// logged above debug here: the exporter's one summary line comes from its
/// shutdown, once the run is over (two transforms sharing an exporter, or a
/// flush and a shutdown, never print lines that disagree).
pub async fn close(tracer: Tracer) -> CloseReport {
    close_within(tracer, CLOSE_FLUSH_DEADLINE).await
}

/// [`close`] with an explicit deadline.
pub async fn close_within(tracer: Tracer, deadline: Duration) -> CloseReport {
    // The exporter's flush logs its counts at debug level.
    CloseReport {
        tracing: tracer.flush(deadline).await,
    }
}

#[cfg(test)]
mod tests {
    //! The attribute used from inside this crate (`crate = crate`), as the
    //! built-in transforms use it.

    use std::sync::Arc;

    use super::*;
    use crate::llm::{GenAiSystem, LlmError, LlmRequest, LlmResponse, PlannedCall};
    use crate::row::{Row, RowContext};
    use crate::transform::{RowError, Transform};
    use elspeth_telemetry::TransformLabel;

    #[elspeth_macros::llm_transform(tracing(providers = [langfuse]), name = "inside", crate = crate)]
    struct Inside {
        #[tracing]
        options: Option<TracingConfig>,
    }

    impl LlmCall for Inside {
        fn system(&self) -> GenAiSystem {
            GenAiSystem::Other("test".into())
        }
        fn model_label(&self) -> (&'static str, &str) {
            ("model", "m")
        }
        fn plan(&self, row: &Row) -> Result<Vec<PlannedCall>, RowError> {
            Ok(vec![PlannedCall::single(LlmRequest::user(
                "m",
                format!("{row:?}"),
            ))])
        }
        async fn call(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
            Ok(LlmResponse {
                content: request.prompt().unwrap_or_default().len().to_string(),
                ..LlmResponse::default()
            })
        }
    }

    #[test]
    fn meta_of_a_crate_internal_transform() {
        assert_eq!(<Inside as TransformMeta>::PLUGIN, "inside");
        assert_eq!(
            <Inside as TransformMeta>::ACCEPTED,
            &[TracingProvider::Langfuse]
        );
        let t = Inside {
            options: Some(TracingConfig::None),
        };
        assert_eq!(
            TransformMeta::tracing_config(&t),
            Some(&TracingConfig::None)
        );
        assert_eq!(Transform::plugin(&t), "inside");
        assert_eq!(Transform::concurrency(&t), 1);
        assert_eq!(Transform::batch_size(&t), None);
    }

    #[tokio::test]
    async fn close_reports_the_flush_summary() {
        let (registry, _sink) = elspeth_test_support::memory_tracing();
        let mut t = Inside {
            options: Some(TracingConfig::Langfuse(
                elspeth_schema::config::LangfuseTracingConfig {
                    public_key: Some("${PK}".into()),
                    secret_key: Some(elspeth_schema::config::SecretRef::new("${SK}")),
                    ..Default::default()
                },
            )),
        };
        let label = TransformLabel {
            index: 0,
            plugin: "inside".into(),
        };
        let tracer = Transform::on_start(&mut t, &StartContext::new(label, registry))
            .await
            .unwrap();
        let row = Row::new();
        let out = Transform::process(&t, row, RowContext::new("row-0", 0, &tracer))
            .await
            .unwrap();
        assert_eq!(out["llm_response"], "2", "prompt `{{}}`");
        let report = close_within(tracer, Duration::from_millis(10)).await;
        assert_eq!(report.tracing.map(|s| s.sent), Some(2));
        assert_eq!(
            close(Tracer::disabled()).await,
            CloseReport { tracing: None }
        );
    }

    #[test]
    fn has_tracing_for_options_and_wrappers() {
        let cfg = Some(TracingConfig::None);
        assert_eq!(HasTracing::tracing_config(&cfg), Some(&TracingConfig::None));
        assert_eq!(
            HasTracing::tracing_config(&&cfg),
            Some(&TracingConfig::None)
        );
        assert_eq!(
            HasTracing::tracing_config(&Arc::new(TracingConfig::None)),
            Some(&TracingConfig::None)
        );
        let none: Option<TracingConfig> = None;
        assert_eq!(HasTracing::tracing_config(&Box::new(none)), None);
    }
}
