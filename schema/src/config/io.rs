//! Where rows come from (`source:`) and where they go (`sink:`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the pipeline's rows come from. Relative paths are resolved against
/// the folder of the pipeline YAML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "plugin", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// JSON Lines: one JSON object per line.
    Jsonl {
        /// Path of the `.jsonl` file.
        path: String,
        /// Field whose value identifies a row (e.g. `id`). Unset: a row is
        /// identified by its content. The identity decides trace sampling
        /// and shards, so it must not change between runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// CSV with a header row; every value is read as a string.
    Csv {
        /// Path of the `.csv` file.
        path: String,
        /// Field delimiter, one ASCII character.
        #[serde(default = "default_delimiter")]
        #[schemars(default = "default_delimiter", length(min = 1, max = 1))]
        delimiter: String,
        /// Field whose value identifies a row (e.g. `id`). Unset: a row is
        /// identified by its content. The identity decides trace sampling
        /// and shards, so it must not change between runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

/// Where the pipeline's rows go. Rows leave in input order. Relative paths
/// are resolved against the folder of the pipeline YAML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "plugin", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// JSON Lines: one JSON object per row.
    Jsonl {
        /// Path of the output file (its folder is created if needed).
        path: String,
        /// File for rows that failed (with an `error` field). Unset: failed
        /// rows go to `path` with their `error` field.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_path: Option<String>,
    },
    /// CSV with a header row taken from the first row's fields (or `columns`).
    Csv {
        /// Path of the output file (its folder is created if needed).
        path: String,
        /// Columns to write, in order. Unset: the first row's fields.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        columns: Vec<String>,
        /// Field delimiter, one ASCII character.
        #[serde(default = "default_delimiter")]
        #[schemars(default = "default_delimiter", length(min = 1, max = 1))]
        delimiter: String,
        /// File for rows that failed, as JSON Lines with an `error` field.
        /// Unset: failed rows go to `path` with an `error` column.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_path: Option<String>,
    },
}

impl SourceConfig {
    /// The path as written.
    pub fn path(&self) -> &str {
        match self {
            Self::Jsonl { path, .. } | Self::Csv { path, .. } => path,
        }
    }

    /// The `key:` field that identifies a row, if set.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Jsonl { key, .. } | Self::Csv { key, .. } => key.as_deref(),
        }
    }
}

impl SinkConfig {
    /// The path as written.
    pub fn path(&self) -> &str {
        match self {
            Self::Jsonl { path, .. } | Self::Csv { path, .. } => path,
        }
    }
    /// The error path as written, if any.
    pub fn error_path(&self) -> Option<&str> {
        match self {
            Self::Jsonl { error_path, .. } | Self::Csv { error_path, .. } => error_path.as_deref(),
        }
    }
}

fn default_delimiter() -> String {
    ",".into()
}
