use elspeth::llm::{GenAiSystem, LlmError, LlmRequest, LlmResponse};
use elspeth::{LlmCall, PlannedCall, Row, RowError};

/// Implements LlmCall, but `mode = job` needs LlmJob.
#[elspeth::llm_transform(tracing, mode = job)]
struct Batch {
    config: Option<elspeth::config::TracingConfig>,
}

impl LlmCall for Batch {
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

fn main() {}
