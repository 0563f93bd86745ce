//! Every problem is reported at once, not the first only.
#[elspeth::llm_transform(tracing(providers = [langfuse, datadog]), nmae = "x", mode = batch)]
struct Sentiment {
    options: Option<elspeth::config::TracingConfig>,
}

fn main() {}
