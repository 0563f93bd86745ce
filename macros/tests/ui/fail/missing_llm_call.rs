#[elspeth::llm_transform(tracing)]
struct Sentiment {
    config: Option<elspeth::config::TracingConfig>,
}

fn main() {}
