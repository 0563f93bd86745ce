#[elspeth::llm_transform(tracing)]
enum Sentiment {
    Positive,
    Negative,
}

fn main() {}
