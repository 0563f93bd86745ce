//! An example crate to copy: a pipeline written in YAML and compiled by
//! `build.rs`, extended in Rust with a hand-written, traced LLM transform.
//!
//! - [`pipelines`]: generated at build time from `pipelines/*.yaml`
//!   (`pipelines::feedback_triage::pipeline()` is ready to run).
//! - [`sentiment`]: the custom transform, `#[elspeth::llm_transform]` on a
//!   struct plus an [`elspeth::LlmCall`] impl.
//!
//! `src/main.rs` runs the two together against the bundled mock backends;
//! `tests/flow.rs` checks what they produce. See README.md.

elspeth::include_pipelines!();

pub mod sentiment;

pub use sentiment::{ReviewSentiment, SentimentOptions};
