//! `crate = path` (as a path or a string) points the generated code at
//! another copy of the API, e.g. `crate = crate` inside elspeth-runtime.
#![deny(warnings)]

use elspeth::config::TracingConfig;
use elspeth::llm::{GenAiSystem, LlmError, LlmRequest, LlmResponse};
use elspeth::{LlmCall, PlannedCall, Row, RowError, Transform};

mod reexport {
    pub use elspeth::*;
}

macro_rules! transform {
    ($name:ident, $($args:tt)*) => {
        #[elspeth::llm_transform($($args)*)]
        pub struct $name {
            config: Option<TracingConfig>,
        }

        impl LlmCall for $name {
            fn system(&self) -> GenAiSystem {
                GenAiSystem::OpenRouter
            }
            fn model_label(&self) -> (&'static str, &str) {
                ("model", "m")
            }
            fn plan(&self, _row: &Row) -> Result<Vec<PlannedCall>, RowError> {
                Ok(vec![])
            }
            async fn call(&self, _request: &LlmRequest) -> Result<LlmResponse, LlmError> {
                Ok(LlmResponse::default())
            }
        }
    };
}

transform!(ViaPath, tracing, crate = ::elspeth);
transform!(ViaModule, tracing, crate = crate::reexport);
transform!(ViaString, tracing, crate = "elspeth");

fn main() {
    assert_eq!(Transform::plugin(&ViaPath { config: None }), "via_path");
    assert_eq!(Transform::plugin(&ViaModule { config: None }), "via_module");
    assert_eq!(Transform::plugin(&ViaString { config: None }), "via_string");
}
