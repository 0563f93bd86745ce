//! **elspeth**: a config compiler and runtime for LLM data pipelines, with
//! first-class LLM tracing.
//!
//! This crate is the facade a user depends on. It re-exports a chosen set of
//! names from the workspace's crates, grouped by what they are for:
//!
//! | Module | What it holds | From |
//! |---|---|---|
//! | crate root | the traits and types of writing a transform, [`llm_transform`], [`include_pipelines!`] | `elspeth-runtime`, `elspeth-macros` |
//! | [`transform`] | the [`Transform`] lifecycle and its context and error types | `elspeth-runtime` |
//! | [`llm`] | [`LlmCall`] / [`LlmJob`] and the request, response and error vocabulary | `elspeth-runtime` |
//! | [`pipeline`] | [`Pipeline`](pipeline::Pipeline), [`RunOptions`](pipeline::RunOptions), cancellation, progress, the summary | `elspeth-runtime` |
//! | [`engine`] | the public LLM-transform engine the attribute calls into | `elspeth-runtime` |
//! | [`plan`] | the resolved plan: one spec per transform, one build trait per plugin | `elspeth-runtime` |
//! | [`transforms`] | the six built-in LLM transforms | `elspeth-runtime` |
//! | [`clients`] | the Azure OpenAI and OpenRouter clients the built-ins use | `elspeth-runtime` |
//! | [`env`](mod@env) | where `${VAR}` references are looked up, and an overlay over it | `elspeth-runtime`, `elspeth-schema` |
//! | [`store`] | the run store behind resumable runs | `elspeth-runtime` |
//! | [`usage`] | token and cost accounting | `elspeth-runtime` |
//! | [`config`] | the typed pipeline model (YAML ⇄ Rust) | `elspeth-schema` |
//! | [`schema`] | validation, diagnostics, `${VAR}` interpolation, the JSON Schema | `elspeth-schema` |
//! | [`telemetry`] | Tier 2 tracing (Langfuse, Azure AI) and Tier 1 OTLP | `elspeth-telemetry` |
//!
//! Anything not listed here is an implementation detail of the runtime and
//! may change without notice. The command line is a separate package
//! (`elspeth-cli`); depending on this crate compiles none of it.

/// The attribute that turns an [`LlmCall`] or [`LlmJob`] into a
/// [`Transform`], with the tracing lifecycle injected (crate
/// `elspeth-macros`).
pub use elspeth_macros::llm_transform;

// The names a transform author reaches for first, at the crate root (the
// same items as in `transform` and `llm`).
pub use crate::llm::{JobLine, JobOutcome, LlmCall, LlmJob, PlannedCall};
pub use crate::transform::{
    BatchContext, BatchRow, CloseReport, DynTransform, HasTracing, Row, RowContext, RowError,
    RowErrorKind, StartContext, StartError, Transform,
};

/// The transform lifecycle: [`Transform`] (start, per-row or per-batch
/// processing, close), its type-erased form [`DynTransform`], the contexts
/// each call receives and the errors it returns.
pub mod transform {
    pub use elspeth_runtime::engine::HasTracing;
    pub use elspeth_runtime::row::{BatchContext, Row, RowContext};
    pub use elspeth_runtime::transform::{
        BatchRow, BoxFuture, CloseReport, DynTransform, RowError, RowErrorKind, StartContext,
        StartError, Transform,
    };
}

/// LLM calls: [`LlmCall`] (one call per planned request) and
/// [`LlmJob`] (batch jobs), what they plan and return, and the
/// request / response / error vocabulary shared with the tracer.
pub mod llm {
    pub use elspeth_runtime::llm::{
        ChatMessage, GenAiSystem, JobLine, JobOutcome, JobStatus, JsonSchemaRequest, LlmCall,
        LlmError, LlmErrorKind, LlmJob, LlmRequest, LlmResponse, PlannedCall,
        ResponseFormatRequest, Role, Usage,
    };
}

/// The LLM-transform engine, public: what `#[llm_transform]` generates
/// calls into, usable by hand in a [`Transform`] impl (the attribute is
/// sugar). [`CallEngine`](engine::CallEngine) runs a row's planned calls
/// (stored replies served, paid ones committed before they are merged,
/// one traced generation per call, bounded concurrency);
/// [`JobEngine`](engine::JobEngine) does the same for batch jobs.
pub mod engine {
    pub use elspeth_runtime::engine::{
        ALL_PROVIDERS, CLOSE_FLUSH_DEADLINE, CallEngine, HasTracing, JobEngine, TransformMeta,
        close, close_within, on_start_call, on_start_job,
    };
}

/// The resolved plan of a pipeline: [`Plan::resolve`](plan::Plan::resolve)
/// turns a [`PipelineConfig`](config::PipelineConfig) into one
/// [`TransformSpec`](plan::TransformSpec) per transform (resolved target,
/// compiled prompt, queries, fingerprint), reporting every problem at once;
/// [`BuildTransform`](plan::BuildTransform) is what each plugin implements.
pub mod plan {
    pub use elspeth_runtime::plan::{
        BuildTransform, Mode, Plan, PlanDescription, PlanError, PlanProblem, Resolver, Service,
        SpecParts, Target, TransformPlan, TransformSpec, fingerprint, plugin_of,
    };
}

/// Running a pipeline: [`Pipeline`](pipeline::Pipeline) and its
/// [`RunOptions`](pipeline::RunOptions), cancellation
/// ([`CancelToken`](pipeline::CancelToken)), progress
/// ([`RunObserver`](pipeline::RunObserver)), the outcome
/// ([`RunSummary`](pipeline::RunSummary), [`RunError`](pipeline::RunError))
/// and `--dry-run`'s description ([`DryRun`](pipeline::DryRun)).
pub mod pipeline {
    pub use elspeth_runtime::pipeline::{
        CancelToken, DryRun, ERROR_FIELD, Pipeline, Progress, ResolvedPaths, RunError, RunObserver,
        RunOptions, RunStart, RunSummary, StopReason, StopSignal, StoreOptions,
    };
}

/// The built-in LLM transforms (Azure OpenAI and OpenRouter, each per call,
/// multi-query and batch); [`plan`] builds the right one from a
/// transform's config.
pub mod transforms {
    pub use elspeth_runtime::transforms::{
        AzureBatchLlm, AzureLlm, AzureMultiQueryLlm, OpenRouterBatchLlm, OpenRouterLlm,
        OpenRouterMultiQueryLlm,
    };
}

/// The LLM HTTP clients the built-in transforms use, for a custom transform
/// that calls the same services: Azure OpenAI chat and batch, OpenRouter,
/// their shared [`ClientSettings`](clients::ClientSettings) and retry policy.
pub mod clients {
    pub use elspeth_runtime::clients::{
        AzureBatchClient, AzureChatClient, AzureTarget, BatchJob, BatchStatus, ClientSettings,
        OpenRouterClient, OpenRouterTarget, RetryPolicy,
    };
}

/// Where `${VAR}` references are looked up: the [`Env`](env::Env) trait,
/// the process environment, and [`OverlayEnv`](env::OverlayEnv) (a few
/// variables set over another env, e.g. the mocks' addresses).
pub mod env {
    pub use elspeth_runtime::env::OverlayEnv;
    pub use elspeth_schema::config::{Env, ProcessEnv};
}

/// The run store: what makes a run resumable (rows done, LLM replies paid
/// for, batch jobs submitted), kept in one SQLite file.
pub mod store {
    pub use elspeth_runtime::store::{
        CallCache, Fingerprint, RunCounts, RunId, RunStatus, RunStore, StoreError,
    };
}

/// Token and cost accounting shared by a run's transforms.
pub mod usage {
    pub use elspeth_runtime::usage::{UsageMeter, UsageSnapshot};
}

/// The typed pipeline model: every YAML key as a Rust type
/// ([`PipelineConfig`](config::PipelineConfig), the transform, tracing and
/// telemetry configs, `${VAR}`-bearing strings and secrets).
pub use elspeth_schema::config;

/// Validation with diagnostics (line, column, fix), `${VAR}`
/// interpolation and its errors, and the JSON Schema of pipeline files
/// (crate `elspeth-schema`).
pub use elspeth_schema as schema;

/// Tier 2 LLM tracing (the tracer, the Langfuse and Azure AI exporters,
/// the registry that picks one per transform) and Tier 1 OTLP telemetry
/// (crate `elspeth-telemetry`).
pub use elspeth_telemetry as telemetry;

/// What `#[llm_transform]`'s expansion names (`#krate::__macro_support`);
/// not an API.
#[doc(hidden)]
pub use elspeth_runtime::__macro_support;

/// Brings in the code that `elspeth_codegen::Build` generated from the
/// crate's pipeline YAML files (a `pipelines` module with one submodule per
/// pipeline). Use it once, at the crate root or in a module.
#[macro_export]
macro_rules! include_pipelines {
    () => {
        include!(concat!(env!("OUT_DIR"), "/elspeth_pipelines.rs"));
    };
}
