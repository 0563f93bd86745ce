//! Without `tracing`, no tracing field is needed and nothing is traced.
#![deny(warnings)]

use elspeth::llm::{GenAiSystem, LlmError, LlmRequest, LlmResponse};
use elspeth::{LlmCall, PlannedCall, Row, RowError, Transform};

#[elspeth::llm_transform]
pub struct Plain {
    model: String,
}

impl LlmCall for Plain {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::Other("local".into())
    }
    fn model_label(&self) -> (&'static str, &str) {
        ("model", &self.model)
    }
    fn plan(&self, _row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        Ok(vec![])
    }
    async fn call(&self, _request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        Ok(LlmResponse::default())
    }
}

fn main() {
    use elspeth::engine::TransformMeta;
    let t = Plain { model: "m".into() };
    assert!(TransformMeta::tracing_config(&t).is_none());
    assert!(<Plain as TransformMeta>::ACCEPTED.is_empty());
    assert_eq!(Transform::plugin(&t), "plain");
}
