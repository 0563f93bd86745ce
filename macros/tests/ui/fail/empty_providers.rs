#[elspeth::llm_transform(tracing(providers = []))]
struct Sentiment {
    config: Option<elspeth::config::TracingConfig>,
}

fn main() {}
