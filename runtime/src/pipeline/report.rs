//! What a run reports: live [`Progress`] to a [`RunObserver`] and the final
//! [`RunSummary`].

use std::path::PathBuf;
use std::time::Duration;

use elspeth_telemetry::ExportSummary;

use super::cancel::StopReason;
use crate::usage::UsageSnapshot;

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
    /// What the calls paid so far cost, when every one has a cost.
    pub cost_usd: Option<f64>,
    /// Rows the run will take in all (after `--limit`), when counted.
    pub total_rows: Option<u64>,
    /// Time since the start.
    pub elapsed: Duration,
}

impl Progress {
    /// The cost of the whole run at the pace so far: cost per row written
    /// times the rows to take; `None` before the first row, without a row
    /// count, or with an unknown cost.
    pub fn estimated_total_usd(&self) -> Option<f64> {
        let (cost, total) = (self.cost_usd?, self.total_rows?);
        (self.rows_done > 0)
            .then(|| cost / self.rows_done as f64 * total.max(self.rows_done) as f64)
    }

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
    /// Cost in USD of the paid calls; `None` when the cost of some call is
    /// unknown ([`unpriced_calls`](Self::unpriced_calls)): never a silent 0.
    pub cost_usd: Option<f64>,
    /// Paid calls whose cost is unknown (no price, none reported).
    pub unpriced_calls: u64,
    /// Per transform, in order: calls, failures, retries, tokens, cost,
    /// latency.
    pub transforms: Vec<TransformSummary>,
    /// The first failed rows (at most [`ROWS_NOTED`]), in the order written.
    pub failed_rows: Vec<RowNote>,
    /// The slowest rows (at most [`ROWS_NOTED`]), slowest first.
    pub slowest_rows: Vec<RowNote>,
    /// The run's budget (`budget.max_cost_usd` / `--max-cost-usd`).
    pub budget_usd: Option<f64>,
    /// Per tracing exporter: spans sent, dropped, failed, still pending.
    pub exporters: Vec<ExportSummary>,
    /// Wall time of the run, closing and the final trace flush included.
    pub elapsed: Duration,
    /// Wall time until the last row was written (before closing and the
    /// final trace flush, bounded by the flush deadline).
    pub rows_elapsed: Duration,
    /// Whether the run stopped before the end of its source (a signal, a
    /// cancel, a fail-fast breaker or the budget;
    /// [`stop_reason`](Self::stop_reason) says which).
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

/// `n` with `,` between thousands (`1,234,567`), as summaries show counts.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How many failed and slow rows a summary names.
pub const ROWS_NOTED: usize = 20;

/// One transform's part of a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransformSummary {
    /// `transforms[i] (plugin)`.
    pub label: String,
    /// Its plugin.
    pub plugin: String,
    /// Deployment or model.
    pub model: String,
    /// Where its price comes from (`gpt-4o-mini in the price table of
    /// 2026-06-21`, `pricing:`, `unknown`).
    pub price: String,
    /// Its calls.
    pub usage: UsageSnapshot,
}

/// A row a summary names: a failed one or a slow one.
#[derive(Debug, Clone, PartialEq)]
pub struct RowNote {
    /// 0-based position in the source.
    pub index: u64,
    /// Its id (the source `key` field's value, else `row-<index>`).
    pub id: String,
    /// From being read to being written.
    pub elapsed: Duration,
    /// Why it failed: `(transform, kind, message)`.
    pub error: Option<(String, String, String)>,
}

impl RowNote {
    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "index": self.index,
            "id": self.id,
            "duration_ms": ms(self.elapsed),
        });
        if let Some((transform, kind, message)) = &self.error {
            v["transform"] = transform.clone().into();
            v["kind"] = kind.clone().into();
            v["error"] = message.clone().into();
        }
        v
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl TransformSummary {
    fn to_json(&self) -> serde_json::Value {
        let u = &self.usage;
        let l = &u.latency;
        serde_json::json!({
            "label": self.label,
            "plugin": self.plugin,
            "model": self.model,
            "price": self.price,
            "calls": u.calls,
            "cached_calls": u.cached_calls,
            "failed_calls": u.failed_calls,
            "failures": u.failures,
            "retries": u.retries,
            "tokens_in": u.tokens_in,
            "tokens_out": u.tokens_out,
            "cost_usd": u.known_cost(),
            "unpriced_calls": u.unpriced_calls,
            "saved_cost_usd": u.saved_cost_usd,
            "latency_ms": {
                "p50": l.quantile_ms(0.50),
                "p95": l.quantile_ms(0.95),
                "p99": l.quantile_ms(0.99),
                "max": (l.count() > 0).then(|| l.max_ms()),
            },
            "latency_histogram": l.bars(HISTOGRAM_BARS).iter().map(|b| serde_json::json!({
                "from_ms": b.from_ms, "to_ms": b.to_ms, "calls": b.calls,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Bars of a transform's latency histogram in the summary and the report.
pub const HISTOGRAM_BARS: usize = 24;

impl RunSummary {
    /// Every row succeeded and the run was not interrupted.
    pub fn is_success(&self) -> bool {
        self.rows_failed == 0 && !self.interrupted
    }

    /// The summary as JSON (`elspeth run --summary-json`), with the
    /// process's `exit_code`: totals (`rows_ok`, `rows_failed`, `calls`,
    /// `cached_calls`, `tokens_in`, `tokens_out`, `cost_usd`, `duration_s`),
    /// a `transforms` array (calls, failures by kind, retries, tokens,
    /// cost, latency percentiles and histogram), a `tracing` array (per
    /// exporter every span's state: `recorded = sent + dropped + failed +
    /// pending + kept`), and the failed and slowest rows.
    pub fn to_json(&self, exit_code: u8) -> serde_json::Value {
        serde_json::json!({
            "pipeline": self.pipeline,
            "success": self.is_success(),
            "exit_code": exit_code,
            "interrupted": self.interrupted,
            "stop_reason": self.stop_reason.as_ref().map(ToString::to_string),
            "rows_read": self.rows_read,
            "rows_ok": self.rows_ok,
            "rows_failed": self.rows_failed,
            "rows_cancelled": self.rows_cancelled,
            "calls": self.llm_calls,
            "cached_calls": self.llm_calls_cached,
            "failed_calls": self.llm_calls_failed,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "saved_tokens": self.saved_tokens,
            "cost_usd": self.cost_usd,
            "unpriced_calls": self.unpriced_calls,
            "saved_cost_usd": self.saved_cost_usd,
            "budget_usd": self.budget_usd,
            "duration_s": self.elapsed.as_secs_f64(),
            "rows_duration_s": self.rows_elapsed.as_secs_f64(),
            "output": self.output,
            "error_output": self.error_output,
            "store": self.store,
            "transforms": self.transforms.iter().map(TransformSummary::to_json).collect::<Vec<_>>(),
            "tracing": self.exporters,
            "failed_rows": self.failed_rows.iter().map(RowNote::to_json).collect::<Vec<_>>(),
            "slowest_rows": self.slowest_rows.iter().map(RowNote::to_json).collect::<Vec<_>>(),
        })
    }
}
