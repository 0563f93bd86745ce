//! "Did you mean" suggestions for misspelt names: the one algorithm of
//! `elspeth-core`, shared with the `#[llm_transform]` macro so both suggest
//! the same name for the same typo.
//!
//! ```
//! use elspeth_schema::suggest::did_you_mean;
//! assert_eq!(did_you_mean("hots", ["host", "tags", "release"]), Some("host"));
//! assert_eq!(did_you_mean("langfus", ["none", "azure_ai", "langfuse"]), Some("langfuse"));
//! assert_eq!(did_you_mean("zzz", ["host", "tags"]), None);
//! ```

pub use elspeth_core::suggest::{did_you_mean, list, list_or};
// Its tests live with the algorithm, in `elspeth-core`.
