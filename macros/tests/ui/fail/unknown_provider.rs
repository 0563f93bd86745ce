#[elspeth::llm_transform(tracing(providers = [langfus, azure_ai]))]
struct Sentiment {
    config: Option<elspeth::config::TracingConfig>,
}

fn main() {}
