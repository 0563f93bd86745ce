#[elspeth::llm_transform(tracing)]
union Bits {
    a: u32,
    b: f32,
}

fn main() {}
