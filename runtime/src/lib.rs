//! The elspeth runtime: the transform lifecycle, LLM calls, the six built-in
//! LLM transforms and the pipeline runner.

pub mod clients;
pub mod env;
pub mod llm;
pub mod pipeline;
pub mod row;
pub mod store;
pub mod tier1;
pub mod tracing_settings;
pub mod transform;
pub mod transforms;
pub mod usage;

#[doc(hidden)]
pub mod __macro_support;

pub use __macro_support::HasTracing;
pub use llm::{JobLine, JobOutcome, LlmCall, LlmJob, PlannedCall};
pub use row::{BatchContext, Row, RowContext};
pub use transform::{
    BatchRow, CloseReport, DynTransform, RowError, StartContext, StartError, Transform,
};
