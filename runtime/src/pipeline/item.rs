//! A row travelling through the pipeline, with its identity and, once
//! something failed, its error.

use serde_json::Value;

use elspeth_telemetry::TransformLabel;
use elspeth_telemetry::record::TraceId;
use elspeth_telemetry::tier1::{RowSpanStart, SpanLink, Tier1, Tier1Span};
use elspeth_telemetry::tracer::RowTrace;

use super::cancel::StopReason;
use super::source::Record;
use crate::row::{Row, RowIdentity, Shard};
use crate::transform::{RowError, RowErrorKind};

/// Why a row failed, and where: kept typed until the sink writes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowFailure {
    /// `transforms[i] (plugin)`, or `source`.
    pub transform: String,
    /// The error.
    pub error: RowError,
}

impl RowFailure {
    /// The JSON written to the row's `error` field.
    pub(super) fn to_json(&self) -> Value {
        self.error.to_json_at(&self.transform)
    }

    /// The error as one readable line (a CSV cell): `kind: message [transform]`.
    pub(super) fn text(&self) -> String {
        format!(
            "{}: {} [{}]",
            self.error.kind, self.error.message, self.transform
        )
    }
}

/// One row in flight.
#[derive(Debug)]
pub(crate) struct Item {
    /// 0-based position in the source.
    pub index: u64,
    /// `row-<index>`: the token id of the row's traces.
    pub token_id: String,
    /// The row's fields.
    pub row: Row,
    /// Why the row failed (written to its `error` field by the sink).
    /// Failed rows skip the remaining transforms.
    pub error: Option<RowFailure>,
    /// The row's identity (see [`RowIdentity`]), set by the source.
    pub identity: RowIdentity,
    /// The row's trace (shared by its Tier 1 and Tier 2 spans), set by
    /// [`RowTracing::begin`].
    pub trace: Option<RowTrace>,
    /// The row's Tier 1 `pipeline.row` span, ended when the row is written.
    pub span: Tier1Span,
    /// When the source read it (the summary's slowest rows).
    pub read_at: std::time::Instant,
}

/// What a run gives each row it reads: a trace id, a sampling point from
/// the row's [`RowIdentity`], and a `pipeline.row` span linked to the run's span.
#[derive(Debug, Clone)]
pub(crate) struct RowTracing {
    /// The run's Tier 1 handle.
    pub tier1: Tier1,
    /// The run's `pipeline.run` span.
    pub run: Option<SpanLink>,
    /// The pipeline's name.
    pub pipeline: String,
    /// The run's id.
    pub run_id: String,
    /// The shard of a sharded run.
    pub shard: Option<Shard>,
    /// `shard` as text (`"1/4"`).
    pub shard_text: Option<String>,
}

impl RowTracing {
    /// Starts `item`'s trace.
    pub(super) fn begin(&self, item: &mut Item) {
        let trace = RowTrace {
            trace_id: TraceId::random(),
            sample_point: item.identity.unit(),
            shard: self.shard.map(|s| (s.index(), s.count())),
        };
        item.span = self.tier1.start_row(RowSpanStart {
            run: self.run,
            pipeline: &self.pipeline,
            run_id: &self.run_id,
            index: item.index,
            token_id: &item.token_id,
            trace_id: trace.trace_id,
            shard: self.shard_text.as_deref(),
        });
        item.trace = Some(trace);
    }
}

impl Item {
    /// A record read from the source, with its `identity`: a row, or a
    /// line that could not be read as one (failed, kind `source`).
    pub(super) fn read(index: u64, record: Record, identity: RowIdentity) -> Self {
        let (row, error) = match record {
            Record::Row(row) => (row, None),
            Record::Bad(message) => (
                Row::new(),
                Some(RowFailure {
                    transform: "source".into(),
                    error: RowError::new(RowErrorKind::Source, message),
                }),
            ),
        };
        Self {
            index,
            token_id: format!("row-{index}"),
            identity,
            row,
            error,
            trace: None,
            span: Tier1Span::disabled(),
            read_at: std::time::Instant::now(),
        }
    }

    /// A row (tests): identified by its content.
    #[cfg(test)]
    pub(super) fn new(index: u64, row: Row) -> Self {
        let identity = RowIdentity::of(&row, None);
        Self::read(index, Record::Row(row), identity)
    }

    /// Ends the row's `pipeline.row` span: failed with the error's kind
    /// when the row failed.
    pub(super) fn end_span(&mut self) {
        let span = std::mem::replace(&mut self.span, Tier1Span::disabled());
        match &self.error {
            Some(failure) => span.fail(failure.error.kind.as_str()),
            None => span.end(),
        }
    }

    /// Marks the row failed by `transform`.
    pub(super) fn fail(&mut self, transform: &TransformLabel, error: &RowError) {
        self.error = Some(RowFailure {
            transform: transform.to_string(),
            error: error.clone(),
        });
    }

    /// Marks the row cancelled before `transform` finished it, saying why
    /// the run stopped (`None`: no reason recorded).
    pub(super) fn cancel(&mut self, transform: &TransformLabel, reason: Option<&StopReason>) {
        let message = match reason {
            Some(reason) if reason.is_breaker() => {
                format!("not processed: the run stopped because {reason}")
            }
            Some(StopReason::Signal(signal)) => {
                format!("not processed: the run was interrupted ({signal})")
            }
            _ => "the run was interrupted before this row was processed".to_string(),
        };
        self.fail(transform, &RowError::new(RowErrorKind::Cancelled, message));
    }

    /// Whether the row was stopped by a cancellation.
    pub(super) fn is_cancelled(&self) -> bool {
        self.error
            .as_ref()
            .is_some_and(|e| e.error.kind == RowErrorKind::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::StopSignal;

    #[test]
    fn cancelled_rows_say_why_the_run_stopped() {
        let label = TransformLabel {
            index: 1,
            plugin: "openrouter_llm".into(),
        };
        let message = |reason: Option<&StopReason>| {
            let mut item = Item::new(0, Row::new());
            item.cancel(&label, reason);
            assert!(item.is_cancelled());
            let e = item.error.unwrap().to_json();
            assert_eq!(e["transform"], "transforms[1] (openrouter_llm)");
            e["message"].as_str().unwrap().to_string()
        };
        assert_eq!(
            message(None),
            "the run was interrupted before this row was processed"
        );
        assert_eq!(
            message(Some(&StopReason::Signal(StopSignal::Terminate))),
            "not processed: the run was interrupted (SIGTERM)"
        );
        let mut error = RowError::new("llm", "OpenRouter answered HTTP 401");
        error.http_status = Some(401);
        let reason = StopReason::AuthFailed {
            transform: TransformLabel {
                index: 0,
                plugin: "azure_llm".into(),
            },
            error,
        };
        assert_eq!(
            message(Some(&reason)),
            "not processed: the run stopped because transforms[0] (azure_llm) got an authentication error (HTTP 401): OpenRouter answered HTTP 401"
        );
    }
}
