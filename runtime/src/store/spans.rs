//! Spans kept for later: what a tracing exporter could not deliver before
//! the run ended (backend down, hung or slow, a SIGTERM) waits here for
//! `elspeth traces replay`, bounded by a cap.
//!
//! A kept span is its provider-neutral record as JSON, filed under the
//! exporter's label (`langfuse https://host (pk-lf-...)`: never a secret),
//! which is how replay finds the backend again from the pipeline's
//! `tracing:` blocks. Replay deletes a span in the same step that records
//! its delivery, so a second replay sends nothing.

use std::sync::Arc;

use elspeth_telemetry::record::SpanRecord;
use elspeth_telemetry::spool::{SpanSpool, SpoolError};
use rusqlite::params;

use super::{RunId, RunStore, StoreError};

/// The table, created with the others.
pub(super) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kept_spans (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    exporter TEXT NOT NULL,
    run_id   INTEGER,
    kept_at  REAL NOT NULL,
    span     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kept_spans_exporter ON kept_spans (exporter, id);";

/// Spans waiting for one exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptSpans {
    /// The exporter's label.
    pub exporter: String,
    /// How many.
    pub count: u64,
}

/// One kept span, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptSpan {
    /// Its row in the store (what [`RunStore::forget_spans`] takes).
    pub id: i64,
    /// The span; `None` when the stored JSON no longer parses (written by
    /// another version): replay drops it, counted.
    pub span: Option<SpanRecord>,
}

impl RunStore {
    /// Keeps `spans` for `exporter`, as many as fit under `cap` spans kept
    /// in all; returns how many were kept.
    pub fn keep_spans(
        &self,
        run: Option<RunId>,
        exporter: &str,
        spans: &[SpanRecord],
        cap: u64,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sqlite(e))?;
        let held: i64 = tx
            .query_row("SELECT COUNT(*) FROM kept_spans", [], |r| r.get(0))
            .map_err(|e| self.sqlite(e))?;
        let room = cap.saturating_sub(held.max(0) as u64);
        let n = spans.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO kept_spans (exporter, run_id, kept_at, span) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| self.sqlite(e))?;
            let now = super::now_s();
            for span in &spans[..n] {
                // Serializing a record cannot fail (string keys, finite
                // numbers); a span that somehow does is not kept.
                let Ok(json) = serde_json::to_string(span) else {
                    continue;
                };
                insert
                    .execute(params![exporter, run.map(|r| r.0), now, json])
                    .map_err(|e| self.sqlite(e))?;
            }
        }
        tx.commit().map_err(|e| self.sqlite(e))?;
        Ok(n)
    }

    /// How many spans wait, per exporter (label order).
    pub fn kept_span_counts(&self) -> Result<Vec<KeptSpans>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT exporter, COUNT(*) FROM kept_spans GROUP BY exporter ORDER BY exporter",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(KeptSpans {
                    exporter: r.get(0)?,
                    count: r.get::<_, i64>(1)?.max(0) as u64,
                })
            })
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    /// Up to `limit` spans kept for `exporter` with an id above `after`,
    /// oldest first.
    pub fn kept_spans(
        &self,
        exporter: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<KeptSpan>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, span FROM kept_spans WHERE exporter = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = stmt
            .query_map(params![exporter, after, limit as i64], |r| {
                let json: String = r.get(1)?;
                Ok(KeptSpan {
                    id: r.get(0)?,
                    span: serde_json::from_str(&json).ok(),
                })
            })
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    /// Deletes the kept spans `ids` (delivered, or refused for good).
    pub fn forget_spans(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sqlite(e))?;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM kept_spans WHERE id = ?1")
                .map_err(|e| self.sqlite(e))?;
            for id in ids {
                delete.execute([id]).map_err(|e| self.sqlite(e))?;
            }
        }
        tx.commit().map_err(|e| self.sqlite(e))
    }
}

/// The run store as the tracing exporters' [`SpanSpool`]: what they could
/// not deliver is kept, up to `cap` spans in the store.
#[derive(Debug, Clone)]
pub struct StoreSpool {
    store: Arc<RunStore>,
    run: Option<RunId>,
    cap: u64,
}

impl StoreSpool {
    /// Keeps spans of run `run` in `store`, at most `cap` in all.
    pub fn new(store: Arc<RunStore>, run: Option<RunId>, cap: u64) -> Self {
        Self { store, run, cap }
    }
}

impl SpanSpool for StoreSpool {
    fn keep(&self, exporter: &str, spans: &[SpanRecord]) -> Result<usize, SpoolError> {
        self.store
            .keep_spans(self.run, exporter, spans, self.cap)
            .map_err(|e| SpoolError::new(e.to_string()))
    }

    fn cap(&self) -> u64 {
        self.cap
    }
}
