#[elspeth::llm_transform(tracin)]
struct Sentiment {
    config: Option<elspeth::config::TracingConfig>,
}

fn main() {}
