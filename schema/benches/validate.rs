//! End-to-end validation of a generated 1,000-transform pipeline: read the
//! file, parse the YAML, check `${VAR}` references, run the JSON Schema and
//! the semantic rules. Target: ≤ 20 ms on a 2-core machine.
//!
//! `cargo bench -p elspeth-schema --bench validate`
//!
//! After criterion's report it prints the `figure` line of
//! `benches/support/figure.rs`: the criterion median of the end-to-end case.

use criterion::{Criterion, criterion_group};
use elspeth_schema::yaml::{Limits, parse};
use elspeth_schema::{ValidateOptions, validate_file, validate_str};

#[path = "common.rs"]
mod common;
#[path = "../../benches/support/figure.rs"]
mod figure;

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

fn main() {
    let Some(started) = figure::criterion_main(benches) else {
        return;
    };
    let (id, target) = ("schema.validate", "≤ 20 ms");
    let what = "validate a 1,000-transform pipeline end to end (read, YAML, ${VAR}, JSON Schema, rules), criterion median";
    match figure::criterion_median_ns(
        "validate 1000 transforms/end to end (validate_file)",
        started,
    ) {
        Ok(ns) => {
            let ms = ns / 1e6;
            figure::Figure::new(id, what, format!("{ms:.2}"), "ms")
                .target(target, ms <= 20.0)
                .print();
        }
        Err(why) => figure::Figure::skipped(id, what, target, why).print(),
    }
}
