//! The small shared vocabulary of elspeth.
//!
//! - [`call`]: one LLM call (request, response, usage, error), used by the
//!   clients, the transforms, the tracer and the run store alike.
//! - [`TransformLabel`]: how a transform is named in logs and errors.
//! - [`price`]: the price table (`core/prices.toml`) and how usage becomes cost.
//! - [`redact`]: URLs with their userinfo and query values masked, for
//!   anything shown (dry runs, summaries, logs, errors).
//! - [`suggest`]: the one "did you mean" algorithm of the validator and the
//!   `#[llm_transform]` macro.
//! - [`BoxFuture`]: the boxed future of object-safe async traits.
//! - `http` (feature `http`): the HTTP toolbox shared by the LLM clients and
//!   the tracing exporters (retry policy, `Retry-After`, TLS provider,
//!   client builder).

#![warn(missing_docs)]

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub mod call;
#[cfg(feature = "http")]
pub mod http;
pub mod price;
pub mod redact;
pub mod suggest;

pub use call::{
    ChatMessage, Cost, CostParts, GenAiSystem, JsonSchemaRequest, LlmError, LlmErrorKind,
    LlmRequest, LlmResponse, ResponseFormatRequest, Role, Usage,
};

/// A boxed, `Send` future, for object-safe async methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Names a transform in logs: `transforms[1] (azure_llm)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransformLabel {
    /// Position in the pipeline's `transforms:` list.
    pub index: usize,
    /// Plugin name.
    pub plugin: String,
}

impl fmt::Display for TransformLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transforms[{}] ({})", self.index, self.plugin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_display() {
        let l = TransformLabel {
            index: 1,
            plugin: "azure_llm".into(),
        };
        assert_eq!(l.to_string(), "transforms[1] (azure_llm)");
    }
}
