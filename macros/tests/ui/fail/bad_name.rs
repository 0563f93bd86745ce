#[elspeth::llm_transform(tracing, name = "Azure LLM")]
struct Sentiment {
    config: Option<elspeth::config::TracingConfig>,
}

#[elspeth::llm_transform(tracing, name = azure_llm)]
struct Other {
    config: Option<elspeth::config::TracingConfig>,
}

fn main() {}
