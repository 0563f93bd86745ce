//! The batch-job engine: rows become the lines of one job, recorded as a
//! job span with one generation per row.

use elspeth_telemetry::RowGeneration;

use super::TransformMeta;
use crate::llm::{JobLine, JobOutcome, LlmError, LlmErrorKind, LlmJob, LlmRequest};
use crate::row::{BatchContext, Row, RowContext};
use crate::transform::{BatchRow, RowError, RowErrorKind};

/// Runs the rows of a batch-job transform (an [`LlmJob`]).
///
/// Rows whose `plan` fails fail alone; the others become the lines of one
/// job (custom id = the row's token id, made unique within the job). The
/// job is recorded as one span `elspeth.<plugin>` (plugin, deployment or
/// model, rows, batch id, final status; failed when the job did not
/// complete) holding one generation per row rebuilt from the job's output
/// and timed by the job. A job that could not run fails all its rows with
/// its error.
///
/// With a run store ([`BatchContext::cache`]), rows whose reply is stored
/// are merged without being sent (a job whose every row is stored is never
/// submitted again), and each reply of a finished job is committed before
/// its row is merged.
#[derive(Debug)]
pub struct JobEngine<'t, T: ?Sized> {
    transform: &'t T,
}

impl<T: ?Sized> Clone for JobEngine<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for JobEngine<'_, T> {}

impl<'t, T: LlmJob + TransformMeta> JobEngine<'t, T> {
    /// The engine of `transform`.
    pub fn new(transform: &'t T) -> Self {
        Self { transform }
    }

    /// `Transform::batch_size`: [`LlmJob::batch_size`], at least 1.
    pub fn batch_size(self) -> Option<usize> {
        Some(self.transform.batch_size().max(1))
    }

    /// `Transform::process`: the row as a job of one.
    pub async fn process_row(self, row: Row, ctx: RowContext<'_>) -> Result<Row, RowError> {
        let batch = vec![BatchRow {
            row,
            token_id: ctx.token_id.to_string(),
            index: ctx.index,
        }];
        self.process_batch(batch, BatchContext::new(ctx.tracer).with_cache(ctx.cache))
            .await
            .pop()
            .unwrap_or_else(|| {
                Err(RowError::new(
                    RowErrorKind::Batch,
                    "the batch job returned no result for the row",
                ))
            })
    }

    /// `Transform::process_batch`: see the type's docs.
    pub async fn process_batch(
        self,
        rows: Vec<BatchRow>,
        ctx: BatchContext<'_>,
    ) -> Vec<Result<Row, RowError>> {
        let this = self.transform;
        let mut out: Vec<Option<Result<Row, RowError>>> = Vec::with_capacity(rows.len());
        let mut pending: Vec<(usize, BatchRow, LlmRequest)> = Vec::with_capacity(rows.len());
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
            let finished = self.run_job(pending, ctx).await;
            for (i, result) in finished {
                out[i] = Some(result);
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(RowError::new(
                        RowErrorKind::Batch,
                        "row was lost by the batch job",
                    ))
                })
            })
            .collect()
    }

    /// Runs the rows not served from the store as one job.
    async fn run_job(
        self,
        pending: Vec<(usize, BatchRow, LlmRequest)>,
        ctx: BatchContext<'_>,
    ) -> Vec<(usize, Result<Row, RowError>)> {
        let this = self.transform;
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
        let JobOutcome {
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
                .unwrap_or_else(|| Err(missing_line(status.as_str())));
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
        let error =
            (!status.is_completed()).then(|| format!("batch job ended with status `{status}`"));
        job.finish(status.as_str(), error.as_deref());
        merged
    }
}

/// The JSONL `custom_id` of each row: its token id, made unique within the
/// job (`<token_id>#<n>` for a repeated token id) so results map back to
/// exactly one row.
fn custom_ids(pending: &[(usize, BatchRow, LlmRequest)]) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
