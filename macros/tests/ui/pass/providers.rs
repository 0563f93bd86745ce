//! `tracing(providers = [...])`, a `#[tracing]`-marked field of a built-in
//! options type, an explicit plugin name and a trailing comma.
#![deny(warnings)]

use elspeth::config::{AzureLlmOptions, TracingProvider};
use elspeth::llm::{GenAiSystem, LlmError, LlmRequest, LlmResponse};
use elspeth::{LlmCall, PlannedCall, Row, RowError, Transform};

#[elspeth::llm_transform(tracing(providers = [langfuse, azure_ai]), name = "my_azure_llm",)]
pub struct MyAzure {
    #[tracing]
    options: AzureLlmOptions,
    /// Not the tracing field although it is named `config`.
    config: u32,
}

impl LlmCall for MyAzure {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::AzureOpenAi
    }
    fn model_label(&self) -> (&'static str, &str) {
        ("deployment", &self.options.connection.deployment_name)
    }
    fn concurrency(&self) -> usize {
        self.config as usize
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
    assert_eq!(<MyAzure as TransformMeta>::PLUGIN, "my_azure_llm");
    assert_eq!(
        <MyAzure as TransformMeta>::ACCEPTED,
        &[TracingProvider::Langfuse, TracingProvider::AzureAi]
    );
    fn is_transform<T: Transform>() {}
    is_transform::<MyAzure>();
}
