//! The per-call engine: a row's planned calls, served from the run store
//! or paid (traced, bounded), then merged.

use futures_util::StreamExt;
use serde_json::Value;

use elspeth_telemetry::{GenerationStart, Trace, TraceStart};

use super::TransformMeta;
use crate::llm::{LlmCall, LlmError, LlmErrorKind, LlmResponse, PlannedCall};
use crate::row::{Row, RowContext};
use crate::store::CallCache;
use crate::transform::RowError;

/// One planned call with its outcome, in plan order.
pub(super) type CallResult = (PlannedCall, Result<LlmResponse, LlmError>);

/// Runs the calls of a per-call transform (an [`LlmCall`]) for one row.
///
/// [`process`](Self::process) is the whole of `Transform::process`: plan →
/// calls → merge. [`run`](Self::run) makes calls the author planned by
/// other means (for a transform that merges on its own).
///
/// - With a run store ([`RowContext::cache`]), a call whose reply is stored
///   is not made: the stored reply is merged, and not traced again (it was
///   traced when it was paid); a row whose every reply is stored records no
///   trace. A paid reply is committed to the store before it is merged.
/// - Traced ([`RowContext::tracer`] enabled): one trace
///   `elspeth.<plugin>` per row holding one generation `llm_call` per paid
///   call (a multi-query call carries its query name as metadata); a
///   failed call is recorded as an error observation and its error still
///   reaches [`LlmCall::merge`].
/// - At most [`LlmCall::concurrency`] calls in flight; results in plan
///   order.
/// - Untraced, without a store, with one call: nothing recorded and
///   nothing allocated beyond what `plan` and `merge` need.
#[derive(Debug)]
pub struct CallEngine<'t, T: ?Sized> {
    transform: &'t T,
}

impl<T: ?Sized> Clone for CallEngine<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for CallEngine<'_, T> {}

impl<'t, T: LlmCall + TransformMeta> CallEngine<'t, T> {
    /// The engine of `transform`.
    pub fn new(transform: &'t T) -> Self {
        Self { transform }
    }

    /// `Transform::process`: plans the row's calls, runs them and merges
    /// the replies. A row with no planned call is merged without a trace.
    pub async fn process(self, row: Row, ctx: RowContext<'_>) -> Result<Row, RowError> {
        let this = self.transform;
        let mut calls = this.plan(&row)?;
        if calls.is_empty() {
            // Nothing to call: no trace either (an empty trace is noise).
            return this.merge(row, Vec::new());
        }
        if ctx.cache.is_none() && !ctx.tracer.is_enabled() && calls.len() == 1 {
            // The fast path (no store, untraced, one call): nothing recorded,
            // nothing allocated beyond what `plan` and `merge` need.
            let call = calls.pop().expect("one planned call");
            let result = this.call(&call.request).await;
            return this.merge(row, vec![(call, result)]);
        }
        let results = self.run(calls, &ctx).await;
        this.merge(row, results)
    }

    /// Runs `calls` for the row of `ctx` (stored replies served, the others
    /// paid and committed, traced when the tracer is on) and returns every
    /// outcome in plan order.
    pub async fn run(self, mut calls: Vec<PlannedCall>, ctx: &RowContext<'_>) -> Vec<CallResult> {
        let cache = ctx.cache;
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
                return stored
                    .into_iter()
                    .flatten()
                    .map(|(call, hit)| (call, Ok(hit)))
                    .collect();
            }
        }
        let paid = self.paid_calls(calls, cache, ctx).await;
        if stored.is_empty() {
            return paid;
        }
        // Back into plan order.
        let mut paid = paid.into_iter();
        stored
            .into_iter()
            .filter_map(|s| match s {
                Some((call, hit)) => Some((call, Ok(hit))),
                None => paid.next(),
            })
            .collect()
    }

    /// Pays for `calls` (traced when the transform's tracer is on), results
    /// in plan order.
    async fn paid_calls(
        self,
        mut calls: Vec<PlannedCall>,
        cache: Option<&CallCache>,
        ctx: &RowContext<'_>,
    ) -> Vec<CallResult> {
        if !ctx.tracer.is_enabled() {
            if calls.len() == 1 {
                let call = calls.pop().expect("one planned call");
                let result = self.paid_call(cache, &call).await;
                return vec![(call, result)];
            }
            return self
                .run_all(calls, |call| async move {
                    let result = self.paid_call(cache, &call).await;
                    (call, result)
                })
                .await;
        }

        let (model_key, model) = self.transform.model_label();
        let trace = ctx.tracer.start_trace(TraceStart {
            plugin: T::PLUGIN,
            token_id: ctx.token_id,
            model_key,
            model,
            row: ctx.trace,
        });
        let results = if calls.len() == 1 {
            let call = calls.pop().expect("one planned call");
            let result = self.traced_call(&trace, cache, &call).await;
            vec![(call, result)]
        } else {
            let trace = &trace;
            self.run_all(calls, |call| async move {
                let result = self.traced_call(trace, cache, &call).await;
                (call, result)
            })
            .await
        };
        trace.end();
        results
    }

    /// Runs `f` on every call, at most `concurrency` at once, results in order.
    async fn run_all<F, Fut>(self, calls: Vec<PlannedCall>, f: F) -> Vec<CallResult>
    where
        F: FnMut(PlannedCall) -> Fut,
        Fut: Future<Output = CallResult>,
    {
        let limit = self.transform.concurrency().max(1);
        futures_util::stream::iter(calls)
            .map(f)
            .buffered(limit)
            .collect()
            .await
    }

    /// Pays for `call` and, when the run has a store, commits the reply
    /// before it is used. A reply that cannot be committed fails the row
    /// (kind `store`): using it unrecorded would mean paying for it again on
    /// resume without the user knowing.
    async fn paid_call(
        self,
        cache: Option<&CallCache>,
        call: &PlannedCall,
    ) -> Result<LlmResponse, LlmError> {
        let result = self.transform.call(&call.request).await;
        if let (Some(cache), Ok(response)) = (cache, &result)
            && let Err(e) = cache.commit(&call.request, response).await
        {
            return Err(LlmError::new(LlmErrorKind::Store, e.to_string()));
        }
        result
    }

    /// One call recorded as a generation `llm_call` of `trace`; a
    /// multi-query call carries its query name as observation metadata.
    async fn traced_call(
        self,
        trace: &Trace,
        cache: Option<&CallCache>,
        call: &PlannedCall,
    ) -> Result<LlmResponse, LlmError> {
        let generation = trace.generation(GenerationStart {
            system: self.transform.system(),
            request: &call.request,
            server_address: self.transform.server_address(),
            metadata: match &call.query {
                Some(q) => vec![("query".to_string(), Value::from(q.as_str()))],
                None => Vec::new(),
            },
        });
        let result = self.paid_call(cache, call).await;
        match &result {
            Ok(response) => generation.succeed(response),
            Err(error) => generation.fail(error),
        }
        result
    }
}
