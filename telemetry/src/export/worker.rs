//! The bounded queue, the background worker and the delivery tasks.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::{ExportConfig, SendOutcome, Transport};
use crate::record::{GenerationData, SpanRecord, TraceInfo};
use crate::sink::{BoxFuture, ExportSummary, SpanSink};
use crate::spool::SpanSpool;

/// Attribute-value limits tried, in order, for a single span the backend
/// still refuses with 413.
const TRUNCATION_LEVELS: [usize; 3] = [64 * 1024, 8 * 1024, 1024];

/// Most delivered batches waiting for a recording thread to free them (see
/// [`State::returned`]); past it the delivery task frees a batch itself.
const MAX_RETURNED: usize = 4;

/// The worker needs a Tokio runtime and none was running.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tracing export needs a Tokio runtime, and none is running on this thread")]
pub struct NoRuntime;

/// A Tier 2 exporter: bounded queue + background batching + a [`Transport`].
/// See the [module docs](super) for the guarantees.
pub struct Exporter {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("label", &self.shared.label)
            .field("summary", &self.summary())
            .finish()
    }
}

struct Shared {
    label: String,
    config: ExportConfig,
    transport: Arc<dyn Transport>,
    /// The queue and the counters, under one lock: a summary is a
    /// consistent snapshot (every span in exactly one state), never a sum
    /// of counters read at different instants.
    state: Mutex<State>,
    /// Wakes the worker: a full batch, a flush, a shutdown, a disable.
    wake: Notify,
    /// Wakes flush waiters whenever work completes.
    idle: Notify,
    /// Wakes delivery tasks to give up (shutdown deadline passed).
    abandon: Notify,
    flushers: AtomicUsize,
    disabled: AtomicBool,
    closing: AtomicBool,
    abandoned: AtomicBool,
    warned_give_up: AtomicBool,
    warned_rejected: AtomicBool,
    warned_spool: AtomicBool,
    /// Where undelivered spans are kept for replay (`None`: counted as
    /// failed).
    spool: Mutex<Option<Arc<dyn SpanSpool>>>,
    last_logged: Mutex<Option<ExportSummary>>,
}

/// The queue and where every recorded span stands.
struct State {
    queue: VecDeque<SpanRecord>,
    counts: Counts,
    /// Delivered batches (already counted as sent), freed by the next
    /// [`enqueue`](SpanSink::enqueue) outside the lock: the spans' memory
    /// was allocated by the recording thread, and freeing it there keeps
    /// the allocator's free lists local to that thread (freed by the
    /// delivery task, every span's chunks went back across threads, and
    /// the recording thread's allocations fought the delivery task's frees
    /// for the allocator's lock). At most [`MAX_RETURNED`].
    returned: Vec<Vec<SpanRecord>>,
    /// Emptied batch buffers for [`Shared::take_batch`] to fill again (no
    /// new `batch_size`-span buffer per batch).
    spare: Vec<Vec<SpanRecord>>,
}

/// `recorded = sent + dropped + failed + kept + queue.len() + in_flight`,
/// always
/// (each transition moves spans between states under the lock).
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    recorded: u64,
    sent: u64,
    dropped: u64,
    failed: u64,
    /// Handed to the spool for a later replay.
    kept: u64,
    /// Taken from the queue, not yet resolved as sent, failed or kept.
    in_flight: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Exporter {
    /// Starts an exporter on the current Tokio runtime.
    pub fn start(
        transport: Arc<dyn Transport>,
        config: ExportConfig,
    ) -> Result<Arc<Self>, NoRuntime> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| NoRuntime)?;
        let config = config.sanitized();
        let shared = Arc::new(Shared {
            label: transport.label(),
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(config.max_queue.min(1024)),
                counts: Counts::default(),
                returned: Vec::new(),
                spare: Vec::new(),
            }),
            config,
            transport,
            wake: Notify::new(),
            idle: Notify::new(),
            abandon: Notify::new(),
            flushers: AtomicUsize::new(0),
            disabled: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            warned_give_up: AtomicBool::new(false),
            warned_rejected: AtomicBool::new(false),
            warned_spool: AtomicBool::new(false),
            spool: Mutex::new(None),
            last_logged: Mutex::new(None),
        });
        let worker = handle.spawn(run(shared.clone()));
        Ok(Arc::new(Self {
            shared,
            worker: Mutex::new(Some(worker)),
        }))
    }

    /// Spans accepted by [`enqueue`](SpanSink::enqueue) so far (sampled-out
    /// traces never get here). Always `sent + dropped + failed + pending`.
    pub fn enqueued(&self) -> u64 {
        lock(&self.shared.state).counts.recorded
    }

    /// Keeps what this exporter cannot deliver (given up on after its
    /// retries, or still queued or in flight at shutdown) in `spool`,
    /// counted as `kept`, instead of counting it as failed.
    pub fn set_spool(&self, spool: Arc<dyn SpanSpool>) {
        *lock(&self.shared.spool) = Some(spool);
    }

    /// Whether a 401/403 disabled this exporter.
    pub fn is_disabled(&self) -> bool {
        self.shared.disabled.load(Ordering::Acquire)
    }

    /// Whether [`shutdown`](SpanSink::shutdown) ran (or the exporter was
    /// dropped): it accepts nothing new.
    pub fn is_closed(&self) -> bool {
        self.shared.closing.load(Ordering::Acquire)
    }

    /// The export settings in use.
    pub fn config(&self) -> &ExportConfig {
        &self.shared.config
    }

    async fn wait_idle(&self, deadline: Duration) {
        let shared = &self.shared;
        let until = Instant::now() + deadline;
        shared.flushers.fetch_add(1, Ordering::AcqRel);
        shared.wake.notify_one();
        loop {
            let idle = shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if shared.is_idle() {
                break;
            }
            shared.wake.notify_one();
            if tokio::time::timeout_at(until, idle).await.is_err() {
                break;
            }
        }
        shared.flushers.fetch_sub(1, Ordering::AcqRel);
    }

    /// Waits for the queue to drain (at most `deadline`). Logs at debug
    /// level only: the one summary line per exporter is shutdown's, so a
    /// run never prints two that disagree.
    async fn flush_impl(&self, deadline: Duration) -> ExportSummary {
        self.wait_idle(deadline).await;
        let summary = self.summary_impl();
        tracing::debug!(
            exporter = %summary.exporter,
            recorded = summary.recorded,
            sent = summary.sent,
            dropped = summary.dropped,
            failed = summary.failed,
            pending = summary.pending,
            "tracing flush"
        );
        summary
    }

    async fn shutdown_impl(&self, deadline: Duration) -> ExportSummary {
        let shared = &self.shared;
        // Time left after giving up, for the delivery tasks to settle what
        // they hold. With a spool that is a local disk write, worth up to
        // half a second past the deadline rather than losing the spans (the
        // deadline may be all spent by the transforms' own flushes).
        let grace = if shared.has_spool() {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(50).min(deadline / 2)
        };
        shared.closing.store(true, Ordering::Release);
        shared.wake.notify_one();
        self.wait_idle(deadline.saturating_sub(grace)).await;
        // Whatever is left now will not be sent: give up on it, counted.
        shared.abandoned.store(true, Ordering::Release);
        shared.abandon.notify_waiters();
        shared.wake.notify_one();
        let worker = lock(&self.worker).take();
        if let Some(worker) = worker
            && tokio::time::timeout(grace, worker).await.is_err()
        {
            tracing::debug!(exporter = %shared.label, "export worker still busy after shutdown");
        }
        let left = shared.take_queued();
        shared.keep_or_fail(left);
        shared.transport.on_shutdown();
        let summary = self.summary_impl();
        shared.log_summary(&summary);
        summary
    }

    fn summary_impl(&self) -> ExportSummary {
        let s = &self.shared;
        let state = lock(&s.state);
        let c = state.counts;
        ExportSummary {
            exporter: s.label.clone(),
            recorded: c.recorded,
            sent: c.sent,
            dropped: c.dropped,
            failed: c.failed,
            pending: state.queue.len() as u64 + c.in_flight,
            kept: c.kept,
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        // Not shut down explicitly: let the worker send what is queued and stop.
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

impl SpanSink for Exporter {
    fn label(&self) -> String {
        self.shared.label.clone()
    }

    fn enqueue(&self, span: SpanRecord) {
        let s = &self.shared;
        let disabled = s.disabled.load(Ordering::Acquire);
        let closed = s.closing.load(Ordering::Acquire) && s.abandoned.load(Ordering::Acquire);
        let (len, evicted, returned) = {
            let mut state = lock(&s.state);
            state.counts.recorded += 1;
            if disabled {
                state.counts.failed += 1;
                return;
            }
            if closed {
                state.counts.dropped += 1;
                return;
            }
            let evicted = if state.queue.len() >= s.config.max_queue {
                state.counts.dropped += 1;
                state.queue.pop_front()
            } else {
                None
            };
            state.queue.push_back(span);
            (state.queue.len(), evicted, state.returned.pop())
        };
        // Freed outside the lock.
        drop(evicted);
        if let Some(mut batch) = returned {
            super::recycle::keep(&mut batch);
            let mut state = lock(&s.state);
            if state.spare.len() < s.config.max_in_flight {
                state.spare.push(batch);
            }
        }
        if len == s.config.batch_size {
            s.wake.notify_one();
        }
    }

    fn flush(&self, deadline: Duration) -> BoxFuture<'_, ExportSummary> {
        Box::pin(self.flush_impl(deadline))
    }

    fn summary(&self) -> ExportSummary {
        self.summary_impl()
    }

    fn shutdown(&self, deadline: Duration) -> BoxFuture<'_, ExportSummary> {
        Box::pin(self.shutdown_impl(deadline))
    }

    fn recycled_generation(&self) -> Option<Box<GenerationData>> {
        super::recycle::generation()
    }

    fn recycled_trace(&self) -> Option<Arc<TraceInfo>> {
        super::recycle::trace()
    }
}

impl Shared {
    fn is_idle(&self) -> bool {
        let state = lock(&self.state);
        state.queue.is_empty() && state.counts.in_flight == 0
    }

    /// Takes a batch: a full one, or (when `partial`) whatever is queued.
    fn take_batch(&self, partial: bool) -> Option<Vec<SpanRecord>> {
        let mut state = lock(&self.state);
        let n = state.queue.len();
        if n == 0 || (n < self.config.batch_size && !partial) {
            return None;
        }
        let take = n.min(self.config.batch_size);
        let mut batch = state
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.config.batch_size));
        batch.extend(state.queue.drain(..take));
        state.counts.in_flight += take as u64;
        Some(batch)
    }

    /// Gives up on every queued span (counted as failed); returns them so
    /// they are freed outside the lock.
    #[must_use]
    fn fail_queued(&self) -> VecDeque<SpanRecord> {
        let mut state = lock(&self.state);
        state.counts.failed += state.queue.len() as u64;
        std::mem::take(&mut state.queue)
    }

    fn resolve_sent(&self, n: u64) {
        let mut state = lock(&self.state);
        state.counts.sent += n;
        state.counts.in_flight -= n;
    }

    /// Resolves a delivered batch as sent and hands it back to be freed by
    /// a recording thread (see [`State::returned`]).
    fn resolve_sent_batch(&self, spans: Vec<SpanRecord>) {
        let mut state = lock(&self.state);
        let n = spans.len() as u64;
        state.counts.sent += n;
        state.counts.in_flight -= n;
        let spans = if state.returned.len() < MAX_RETURNED {
            state.returned.push(spans);
            None
        } else {
            Some(spans)
        };
        drop(state);
        drop(spans);
    }

    fn resolve_failed(&self, n: u64) {
        let mut state = lock(&self.state);
        state.counts.failed += n;
        state.counts.in_flight -= n;
    }

    /// Takes every queued span, counted in flight until
    /// [`keep_or_fail`](Self::keep_or_fail) settles it.
    fn take_queued(&self) -> Vec<SpanRecord> {
        let mut state = lock(&self.state);
        state.counts.in_flight += state.queue.len() as u64;
        state.queue.drain(..).collect()
    }

    /// Settles in-flight `spans` that will not be delivered now: kept in
    /// the spool as far as its cap allows, the rest failed.
    fn keep_or_fail(&self, spans: Vec<SpanRecord>) {
        if spans.is_empty() {
            return;
        }
        let n = spans.len() as u64;
        let spool = lock(&self.spool).clone();
        let kept = match &spool {
            None => 0,
            Some(spool) => match spool.keep(&self.label, &spans) {
                Ok(kept) => {
                    let kept = (kept as u64).min(n);
                    if kept < n && !self.warned_spool.swap(true, Ordering::AcqRel) {
                        tracing::warn!(
                            exporter = %self.label,
                            cap = spool.cap(),
                            "{}: the run store keeps at most {} undelivered spans; {} more could not be kept and are counted as failed (raise `store.max_kept_spans`, or run `elspeth traces replay`)",
                            self.label,
                            spool.cap(),
                            n - kept
                        );
                    }
                    kept
                }
                Err(e) => {
                    if !self.warned_spool.swap(true, Ordering::AcqRel) {
                        tracing::warn!(exporter = %self.label, error = %e, "{}: {e}; those spans are counted as failed", self.label);
                    }
                    0
                }
            },
        };
        drop(spans);
        let mut state = lock(&self.state);
        state.counts.kept += kept;
        state.counts.failed += n - kept;
        state.counts.in_flight -= n;
    }

    fn has_spool(&self) -> bool {
        lock(&self.spool).is_some()
    }

    fn log_summary(&self, s: &ExportSummary) {
        let mut last = lock(&self.last_logged);
        if last.as_ref() == Some(s) {
            return;
        }
        *last = Some(s.clone());
        drop(last);
        if s.unsent() > 0 {
            tracing::warn!(
                exporter = %s.exporter,
                recorded = s.recorded,
                sent = s.sent,
                dropped = s.dropped,
                failed = s.failed,
                pending = s.pending,
                kept = s.kept,
                "tracing export summary for {}: {} spans sent, {} dropped (queue full or recorded after close), {} failed, {} not sent yet, {} kept for replay ({} recorded)",
                s.exporter, s.sent, s.dropped, s.failed, s.pending, s.kept, s.recorded
            );
        } else {
            tracing::info!(
                exporter = %s.exporter,
                recorded = s.recorded,
                sent = s.sent,
                "tracing export summary for {}: {} spans sent, 0 dropped, 0 failed ({} recorded)",
                s.exporter, s.sent, s.recorded
            );
        }
    }

    /// Runs `fut` unless the exporter is abandoned (shutdown deadline passed)
    /// first; `None` when abandoned.
    async fn unless_abandoned<F: Future>(&self, fut: F) -> Option<F::Output> {
        let abandoned = self.abandon.notified();
        tokio::pin!(abandoned);
        abandoned.as_mut().enable();
        if self.abandoned.load(Ordering::Acquire) {
            return None;
        }
        tokio::select! {
            biased;
            _ = abandoned => None,
            out = fut => Some(out),
        }
    }
}

/// The worker: takes batches off the queue and starts their delivery.
async fn run(shared: Arc<Shared>) {
    let mut tasks: JoinSet<()> = JoinSet::new();
    let interval = shared.config.interval;
    let mut next_tick = Instant::now() + interval;
    loop {
        while tasks.try_join_next().is_some() {}
        if shared.abandoned.load(Ordering::Acquire) {
            let left = shared.take_queued();
            shared.keep_or_fail(left);
            break;
        }
        if shared.disabled.load(Ordering::Acquire) {
            drop(shared.fail_queued());
        }
        let now = Instant::now();
        let tick_due = now >= next_tick;
        let urgent =
            shared.flushers.load(Ordering::Acquire) > 0 || shared.closing.load(Ordering::Acquire);
        if tasks.len() < shared.config.max_in_flight
            && let Some(batch) = shared.take_batch(urgent || tick_due)
        {
            if tick_due {
                next_tick = now + interval;
            }
            shared.transport.observe(&batch);
            tasks.spawn(deliver(shared.clone(), batch));
            continue;
        }
        if tick_due {
            next_tick = now + interval;
        }
        if tasks.is_empty() && shared.is_idle() {
            shared.idle.notify_waiters();
            if shared.closing.load(Ordering::Acquire) {
                break;
            }
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = tokio::time::sleep_until(next_tick) => {}
        }
    }
    while tasks.join_next().await.is_some() {}
    shared.idle.notify_waiters();
}

struct Chunk {
    spans: Vec<SpanRecord>,
    truncate_to: Option<usize>,
    attempt: u32,
}

/// Delivers one batch: retries, splits on 413, truncates single oversized
/// spans, and resolves every span as sent or failed.
async fn deliver(shared: Arc<Shared>, batch: Vec<SpanRecord>) {
    let mut work = vec![Chunk {
        spans: batch,
        truncate_to: None,
        attempt: 0,
    }];
    while let Some(mut chunk) = work.pop() {
        let n = chunk.spans.len() as u64;
        if shared.disabled.load(Ordering::Acquire) {
            shared.resolve_failed(n);
            continue;
        }
        if shared.abandoned.load(Ordering::Acquire) {
            shared.keep_or_fail(chunk.spans);
            continue;
        }
        let send = tokio::time::timeout(
            shared.config.request_timeout,
            shared.transport.send(&chunk.spans, chunk.truncate_to),
        );
        let outcome = match shared.unless_abandoned(send).await {
            None => {
                shared.keep_or_fail(chunk.spans);
                continue;
            }
            Some(Ok(outcome)) => outcome,
            Some(Err(_elapsed)) => SendOutcome::Retry {
                reason: format!(
                    "no answer within {} ms",
                    shared.config.request_timeout.as_millis()
                ),
                retry_after: None,
            },
        };
        match outcome {
            SendOutcome::Accepted => shared.resolve_sent_batch(chunk.spans),
            SendOutcome::Partial { retry, rejected } => {
                let retry_n = retry.len() as u64;
                let rejected = (rejected as u64).min(n - retry_n.min(n));
                let accepted = n.saturating_sub(retry_n + rejected);
                shared.resolve_sent(accepted);
                if rejected > 0 {
                    shared.resolve_failed(rejected);
                    warn_rejected(&shared, "items refused by the backend (partial success)");
                }
                if retry.is_empty() {
                    continue;
                }
                let mut keep: Vec<Option<SpanRecord>> = chunk.spans.into_iter().map(Some).collect();
                let spans: Vec<SpanRecord> = retry
                    .iter()
                    .filter_map(|&i| keep.get_mut(i).and_then(Option::take))
                    .collect();
                // Indices out of range or repeated: count the difference as failed.
                let missing = retry_n - spans.len() as u64;
                if missing > 0 {
                    shared.resolve_failed(missing);
                }
                if spans.is_empty() {
                    continue;
                }
                let retry_chunk = Chunk {
                    spans,
                    truncate_to: chunk.truncate_to,
                    attempt: chunk.attempt,
                };
                retry_later(
                    &shared,
                    &mut work,
                    retry_chunk,
                    "partial success".into(),
                    None,
                )
                .await;
            }
            SendOutcome::Retry {
                reason,
                retry_after,
            } => retry_later(&shared, &mut work, chunk, reason, retry_after).await,
            SendOutcome::Unauthorized { status } => {
                if !shared.disabled.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        exporter = %shared.label,
                        status,
                        "{} rejected the credentials (HTTP {status}): tracing to it is disabled for the rest of the run and every further span is counted as failed. {}",
                        shared.label,
                        shared.transport.auth_hint()
                    );
                }
                shared.resolve_failed(n);
                shared.wake.notify_one();
            }
            SendOutcome::TooLarge => {
                if chunk.spans.len() > 1 {
                    let right = chunk.spans.split_off(chunk.spans.len() / 2);
                    tracing::debug!(exporter = %shared.label, spans = n, "HTTP 413: splitting the batch");
                    work.push(Chunk {
                        spans: right,
                        truncate_to: chunk.truncate_to,
                        attempt: chunk.attempt,
                    });
                    work.push(chunk);
                } else {
                    let next = match chunk.truncate_to {
                        None => TRUNCATION_LEVELS.first().copied(),
                        Some(limit) => TRUNCATION_LEVELS.iter().copied().find(|&l| l < limit),
                    };
                    match next {
                        Some(limit) => {
                            tracing::debug!(exporter = %shared.label, limit, "HTTP 413 for one span: truncating its attribute values");
                            chunk.truncate_to = Some(limit);
                            work.push(chunk);
                        }
                        None => {
                            shared.resolve_failed(n);
                            warn_rejected(
                                &shared,
                                "a span was still too large (HTTP 413) after truncating every attribute value to 1 KiB",
                            );
                        }
                    }
                }
            }
            SendOutcome::Rejected { status, reason } => {
                shared.resolve_failed(n);
                warn_rejected(
                    &shared,
                    &format!("the backend refused a batch ({reason}, status {status})"),
                );
            }
        }
    }
    shared.idle.notify_waiters();
}

/// Waits the backoff, then queues `chunk` again, or gives up after the last
/// attempt.
async fn retry_later(
    shared: &Shared,
    work: &mut Vec<Chunk>,
    mut chunk: Chunk,
    reason: String,
    retry_after: Option<Duration>,
) {
    let n = chunk.spans.len() as u64;
    chunk.attempt += 1;
    let policy = &shared.config.retry;
    if chunk.attempt >= policy.max_attempts() {
        let kept = if shared.has_spool() {
            "they are kept for `elspeth traces replay`"
        } else {
            "they are counted as failed"
        };
        shared.keep_or_fail(chunk.spans);
        if !shared.warned_give_up.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                exporter = %shared.label,
                spans = n,
                attempts = chunk.attempt,
                "{}: giving up on {n} spans after {} attempts (last: {reason}); {kept}; the pipeline is not affected, later failures are only logged at debug level",
                shared.label,
                chunk.attempt
            );
        } else {
            tracing::debug!(exporter = %shared.label, spans = n, %reason, "giving up on a batch");
        }
        return;
    }
    let wait = policy.delay(chunk.attempt, retry_after);
    tracing::debug!(
        exporter = %shared.label,
        spans = n,
        attempt = chunk.attempt,
        wait_ms = wait.as_millis() as u64,
        %reason,
        "export failed, retrying"
    );
    if shared
        .unless_abandoned(tokio::time::sleep(wait))
        .await
        .is_none()
    {
        shared.keep_or_fail(chunk.spans);
        return;
    }
    work.push(chunk);
}

fn warn_rejected(shared: &Shared, what: &str) {
    if !shared.warned_rejected.swap(true, Ordering::AcqRel) {
        tracing::warn!(exporter = %shared.label, "{}: {what}; those spans are counted as failed", shared.label);
    } else {
        tracing::debug!(exporter = %shared.label, "{what}");
    }
}
