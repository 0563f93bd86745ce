#[elspeth::llm_transform(tracing, mode = jbo)]
struct Sentiment {
    config: Option<elspeth::config::TracingConfig>,
}

fn main() {}
