//! A row travelling through the pipeline, with its identity and, once
//! something failed, its error.

use serde_json::{Value, json};

use elspeth_telemetry::TransformLabel;

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

    /// Marks the row cancelled before `transform` finished it.
    pub fn cancel(&mut self, transform: &TransformLabel) {
        self.fail(
            transform,
            &RowError::new(
                CANCELLED,
                "the run was interrupted before this row was processed",
            ),
        );
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
