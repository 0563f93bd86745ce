use elspeth::config::TracingConfig;

#[elspeth::llm_transform(name = "x")]
struct Sentiment {
    #[tracing]
    options: Option<TracingConfig>,
}

fn main() {}
