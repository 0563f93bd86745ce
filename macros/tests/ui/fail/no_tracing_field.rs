use elspeth::config::TracingConfig;

#[elspeth::llm_transform(tracing)]
struct Sentiment {
    options: Option<TracingConfig>,
    model: String,
}

fn main() {}
