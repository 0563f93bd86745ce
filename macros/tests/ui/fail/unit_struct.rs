#[elspeth::llm_transform]
struct Sentiment;

fn main() {}
