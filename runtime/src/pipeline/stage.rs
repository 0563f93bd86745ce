//! One transform of a running pipeline: takes rows from the previous stage,
//! runs them (bounded concurrency, or in chunks), passes them on **in input
//! order**.
//!
//! Per-row stages keep a window of rows (a little more than the transform's
//! concurrency) in an ordered queue: a slow row holds back the rows behind it
//! only up to the window, and memory stays bounded whatever the number of
//! rows. Failed rows are passed on untouched (they skip the remaining
//! transforms). After a cancel no new row is started; after an abort the
//! calls in flight are dropped (their rows are written as cancelled).
//!
//! Each stage has a fail-fast [`Breaker`]: it sees every row's result as the
//! call finishes and stops the run (a cancel with a [`StopReason`]) at the
//! first authentication error, or once the last N rows all failed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use elspeth_telemetry::{Tracer, TransformLabel};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinError, JoinHandle};

use super::cancel::{CancelToken, StopReason};
use super::item::Item;
use crate::row::{BatchContext, RowContext};
use crate::store::CallCache;
use crate::transform::{BatchRow, DynTransform, RowError, RowErrorKind};
use elspeth_telemetry::tier1::CallScope;

/// How a stage feeds its transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `process` per row, up to the transform's concurrency at once.
    PerRow,
    /// `process` per row, in chunks of this many rows: the next chunk starts
    /// when the previous one is done.
    Chunked(usize),
    /// `process_batch` per chunk of this many rows.
    Batch(usize),
}

/// A started transform in the chain.
pub(crate) struct Stage {
    pub label: TransformLabel,
    /// `label` as text: the `elspeth.transform` of this stage's Tier 1
    /// call spans (through [`CallScope`]).
    pub label_text: Arc<str>,
    pub transform: Arc<dyn DynTransform>,
    pub tracer: Tracer,
    /// The transform's view of the run store (`None`: every call is paid).
    pub cache: Option<Arc<CallCache>>,
    pub concurrency: usize,
    pub mode: Mode,
    /// Stops the run when this transform's calls cannot succeed.
    pub breaker: Arc<Breaker>,
}

/// The fail-fast breaker of one stage. Results are recorded in the order
/// the calls finish (inside each row's task, not behind slower rows in the
/// ordered output), so it trips as soon as the evidence is in and no row is
/// started after that.
#[derive(Debug)]
pub(crate) struct Breaker {
    label: TransformLabel,
    /// Rows failed in a row that stop the run (0 = never).
    limit: u32,
    /// Stop at the first 401 / 403.
    on_auth_error: bool,
    /// Rows failed in a row so far (reset by a success).
    run: AtomicU32,
}

impl Breaker {
    pub(super) fn new(label: TransformLabel, limit: u32, on_auth_error: bool) -> Self {
        Self {
            label,
            limit,
            on_auth_error,
            run: AtomicU32::new(0),
        }
    }

    /// Whether `e` is an authentication failure: the key or its rights are
    /// wrong, so every further call fails the same way. A 403 carrying a
    /// content-filter verdict is about the row, not the key.
    fn is_auth(e: &RowError) -> bool {
        matches!(e.http_status, Some(401 | 403)) && e.kind != RowErrorKind::ContentFilter
    }

    /// Whether `e` says the backend or the config is broken rather than
    /// this row being refused: a content-filter verdict is a real answer,
    /// and a cancelled row did not run to a verdict at all.
    fn counts(e: &RowError) -> bool {
        e.kind != RowErrorKind::ContentFilter && e.kind != RowErrorKind::Cancelled
    }

    /// Records one row's result (after its retries); trips `cancel` when
    /// the run must stop.
    pub(super) fn record(&self, result: Result<(), &RowError>, cancel: &CancelToken) {
        let e = match result {
            Ok(()) => {
                self.run.store(0, Ordering::Relaxed);
                return;
            }
            Err(e) => e,
        };
        if self.on_auth_error && Self::is_auth(e) {
            self.trip(
                StopReason::AuthFailed {
                    transform: self.label.clone(),
                    error: e.clone(),
                },
                cancel,
            );
            return;
        }
        if !Self::counts(e) {
            return;
        }
        let run = self.run.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if self.limit > 0 && run >= self.limit {
            self.trip(
                StopReason::ConsecutiveFailures {
                    transform: self.label.clone(),
                    count: self.limit,
                    last_error: e.clone(),
                },
                cancel,
            );
        }
    }

    fn trip(&self, reason: StopReason, cancel: &CancelToken) {
        let message = reason.to_string();
        if cancel.cancel_with(reason) {
            tracing::warn!("stopping the run: {message}");
        }
    }
}

type ItemFuture = Pin<Box<dyn Future<Output = Item> + Send>>;
type ChunkFuture = Pin<Box<dyn Future<Output = Vec<Item>> + Send>>;

/// A task handle that aborts the task when dropped (so that a stage torn
/// down early leaves nothing running).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Outcome<T> {
    Done(T),
    Cancelled,
}

fn panic_error(e: JoinError) -> RowError {
    let detail = if e.is_panic() {
        let payload = e.into_panic();
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
    } else {
        "task cancelled".into()
    };
    RowError::new("panic", format!("the transform panicked: {detail}"))
}

impl Stage {
    /// Runs the stage until its input ends (or the output closes).
    pub(super) async fn run(
        self: Arc<Self>,
        rx: mpsc::Receiver<Item>,
        tx: mpsc::Sender<Item>,
        cancel: CancelToken,
    ) {
        match self.mode {
            Mode::PerRow => self.run_per_row(rx, tx, cancel).await,
            Mode::Chunked(n) => self.run_chunked(rx, tx, cancel, n.max(1)).await,
            Mode::Batch(n) => self.run_batches(rx, tx, cancel, n.max(1)).await,
        }
    }

    fn start_row(
        &self,
        mut item: Item,
        permits: &Arc<Semaphore>,
        cancel: &CancelToken,
    ) -> ItemFuture {
        if item.error.is_some() {
            return Box::pin(std::future::ready(item));
        }
        if cancel.is_cancelled() {
            item.cancel(&self.label, cancel.stop_reason().as_ref());
            return Box::pin(std::future::ready(item));
        }
        let Item {
            index,
            token_id,
            row,
            identity,
            trace,
            span,
            read_at,
            ..
        } = item;
        let scope = CallScope {
            row: span.link(),
            transform: self.label_text.clone(),
        };
        let original = row.clone();
        let transform = self.transform.clone();
        let tracer = self.tracer.clone();
        let cache = self.cache.clone();
        let permits = permits.clone();
        let token = token_id.clone();
        let task_cancel = cancel.clone();
        let breaker = self.breaker.clone();
        let handle = AbortOnDrop(tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return Outcome::Cancelled;
            };
            if task_cancel.is_cancelled() {
                // Not started before the stop: not started at all.
                return Outcome::Cancelled;
            }
            let ctx = RowContext::new(&token, index, &tracer)
                .with_cache(cache.as_deref())
                .with_trace(trace);
            let outcome = tokio::select! {
                biased;
                () = task_cancel.aborted() => Outcome::Cancelled,
                result = scope.scope(transform.process(row, ctx)) => Outcome::Done(result),
            };
            match &outcome {
                Outcome::Done(result) => {
                    breaker.record(result.as_ref().map(|_| ()), &task_cancel);
                }
                Outcome::Cancelled => {}
            }
            outcome
        }));
        let label = self.label.clone();
        let cancel = cancel.clone();
        Box::pin(async move {
            let mut item = Item {
                index,
                token_id,
                row: original,
                error: None,
                identity,
                trace,
                span,
                read_at,
            };
            match handle.await {
                Ok(Outcome::Done(Ok(row))) => item.row = row,
                Ok(Outcome::Done(Err(e))) => item.fail(&label, &e),
                Ok(Outcome::Cancelled) => item.cancel(&label, cancel.stop_reason().as_ref()),
                Err(e) => item.fail(&label, &panic_error(e)),
            }
            item
        })
    }

    async fn run_per_row(
        &self,
        mut rx: mpsc::Receiver<Item>,
        tx: mpsc::Sender<Item>,
        cancel: CancelToken,
    ) {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let window = self.concurrency.max(1) * 2 + 16;
        let mut inflight: FuturesOrdered<ItemFuture> = FuturesOrdered::new();
        let mut input_open = true;
        loop {
            tokio::select! {
                biased;
                Some(item) = inflight.next(), if !inflight.is_empty() => {
                    if tx.send(item).await.is_err() {
                        return;
                    }
                }
                next = rx.recv(), if input_open && inflight.len() < window => match next {
                    Some(item) => inflight.push_back(self.start_row(item, &permits, &cancel)),
                    None => input_open = false,
                },
                else => return,
            }
        }
    }

    async fn run_chunked(
        &self,
        mut rx: mpsc::Receiver<Item>,
        tx: mpsc::Sender<Item>,
        cancel: CancelToken,
        n: usize,
    ) {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        loop {
            let mut chunk = Vec::with_capacity(n.min(4096));
            while chunk.len() < n {
                match rx.recv().await {
                    Some(item) => chunk.push(item),
                    None => break,
                }
            }
            if chunk.is_empty() {
                return;
            }
            let mut running: FuturesOrdered<ItemFuture> = chunk
                .into_iter()
                .map(|item| self.start_row(item, &permits, &cancel))
                .collect();
            while let Some(item) = running.next().await {
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        }
    }

    fn start_chunk(&self, items: Vec<Item>, cancel: &CancelToken) -> ChunkFuture {
        let mut items = items;
        if cancel.is_cancelled() {
            let reason = cancel.stop_reason();
            for item in items.iter_mut().filter(|i| i.error.is_none()) {
                item.cancel(&self.label, reason.as_ref());
            }
            return Box::pin(std::future::ready(items));
        }
        let rows: Vec<BatchRow> = items
            .iter()
            .filter(|i| i.error.is_none())
            .map(|i| BatchRow {
                row: i.row.clone(),
                token_id: i.token_id.clone(),
                index: i.index,
            })
            .collect();
        if rows.is_empty() {
            return Box::pin(std::future::ready(items));
        }
        let expected = rows.len();
        // A job's calls belong to no one row: roots carrying the transform.
        let scope = CallScope {
            row: None,
            transform: self.label_text.clone(),
        };
        let transform = self.transform.clone();
        let tracer = self.tracer.clone();
        let cache = self.cache.clone();
        let task_cancel = cancel.clone();
        let breaker = self.breaker.clone();
        let handle = AbortOnDrop(tokio::spawn(async move {
            let outcome = tokio::select! {
                biased;
                () = task_cancel.aborted() => Outcome::Cancelled,
                results = scope.scope(transform.process_batch(rows, BatchContext::new(&tracer).with_cache(cache.as_deref()))) => Outcome::Done(results),
            };
            if let Outcome::Done(results) = &outcome {
                for result in results {
                    breaker.record(result.as_ref().map(|_| ()), &task_cancel);
                }
            }
            outcome
        }));
        let label = self.label.clone();
        let cancel = cancel.clone();
        Box::pin(async move {
            let outcome = handle.await;
            let mut results = match outcome {
                Ok(Outcome::Done(results)) if results.len() == expected => {
                    Some(results.into_iter())
                }
                Ok(Outcome::Done(results)) => {
                    let e = RowError::new(
                        "batch",
                        format!(
                            "the transform returned {} results for {expected} rows",
                            results.len()
                        ),
                    );
                    for item in items.iter_mut().filter(|i| i.error.is_none()) {
                        item.fail(&label, &e);
                    }
                    None
                }
                Ok(Outcome::Cancelled) => {
                    let reason = cancel.stop_reason();
                    for item in items.iter_mut().filter(|i| i.error.is_none()) {
                        item.cancel(&label, reason.as_ref());
                    }
                    None
                }
                Err(e) => {
                    let e = panic_error(e);
                    for item in items.iter_mut().filter(|i| i.error.is_none()) {
                        item.fail(&label, &e);
                    }
                    None
                }
            };
            if let Some(results) = &mut results {
                for item in items.iter_mut().filter(|i| i.error.is_none()) {
                    match results.next() {
                        Some(Ok(row)) => item.row = row,
                        Some(Err(e)) => item.fail(&label, &e),
                        None => {
                            item.fail(&label, &RowError::new("batch", "no result for this row"))
                        }
                    }
                }
            }
            items
        })
    }

    async fn run_batches(
        &self,
        mut rx: mpsc::Receiver<Item>,
        tx: mpsc::Sender<Item>,
        cancel: CancelToken,
        n: usize,
    ) {
        let mut inflight: FuturesOrdered<ChunkFuture> = FuturesOrdered::new();
        let mut pending: Vec<Item> = Vec::new();
        let mut pending_ok = 0usize;
        let mut input_open = true;
        let limit = self.concurrency.max(1);
        loop {
            if (pending_ok >= n || (!input_open && !pending.is_empty())) && inflight.len() < limit {
                let chunk = std::mem::take(&mut pending);
                pending_ok = 0;
                inflight.push_back(self.start_chunk(chunk, &cancel));
                continue;
            }
            tokio::select! {
                biased;
                Some(items) = inflight.next(), if !inflight.is_empty() => {
                    for item in items {
                        if tx.send(item).await.is_err() {
                            return;
                        }
                    }
                }
                next = rx.recv(), if input_open && pending_ok < n => match next {
                    Some(item) => {
                        if item.error.is_none() {
                            pending_ok += 1;
                        }
                        pending.push(item);
                    }
                    None => input_open = false,
                },
                else => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label() -> TransformLabel {
        TransformLabel {
            index: 0,
            plugin: "azure_llm".into(),
        }
    }

    fn status(kind: &str, code: u16) -> RowError {
        let mut e = RowError::new(kind, format!("HTTP {code}"));
        e.http_status = Some(code);
        e
    }

    #[test]
    fn failures_in_a_row_trip_and_a_success_resets() {
        let cancel = CancelToken::new();
        let breaker = Breaker::new(label(), 3, true);
        let e500 = status("llm", 500);
        for _ in 0..2 {
            breaker.record(Err(&e500), &cancel);
        }
        breaker.record(Ok(()), &cancel);
        for _ in 0..2 {
            breaker.record(Err(&e500), &cancel);
        }
        // Neither refusals nor cancelled rows count (or reset).
        breaker.record(Err(&status("content_filter", 403)), &cancel);
        breaker.record(Err(&RowError::new("cancelled", "stopped")), &cancel);
        assert!(!cancel.is_cancelled());
        breaker.record(Err(&RowError::new("parse", "not JSON")), &cancel);
        assert!(cancel.is_cancelled());
        assert_eq!(
            cancel.stop_reason(),
            Some(StopReason::ConsecutiveFailures {
                transform: label(),
                count: 3,
                last_error: RowError::new("parse", "not JSON"),
            })
        );
    }

    #[test]
    fn auth_errors_trip_at_once_unless_disabled() {
        let cancel = CancelToken::new();
        Breaker::new(label(), 0, true).record(Err(&status("llm", 403)), &cancel);
        assert!(matches!(
            cancel.stop_reason(),
            Some(StopReason::AuthFailed { error, .. }) if error.http_status == Some(403)
        ));
        let cancel = CancelToken::new();
        let off = Breaker::new(label(), 0, false);
        for _ in 0..100 {
            off.record(Err(&status("llm", 401)), &cancel);
        }
        assert!(!cancel.is_cancelled(), "both breakers off");
    }
}
