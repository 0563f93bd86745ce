//! The common shape: a plugin options type holding the tracing block, in a
//! field named `config`; the plugin name taken from the struct name.
#![deny(warnings)]

use elspeth::config::TracingConfig;
use elspeth::llm::{GenAiSystem, LlmError, LlmRequest, LlmResponse};
use elspeth::{HasTracing, LlmCall, PlannedCall, Row, RowError, Transform};

pub struct SentimentOptions {
    pub model: String,
    pub tracing: Option<TracingConfig>,
}

impl HasTracing for SentimentOptions {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        self.tracing.as_ref()
    }
}

#[elspeth::llm_transform(tracing)]
pub struct SentimentTransform {
    config: SentimentOptions,
}

impl LlmCall for SentimentTransform {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::OpenRouter
    }
    fn model_label(&self) -> (&'static str, &str) {
        ("model", &self.config.model)
    }
    fn plan(&self, _row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        Ok(vec![PlannedCall::single(LlmRequest::user(&self.config.model, "hi"))])
    }
    async fn call(&self, _request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        Ok(LlmResponse::default())
    }
}

fn main() {
    let t = SentimentTransform {
        config: SentimentOptions { model: "m".into(), tracing: None },
    };
    assert_eq!(Transform::plugin(&t), "sentiment_transform");
    let _boxed: Box<dyn elspeth::DynTransform> = Box::new(t);
}
