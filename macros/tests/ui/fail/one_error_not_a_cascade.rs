//! A misused attribute is one error: the struct still implements
//! `Transform` (a stub), so handing it to a pipeline adds none.
#[elspeth::llm_transform(tracing, name = "Review Sentiment")]
struct Sentiment {
    config: Option<elspeth::config::TracingConfig>,
}

#[elspeth::llm_transform(tracing, mode = batch)]
struct Generic<T> {
    config: Option<elspeth::config::TracingConfig>,
    inner: T,
}

fn pipeline(p: elspeth::pipeline::Pipeline) -> elspeth::pipeline::Pipeline {
    p.with_transform(Box::new(Sentiment { config: None }))
        .with_transform(Box::new(Generic { config: None, inner: 1u8 }))
}

fn main() {
    let _ = pipeline;
}
