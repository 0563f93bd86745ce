//! `fail_fast`: when a run stops early instead of failing every row one by
//! one (a dead API key, a backend answering 500 to everything).
//!
//! ```
//! use elspeth_schema::config::FailFastConfig;
//! let f: FailFastConfig = serde_json::from_str(r#"{"consecutive_failures": 10}"#).unwrap();
//! assert_eq!(f.consecutive_failures, 10);
//! assert!(f.on_auth_error);
//! assert_eq!(FailFastConfig::default().consecutive_failures, 25);
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default of [`FailFastConfig::consecutive_failures`].
pub const DEFAULT_CONSECUTIVE_FAILURES: u32 = 25;

fn default_consecutive_failures() -> u32 {
    DEFAULT_CONSECUTIVE_FAILURES
}

fn default_true() -> bool {
    true
}

/// When the run stops early. A stopped run writes every row it read (rows
/// not processed are marked `cancelled`), prints which transform stopped it
/// and its last error, and exits 1; rerunning resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailFastConfig {
    /// Stop the run when this many rows in a row failed in one transform,
    /// each after its retries (content-filter refusals do not count: they
    /// are the answer for that row, not a broken backend). 0 never stops.
    #[serde(default = "default_consecutive_failures")]
    #[schemars(default = "default_consecutive_failures", range(max = 1000000))]
    pub consecutive_failures: u32,
    /// Stop the run at a transform's first authentication error (HTTP 401
    /// or 403): every further call with that key would fail the same way.
    #[serde(default = "default_true")]
    #[schemars(default = "default_true")]
    pub on_auth_error: bool,
}

impl Default for FailFastConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: DEFAULT_CONSECUTIVE_FAILURES,
            on_auth_error: true,
        }
    }
}
