use elspeth::config::TracingConfig;

#[elspeth::llm_transform(tracing)]
struct Sentiment(Option<TracingConfig>);

fn main() {}
