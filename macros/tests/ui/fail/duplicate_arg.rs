#[elspeth::llm_transform(tracing, name = "a", name = "b")]
struct Sentiment {
    config: Option<elspeth::config::TracingConfig>,
}

fn main() {}
