//! A row travelling through the pipeline, with its identity and, once
//! something failed, its error.

use serde_json::{Value, json};

use elspeth_telemetry::TransformLabel;

use super::cancel::StopReason;
use crate::row::Row;
use crate::transform::RowError;

/// Error kind of a row stopped by Ctrl-C.
pub(crate) const CANCELLED: &str = "cancelled";

/// One row in flight.
#[derive(Debug)]
pub(crate) struct Item {
    /// 0-based position in the source.
    pub index: u64,
    /// `row-<index>`: the token id of the row's traces.
    pub token_id: String,
    /// The row's fields.
    pub row: Row,
    /// Why the row failed: the JSON written to its `error` field. Failed
    /// rows skip the remaining transforms.
    pub error: Option<Value>,
}

impl Item {
    /// A row read from the source.
    pub fn new(index: u64, row: Row) -> Self {
        Self {
            index,
            token_id: format!("row-{index}"),
            row,
            error: None,
        }
    }

    /// A source line that could not be read as a row.
    pub fn unreadable(index: u64, message: String) -> Self {
        let mut item = Self::new(index, Row::new());
        item.error = Some(json!({"transform": "source", "kind": "source", "message": message}));
        item
    }

    /// Marks the row failed by `transform`.
    pub fn fail(&mut self, transform: &TransformLabel, error: &RowError) {
        self.error = Some(error.to_json(transform));
    }

    /// Marks the row cancelled before `transform` finished it, saying why
    /// the run stopped (`None`: no reason recorded).
    pub fn cancel(&mut self, transform: &TransformLabel, reason: Option<&StopReason>) {
        let message = match reason {
            Some(reason) if reason.is_breaker() => {
                format!("not processed: the run stopped because {reason}")
            }
            Some(StopReason::Signal(signal)) => {
                format!("not processed: the run was interrupted ({signal})")
            }
            _ => "the run was interrupted before this row was processed".to_string(),
        };
        self.fail(transform, &RowError::new(CANCELLED, message));
    }

    /// Whether the row was stopped by a cancellation.
    pub fn is_cancelled(&self) -> bool {
        self.error
            .as_ref()
            .and_then(|e| e.get("kind"))
            .and_then(Value::as_str)
            == Some(CANCELLED)
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
            let e = item.error.unwrap();
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
