//! Items used by code that `#[llm_transform]` generates. Not a public API:
//! paths and signatures may change in any release.
//!
//! The attribute keeps the generated code thin: it implements
//! [`TransformMeta`] (plugin name, accepted providers, where the tracing
//! config lives) and a [`Transform`] impl whose methods each call one
//! function of this module. Everything that records traces lives here, where
//! it is unit-tested like any other code (the same split as
//! `tracing-attributes` → `tracing`).

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

pub use elspeth_schema::config::{TracingConfig, TracingProvider};
pub use elspeth_telemetry::{GenerationStart, RowGeneration, TraceStart, Tracer, TransformLabel};

pub use crate::llm::{JobLine, LlmCall, LlmError, LlmErrorKind, LlmJob, LlmResponse, PlannedCall};
pub use crate::row::{BatchContext, Row, RowContext};
pub use crate::store::CallCache;
pub use crate::transform::{BatchRow, CloseReport, RowError, StartContext, StartError, Transform};

/// How long `close` waits for the final flush of a transform's traces.
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

macro_rules! has_tracing_field {
    ($($ty:ident),* $(,)?) => {$(
        impl HasTracing for elspeth_schema::config::$ty {
            fn tracing_config(&self) -> Option<&TracingConfig> {
                self.tracing.as_ref()
            }
        }
    )*};
}

has_tracing_field!(
    AzureLlmOptions,
    AzureMultiQueryLlmOptions,
    OpenRouterLlmOptions,
    OpenRouterMultiQueryLlmOptions,
    AzureBatchLlmOptions,
    OpenRouterBatchLlmOptions,
);

impl HasTracing for elspeth_schema::config::TransformConfig {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        self.tracing()
    }
}

/// What `#[llm_transform(...)]` knows about a transform, as an impl the
/// support functions below are generic over.
pub trait TransformMeta {
    /// Plugin name (`name = "..."`, else the struct name in snake case).
    const PLUGIN: &'static str;
    /// Providers the transform accepts (`tracing(providers = [...])`);
    /// [`ALL_PROVIDERS`] for plain `tracing`, empty when untraced.
    const ACCEPTED: &'static [TracingProvider];
    /// The transform's tracing block, `None` when absent or untraced.
    fn tracing_config(&self) -> Option<&TracingConfig>;
}

/// Asks the registry for the transform's tracer (an incomplete config or an
/// unavailable provider degrades to one warning and a disabled tracer there).
fn start<T: TransformMeta + ?Sized>(this: &T, ctx: &StartContext) -> Result<Tracer, StartError> {
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

/// `Transform::on_start` of a per-call transform: provider check,
/// [`LlmCall::setup`], tracer.
pub async fn on_start_call<T: LlmCall + TransformMeta>(
    this: &mut T,
    ctx: &StartContext,
) -> Result<Tracer, StartError> {
    check_accepted(this, ctx)?;
    LlmCall::setup(this, ctx).await?;
    start(this, ctx)
}

/// `Transform::on_start` of a batch-job transform: provider check,
/// [`LlmJob::setup`], tracer.
pub async fn on_start_job<T: LlmJob + TransformMeta>(
    this: &mut T,
    ctx: &StartContext,
) -> Result<Tracer, StartError> {
    check_accepted(this, ctx)?;
    LlmJob::setup(this, ctx).await?;
    start(this, ctx)
}

/// `Transform::process` of a per-call transform: plan → one trace per row
/// → each planned call as a generation (concurrently, at most
/// [`LlmCall::concurrency`] at once, results kept in plan order) → merge.
///
/// With a run store ([`RowContext::cache`]), a call whose reply is stored
/// is not made: the stored reply is merged, and not traced again (it was
/// traced when it was paid); a row whose every reply is stored records no
/// trace. A paid reply is committed to the store before it is merged.
///
/// A failed call is recorded as an error observation and its error still
/// reaches [`LlmCall::merge`]. A row with no planned call is merged without
/// a trace. Untraced rows take a path that records nothing and allocates
/// nothing beyond what `plan` and `merge` need.
pub async fn process_call<T: LlmCall + TransformMeta>(
    this: &T,
    row: Row,
    ctx: RowContext<'_>,
) -> Result<Row, RowError> {
    let mut calls = this.plan(&row)?;
    if calls.is_empty() {
        // Nothing to call: no trace either (an empty trace is noise).
        return this.merge(row, Vec::new());
    }
    let cache = ctx.cache;
    if cache.is_none() && !ctx.tracer.is_enabled() && calls.len() == 1 {
        // The fast path (no store, untraced, one call): nothing recorded,
        // nothing allocated beyond what `plan` and `merge` need.
        let call = calls.pop().expect("one planned call");
        let result = this.call(&call.request).await;
        return this.merge(row, vec![(call, result)]);
    }
    // Replies already in the run store are used as they are: not paid
    // again, and not traced again (they were traced when they were paid).
    let mut stored: Vec<Option<(PlannedCall, LlmResponse)>> = Vec::new();
    if let Some(c) = cache {
        let mut misses = Vec::with_capacity(calls.len());
        for call in calls {
            match c.lookup(&call.request) {
                Some(hit) => stored.push(Some((call, hit))),
                None => {
                    stored.push(None);
                    misses.push(call);
                }
            }
        }
        calls = misses;
        if calls.is_empty() {
            let results = stored
                .into_iter()
                .flatten()
                .map(|(call, hit)| (call, Ok(hit)))
                .collect();
            return this.merge(row, results);
        }
    }
    let paid = paid_calls(this, calls, cache, &ctx).await;
    let results = if stored.is_empty() {
        paid
    } else {
        // Back into plan order.
        let mut paid = paid.into_iter();
        stored
            .into_iter()
            .filter_map(|s| match s {
                Some((call, hit)) => Some((call, Ok(hit))),
                None => paid.next(),
            })
            .collect()
    };
    this.merge(row, results)
}

/// Pays for `calls` (traced when the transform's tracer is on), results in
/// plan order.
async fn paid_calls<T: LlmCall + TransformMeta>(
    this: &T,
    mut calls: Vec<PlannedCall>,
    cache: Option<&CallCache>,
    ctx: &RowContext<'_>,
) -> Vec<(PlannedCall, Result<LlmResponse, LlmError>)> {
    if !ctx.tracer.is_enabled() {
        if calls.len() == 1 {
            let call = calls.pop().expect("one planned call");
            let result = paid_call(this, cache, &call).await;
            return vec![(call, result)];
        }
        return run_all(this, calls, |call| async move {
            let result = paid_call(this, cache, &call).await;
            (call, result)
        })
        .await;
    }

    let (model_key, model) = this.model_label();
    let trace = ctx.tracer.start_trace(TraceStart {
        plugin: T::PLUGIN,
        token_id: ctx.token_id,
        model_key,
        model,
    });
    let results = if calls.len() == 1 {
        let call = calls.pop().expect("one planned call");
        let result = traced_call(this, &trace, cache, &call).await;
        vec![(call, result)]
    } else {
        let trace = &trace;
        run_all(this, calls, |call| async move {
            let result = traced_call(this, trace, cache, &call).await;
            (call, result)
        })
        .await
    };
    trace.end();
    results
}

/// Runs `f` on every call, at most `concurrency` at once, results in order.
async fn run_all<T, F, Fut>(
    this: &T,
    calls: Vec<PlannedCall>,
    f: F,
) -> Vec<(PlannedCall, Result<LlmResponse, LlmError>)>
where
    T: LlmCall,
    F: FnMut(PlannedCall) -> Fut,
    Fut: Future<Output = (PlannedCall, Result<LlmResponse, LlmError>)>,
{
    let limit = this.concurrency().max(1);
    futures_util::stream::iter(calls)
        .map(f)
        .buffered(limit)
        .collect()
        .await
}

/// Pays for `call` and, when the run has a store, commits the reply before
/// it is used. A reply that cannot be committed fails the row (kind
/// `store`): using it unrecorded would mean paying for it again on resume
/// without the user knowing.
async fn paid_call<T: LlmCall>(
    this: &T,
    cache: Option<&CallCache>,
    call: &PlannedCall,
) -> Result<LlmResponse, LlmError> {
    let result = this.call(&call.request).await;
    if let (Some(cache), Ok(response)) = (cache, &result)
        && let Err(e) = cache.commit(&call.request, response).await
    {
        return Err(LlmError::new(LlmErrorKind::Store, e.to_string()));
    }
    result
}

/// One call recorded as a generation `llm_call` of `trace`; a multi-query
/// call carries its query name as observation metadata.
async fn traced_call<T: LlmCall>(
    this: &T,
    trace: &elspeth_telemetry::Trace,
    cache: Option<&CallCache>,
    call: &PlannedCall,
) -> Result<LlmResponse, LlmError> {
    let generation = trace.generation(GenerationStart {
        system: this.system(),
        request: &call.request,
        server_address: this.server_address(),
        metadata: match &call.query {
            Some(q) => vec![("query".to_string(), Value::from(q.as_str()))],
            None => Vec::new(),
        },
    });
    let result = paid_call(this, cache, call).await;
    match &result {
        Ok(response) => generation.succeed(response),
        Err(error) => generation.fail(error),
    }
    result
}

/// `Transform::batch_size` of a batch-job transform: [`LlmJob::batch_size`], at least 1.
pub fn job_batch_size<T: LlmJob>(this: &T) -> Option<usize> {
    Some(this.batch_size().max(1))
}

/// `Transform::process` of a batch-job transform: the row as a job of one.
pub async fn process_job_row<T: LlmJob + TransformMeta>(
    this: &T,
    row: Row,
    ctx: RowContext<'_>,
) -> Result<Row, RowError> {
    let batch = vec![BatchRow {
        row,
        token_id: ctx.token_id.to_string(),
        index: ctx.index,
    }];
    process_job(
        this,
        batch,
        BatchContext::new(ctx.tracer).with_cache(ctx.cache),
    )
    .await
    .pop()
    .unwrap_or_else(|| {
        Err(RowError::new(
            "batch",
            "the batch job returned no result for the row",
        ))
    })
}

/// `Transform::process_batch` of a batch-job transform.
///
/// Rows whose `plan` fails fail alone; the others become the lines of one
/// job (custom id = the row's token id, made unique within the job). The job is recorded as one span
/// `elspeth.<plugin>` (plugin, deployment or model, rows, batch id, final
/// status; failed when the job did not complete) holding one generation per
/// row rebuilt from the job's output and timed by the job. A job that could
/// not run fails all its rows with its error.
///
/// With a run store ([`BatchContext::cache`]), rows whose reply is stored are
/// merged without being sent (a job whose every row is stored is never
/// submitted again), and each reply of a finished job is committed before
/// its row is merged.
pub async fn process_job<T: LlmJob + TransformMeta>(
    this: &T,
    rows: Vec<BatchRow>,
    ctx: BatchContext<'_>,
) -> Vec<Result<Row, RowError>> {
    let mut out: Vec<Option<Result<Row, RowError>>> = Vec::with_capacity(rows.len());
    let mut pending: Vec<(usize, BatchRow, crate::llm::LlmRequest)> =
        Vec::with_capacity(rows.len());
    for (i, batch_row) in rows.into_iter().enumerate() {
        match this.plan(&batch_row.row) {
            // A row whose reply is in the run store is not sent again.
            Ok(request) => match ctx.cache.and_then(|c| c.lookup(&request)) {
                Some(hit) => out.push(Some(this.merge(batch_row.row, Ok(hit)))),
                None => {
                    out.push(None);
                    pending.push((i, batch_row, request));
                }
            },
            Err(e) => out.push(Some(Err(e))),
        }
    }
    if !pending.is_empty() {
        let finished = run_job(this, pending, ctx).await;
        for (i, result) in finished {
            out[i] = Some(result);
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(RowError::new("batch", "row was lost by the batch job"))))
        .collect()
}

async fn run_job<T: LlmJob + TransformMeta>(
    this: &T,
    pending: Vec<(usize, BatchRow, crate::llm::LlmRequest)>,
    ctx: BatchContext<'_>,
) -> Vec<(usize, Result<Row, RowError>)> {
    let tracer = ctx.tracer;
    let (model_key, model) = this.model_label();
    let mut job = tracer.start_job(T::PLUGIN, model_key, model, pending.len());
    let ids = custom_ids(&pending);
    let lines: Vec<JobLine> = pending
        .iter()
        .zip(&ids)
        .map(|((_, _, request), id)| JobLine {
            custom_id: id.clone(),
            request: request.clone(),
        })
        .collect();
    let outcome = match this.run_job(lines).await {
        Ok(outcome) => outcome,
        Err(error) => {
            job.finish("failed", Some(&error.message));
            return pending
                .into_iter()
                .map(|(i, r, _)| (i, this.merge(r.row, Err(error.clone()))))
                .collect();
        }
    };
    job.set_batch_id(&outcome.batch_id);
    let crate::llm::JobOutcome {
        batch_id: _,
        status,
        mut results,
        started,
        finished,
    } = outcome;
    let system = this.system();
    let mut merged = Vec::with_capacity(pending.len());
    for ((i, r, request), id) in pending.into_iter().zip(&ids) {
        let mut result = results
            .remove(id)
            .unwrap_or_else(|| Err(missing_line(&status)));
        // Committed before the row goes on, like any paid reply.
        if let (Some(cache), Ok(response)) = (ctx.cache, &result)
            && let Err(e) = cache.commit(&request, response).await
        {
            result = Err(LlmError::new(LlmErrorKind::Store, e.to_string()));
        }
        job.record_row(RowGeneration {
            system: system.clone(),
            token_id: &r.token_id,
            custom_id: id,
            request: &request,
            outcome: result.as_ref(),
            start: started,
            end: finished.max(started),
        });
        merged.push((i, this.merge(r.row, result)));
    }
    let error = (status != "completed").then(|| format!("batch job ended with status `{status}`"));
    job.finish(&status, error.as_deref());
    merged
}

/// The JSONL `custom_id` of each row: its token id, made unique within the
/// job (`<token_id>#<n>` for a repeated token id) so results map back to
/// exactly one row.
fn custom_ids(pending: &[(usize, BatchRow, crate::llm::LlmRequest)]) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(pending.len());
    pending
        .iter()
        .map(|(_, r, _)| {
            let mut id = r.token_id.clone();
            let mut n = 1;
            while !seen.insert(id.clone()) {
                n += 1;
                id = format!("{}#{n}", r.token_id);
            }
            id
        })
        .collect()
}

/// The error of a row the job's output does not mention.
fn missing_line(status: &str) -> LlmError {
    LlmError::new(
        LlmErrorKind::Job,
        format!("the batch job (status `{status}`) returned no result for this row"),
    )
}

/// `Transform::close`: flushes the transform's traces within
/// [`CLOSE_FLUSH_DEADLINE`] and reports the exporter's counters; what could
/// not be sent is logged as one warning.
pub async fn close(tracer: Tracer) -> CloseReport {
    close_within(tracer, CLOSE_FLUSH_DEADLINE).await
}

/// [`close`] with an explicit deadline.
pub async fn close_within(tracer: Tracer, deadline: Duration) -> CloseReport {
    let summary = tracer.flush(deadline).await;
    if let Some(s) = &summary {
        let unsent = s.pending + s.failed + s.dropped;
        if unsent > 0 {
            tracing::warn!(
                exporter = %s.exporter,
                sent = s.sent,
                pending = s.pending,
                failed = s.failed,
                dropped = s.dropped,
                "Tracing could not send {unsent} span(s) before close"
            );
        }
    }
    CloseReport { tracing: summary }
}

#[cfg(test)]
mod tests {
    //! The attribute used from inside this crate (`crate = crate`), as the
    //! built-in transforms use it.

    use std::sync::Arc;

    use elspeth_telemetry::{InMemorySink, TracingRegistry};

    use super::*;
    use crate::llm::{GenAiSystem, LlmRequest};

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
        let sink = InMemorySink::new();
        let registry = Arc::new(TracingRegistry::fixed(Arc::new(sink.clone())));
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

    #[test]
    fn custom_ids_are_unique_within_a_job() {
        let row = |token: &str| {
            (
                0,
                BatchRow {
                    row: Row::new(),
                    token_id: token.into(),
                    index: 0,
                },
                LlmRequest::user("m", "p"),
            )
        };
        let pending = [
            row("row-1"),
            row("row-2"),
            row("row-1"),
            row("row-1#2"),
            row("row-1"),
        ];
        assert_eq!(
            custom_ids(&pending),
            ["row-1", "row-2", "row-1#2", "row-1#2#2", "row-1#3"]
        );
    }
}
