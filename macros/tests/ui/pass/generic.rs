//! A generic transform: the impls carry the struct's generics and bounds,
//! and exist where `Self: LlmCall` holds.
#![deny(warnings)]

use elspeth::config::TracingConfig;
use elspeth::llm::{GenAiSystem, LlmError, LlmRequest, LlmResponse};
use elspeth::{LlmCall, PlannedCall, Row, RowError, Transform};

pub trait Backend: Send + Sync + 'static {
    fn answer(&self) -> String;
}

pub struct Echo;
impl Backend for Echo {
    fn answer(&self) -> String {
        "echo".into()
    }
}

#[elspeth::llm_transform(tracing, name = "generic")]
pub struct Generic<B>
where
    B: Backend,
{
    tracing: Option<TracingConfig>,
    backend: B,
}

impl<B: Backend> LlmCall for Generic<B> {
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
        Ok(LlmResponse { content: self.backend.answer(), ..LlmResponse::default() })
    }
}

fn main() {
    let t = Generic { tracing: None, backend: Echo };
    assert_eq!(Transform::plugin(&t), "generic");
}
