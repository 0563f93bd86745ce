//! End-to-end validation of a generated 1,000-transform pipeline: read the
//! file, parse the YAML, check `${VAR}` references, run the JSON Schema and
//! the semantic rules. Target: ≤ 20 ms on a 2-core machine.
//!
//! `cargo bench -p elspeth-schema --bench validate`

use criterion::{Criterion, criterion_group, criterion_main};
use elspeth_schema::yaml::{Limits, parse};
use elspeth_schema::{ValidateOptions, validate_file, validate_str};

#[path = "common.rs"]
mod common;

fn bench(c: &mut Criterion) {
    let path = common::pipeline_file();
    let text = std::fs::read_to_string(&path).unwrap();
    let opts = ValidateOptions::default();
    let first = validate_file(&path, &opts);
    assert!(first.diagnostics.is_empty(), "{}", first.render());
    assert_eq!(first.config.as_ref().unwrap().transforms.len(), 1000);

    let mut group = c.benchmark_group("validate 1000 transforms");
    group.sample_size(30);
    group.bench_function("end to end (validate_file)", |b| {
        b.iter(|| validate_file(&path, &opts))
    });
    group.bench_function("from text (validate_str)", |b| {
        b.iter(|| validate_str("bench.yaml", &text, &opts))
    });
    group.bench_function("YAML parse only", |b| {
        b.iter(|| parse(&text, &Limits::default()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
