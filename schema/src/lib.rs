//! Config model, env interpolation, validation and JSON Schema of elspeth
//! pipelines.
//!
//! Data flows one way: YAML text → [`yaml`] (spanned tree) → [`interpolate`]
//! (`${VAR}` references) → JSON Schema ([`schema_gen`]) → semantic rules →
//! typed [`config::PipelineConfig`]. Every problem is a
//! [`diagnostic::Diagnostic`] located at `file:line:col`.
//!
//! The entry points are [`validate::validate_file`] and
//! [`validate::validate_str`].

pub mod config;
pub mod diagnostic;
pub mod interpolate;
pub mod paths;
pub mod schema_gen;
pub mod span;
pub mod suggest;
pub mod template;
pub mod validate;
pub mod yaml;

pub use validate::{ValidateOptions, Validated, validate_file, validate_str};
