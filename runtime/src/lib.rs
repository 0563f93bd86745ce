//! The elspeth runtime: the transform lifecycle, LLM calls, the six built-in
//! LLM transforms and the pipeline runner.

pub mod clients;
pub mod cost;
pub mod engine;
pub mod env;
pub mod llm;
pub mod pipeline;
pub mod plan;
pub mod row;
pub mod store;
pub mod tier1;
pub mod traces;
pub mod tracing_settings;
pub mod transform;
pub mod transforms;
pub mod usage;

#[doc(hidden)]
pub mod __macro_support;

pub use engine::{CallEngine, HasTracing, JobEngine, TransformMeta};
pub use llm::{JobLine, JobOutcome, JobStatus, LlmCall, LlmJob, PlannedCall};
pub use row::{BatchContext, Row, RowContext, RowIdentity, Shard, ShardError};
pub use transform::{
    BatchRow, CloseReport, DynTransform, RowError, RowErrorKind, StartContext, StartError,
    Transform,
};
