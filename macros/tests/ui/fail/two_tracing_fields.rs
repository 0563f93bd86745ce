use elspeth::config::TracingConfig;

#[elspeth::llm_transform(tracing)]
struct Sentiment {
    #[tracing]
    a: Option<TracingConfig>,
    #[tracing]
    b: Option<TracingConfig>,
}

fn main() {}
