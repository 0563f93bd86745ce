//! Config model, env interpolation, validation and JSON Schema of elspeth
//! pipelines.
//!
//! Data flows one way: YAML text → [`yaml`] (spanned tree) → [`interpolate`]
//! (`${VAR}` references) → JSON Schema ([`schema_gen`]) → semantic rules →
//! typed [`config::PipelineConfig`]. Every problem is a
//! [`diagnostic::Diagnostic`] located at `file:line:col`.

pub mod config;
pub mod interpolate;
pub mod schema_gen;
