#[elspeth::llm_transform(tracing = true)]
struct Sentiment {
    config: Option<elspeth::config::TracingConfig>,
}

fn main() {}
