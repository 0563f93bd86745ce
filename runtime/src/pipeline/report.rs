//! What a run reports: live [`Progress`] to a [`RunObserver`] and the final
//! [`RunSummary`].

use std::path::PathBuf;
use std::time::Duration;

use elspeth_telemetry::ExportSummary;

use super::cancel::StopReason;

/// Facts known when the run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    /// Pipeline name.
    pub pipeline: String,
    /// Rows the source holds (after `--limit`), when counted.
    pub total_rows: Option<u64>,
    /// The transforms, as `transforms[i] (plugin)`.
    pub transforms: Vec<String>,
    /// Output file.
    pub output: PathBuf,
    /// The shard of a sharded run (`--shard i/n`).
    pub shard: Option<crate::row::Shard>,
}

/// Counters while the run goes on.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Progress {
    /// Rows written so far (ok + failed).
    pub rows_done: u64,
    /// Rows that went through every transform.
    pub rows_ok: u64,
    /// Rows that failed (including cancelled ones).
    pub rows_failed: u64,
    /// Prompt tokens so far.
    pub tokens_in: u64,
    /// Completion tokens so far.
    pub tokens_out: u64,
    /// Calls served from the run store so far (not paid again).
    pub cached_calls: u64,
    /// Time since the start.
    pub elapsed: Duration,
}

impl Progress {
    /// Rows per second so far.
    pub fn rows_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.rows_done as f64 / secs
        } else {
            0.0
        }
    }
}

/// Watches a run (the CLI's progress bar). Every method has an empty default.
pub trait RunObserver: Send + Sync {
    /// The run starts.
    fn started(&self, start: &RunStart) {
        let _ = start;
    }
    /// A row was written. Called from the writer thread: keep it cheap.
    fn row_written(&self, progress: &Progress) {
        let _ = progress;
    }
    /// The run was asked to stop (a signal, a cancel or a fail-fast
    /// breaker): no new rows are taken.
    fn stopping(&self) {}
    /// The run is over.
    fn finished(&self, summary: &RunSummary) {
        let _ = summary;
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSummary {
    /// Pipeline name.
    pub pipeline: String,
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows that went through every transform.
    pub rows_ok: u64,
    /// Rows that failed (including cancelled ones), written with an `error` field.
    pub rows_failed: u64,
    /// Of the failed rows, those stopped by an interruption.
    pub rows_cancelled: u64,
    /// Successful LLM calls (batch lines count as calls).
    pub llm_calls: u64,
    /// LLM calls that failed after retries.
    pub llm_calls_failed: u64,
    /// Prompt tokens.
    pub tokens_in: u64,
    /// Completion tokens.
    pub tokens_out: u64,
    /// Cost in USD, when a backend reported it.
    pub cost_usd: Option<f64>,
    /// Per tracing exporter: spans sent, dropped, failed, still pending.
    pub exporters: Vec<ExportSummary>,
    /// Wall time of the run, closing and the final trace flush included.
    pub elapsed: Duration,
    /// Wall time until the last row was written (before closing and the
    /// final trace flush, bounded by the flush deadline).
    pub rows_elapsed: Duration,
    /// Whether the run stopped before the end of its source (a signal, a
    /// cancel or a fail-fast breaker; [`stop_reason`](Self::stop_reason)
    /// says which).
    pub interrupted: bool,
    /// Why the run stopped early, when it did.
    pub stop_reason: Option<StopReason>,
    /// Output file.
    pub output: PathBuf,
    /// Calls served from the run store (not paid again).
    pub llm_calls_cached: u64,
    /// Tokens (in + out) of the calls served from the store.
    pub saved_tokens: u64,
    /// Cost in USD of the calls served from the store, where known.
    pub saved_cost_usd: f64,
    /// The run store, when the run had one.
    pub store: Option<PathBuf>,
    /// File of failed rows, when configured.
    pub error_output: Option<PathBuf>,
}

impl RunSummary {
    /// Every row succeeded and the run was not interrupted.
    pub fn is_success(&self) -> bool {
        self.rows_failed == 0 && !self.interrupted
    }

    /// The summary as JSON (`elspeth run --summary-json`): rows, calls,
    /// tokens, cost, timings, and per tracing exporter every span's state
    /// (`recorded = sent + dropped + failed + pending + kept`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "pipeline": self.pipeline,
            "success": self.is_success(),
            "interrupted": self.interrupted,
            "stop_reason": self.stop_reason.as_ref().map(ToString::to_string),
            "rows": {
                "read": self.rows_read,
                "ok": self.rows_ok,
                "failed": self.rows_failed,
                "cancelled": self.rows_cancelled,
            },
            "llm_calls": {
                "paid": self.llm_calls,
                "failed": self.llm_calls_failed,
                "cached": self.llm_calls_cached,
            },
            "tokens": {"in": self.tokens_in, "out": self.tokens_out, "saved": self.saved_tokens},
            "cost_usd": self.cost_usd,
            "saved_cost_usd": self.saved_cost_usd,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "rows_elapsed_s": self.rows_elapsed.as_secs_f64(),
            "output": self.output,
            "error_output": self.error_output,
            "store": self.store,
            "exporters": self.exporters,
        })
    }
}
