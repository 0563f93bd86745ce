//! **elspeth**: a config compiler and runtime for LLM data pipelines, with
//! first-class LLM tracing.
//!
//! - [`config`]: the typed pipeline model (YAML ⇄ Rust), validation and the
//!   JSON Schema (crate `elspeth-schema`).
//! - [`llm_transform`]: the attribute that injects the tracing lifecycle into
//!   a transform (crate `elspeth-macros`).
//! - The runtime: [`Transform`], [`LlmCall`], the built-in transforms and the
//!   pipeline runner (crate `elspeth-runtime`).
//! - [`telemetry`]: Tier 2 tracing (Langfuse, Azure AI) and Tier 1 OTLP
//!   (crate `elspeth-telemetry`).

pub use elspeth_macros::llm_transform;
pub use elspeth_runtime::*;
pub use elspeth_schema as schema;
pub use elspeth_schema::config;
pub use elspeth_telemetry as telemetry;

/// Brings in the code that `elspeth_codegen::Build` generated from the
/// crate's pipeline YAML files (a `pipelines` module with one submodule per
/// pipeline). Use it once, at the crate root or in a module.
#[macro_export]
macro_rules! include_pipelines {
    () => {
        include!(concat!(env!("OUT_DIR"), "/elspeth_pipelines.rs"));
    };
}
