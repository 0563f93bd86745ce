//! `store`: where the run store lives and whether it serves stored replies.
//!
//! ```
//! use elspeth_schema::config::StoreConfig;
//! let s: StoreConfig = serde_json::from_str(r#"{"path": "state/triage.db"}"#).unwrap();
//! assert_eq!(s.path.as_deref(), Some("state/triage.db"));
//! assert!(s.cache);
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn default_true() -> bool {
    true
}

/// The run store: one SQLite file keeping each run and every finished LLM
/// call's reply, so that a rerun pays only for the calls that had not
/// finished. Unset: `<pipeline stem>.elspeth.db` beside the pipeline file,
/// serving stored replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The store file, relative to the pipeline file's folder (`--store PATH`
    /// overrides it). It may not be the source or the pipeline file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Serve replies kept in the store instead of paying for them again.
    /// `false` (or `--no-cache`) calls again, and still stores the new replies.
    #[serde(default = "default_true")]
    #[schemars(default = "default_true")]
    pub cache: bool,
    /// Most tracing spans the store keeps when their backend did not take
    /// them before the run ended (down, hung, slow, interrupted), waiting
    /// for `elspeth traces replay`. Beyond it they are counted as failed.
    #[serde(default = "default_max_kept_spans")]
    #[schemars(default = "default_max_kept_spans", range(min = 0))]
    pub max_kept_spans: u64,
}

fn default_max_kept_spans() -> u64 {
    100_000
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: None,
            cache: true,
            max_kept_spans: default_max_kept_spans(),
        }
    }
}
