#[elspeth::llm_transform(tracing)]
fn classify() {}

fn main() {}
