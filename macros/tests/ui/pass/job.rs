//! `mode = job`: a batch-job transform over `LlmJob`.
#![deny(warnings)]

use elspeth::config::TracingConfig;
use elspeth::llm::{GenAiSystem, LlmError, LlmRequest, LlmResponse};
use elspeth::{JobLine, JobOutcome, LlmJob, Row, RowError, Transform};

#[elspeth::llm_transform(tracing(providers = [azure_ai]), mode = job, name = "my_batch")]
pub struct MyBatch {
    tracing: Option<TracingConfig>,
}

impl LlmJob for MyBatch {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::AzureOpenAi
    }
    fn model_label(&self) -> (&'static str, &str) {
        ("deployment", "gpt-4o")
    }
    fn batch_size(&self) -> usize {
        0
    }
    fn plan(&self, _row: &Row) -> Result<LlmRequest, RowError> {
        Ok(LlmRequest::user("gpt-4o", "hi"))
    }
    async fn run_job(&self, _lines: Vec<JobLine>) -> Result<JobOutcome, LlmError> {
        Err(LlmError::new(elspeth::llm::LlmErrorKind::Job, "not here"))
    }
    fn merge(&self, row: Row, result: Result<LlmResponse, LlmError>) -> Result<Row, RowError> {
        result?;
        Ok(row)
    }
}

fn main() {
    let t = MyBatch { tracing: None };
    assert_eq!(Transform::batch_size(&t), Some(1), "at least one row per job");
    assert_eq!(Transform::plugin(&t), "my_batch");
}
