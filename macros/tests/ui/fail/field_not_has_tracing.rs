use elspeth::llm::{GenAiSystem, LlmError, LlmRequest, LlmResponse};
use elspeth::{LlmCall, PlannedCall, Row, RowError};

#[elspeth::llm_transform(tracing)]
struct Sentiment {
    config: String,
}

impl LlmCall for Sentiment {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::OpenRouter
    }
    fn model_label(&self) -> (&'static str, &str) {
        ("model", &self.config)
    }
    fn plan(&self, _row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        Ok(vec![])
    }
    async fn call(&self, _request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        Ok(LlmResponse::default())
    }
}

fn main() {}
