//! Per-call cost that `#[llm_transform(tracing)]` adds to a transform.
//!
//! Three ways to process the same row with the same struct, in one run:
//! - `plain`: the author's `plan` → `call` → `merge` composed by hand, no
//!   attribute involved (the baseline);
//! - `macro/none`: the generated `Transform::process` with tracing `none`;
//! - `macro/active`: the generated `process` with an active provider whose
//!   sink is the real export queue (`elspeth_telemetry::export::Exporter`,
//!   background batching on a Tokio worker) over a backend that accepts
//!   every batch without I/O.
//!
//! The LLM call itself returns at once, so what is measured is the
//! lifecycle around it. Targets: ≤ 50 ns added with tracing `none`,
//! ≤ 2 µs added with an active provider (medians). Criterion reports each
//! variant; a summary then measures all three interleaved and prints the
//! medians, the added cost and the ratios, then the two `figure` lines of
//! `benches/support/figure.rs` (`macro.added_none`, `macro.added_active`).
//!
//! Run: `cargo bench --bench llm_transform`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use elspeth::config::{EnvString, LangfuseTracingConfig, SecretRef, TracingConfig};
use elspeth::llm::{ChatMessage, GenAiSystem, LlmError, LlmRequest, LlmResponse, Usage};
use elspeth::telemetry::export::{ExportConfig, Exporter, SendOutcome, Transport};
use elspeth::telemetry::record::SpanRecord;
use elspeth::telemetry::sink::BoxFuture;
use elspeth::telemetry::{Tracer, TracingRegistry, TransformLabel};
use elspeth::{
    LlmCall, PlannedCall, Row, RowContext, RowError, StartContext, Transform, llm_transform,
};
use serde_json::json;

#[path = "support/figure.rs"]
mod figure;

/// A transform whose call answers at once.
#[llm_transform(tracing, name = "bench_llm")]
struct BenchTransform {
    tracing: Option<TracingConfig>,
    request: LlmRequest,
    response: LlmResponse,
}

impl LlmCall for BenchTransform {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::AzureOpenAi
    }
    fn model_label(&self) -> (&'static str, &str) {
        ("deployment", "gpt-4o")
    }
    fn plan(&self, _row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        Ok(vec![PlannedCall::single(self.request.clone())])
    }
    async fn call(&self, _request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        Ok(self.response.clone())
    }
}

/// The baseline: the same author code, composed by hand.
async fn plain(t: &BenchTransform, row: Row) -> Result<Row, RowError> {
    let mut calls = t.plan(&row)?;
    let call = calls.pop().expect("one call");
    let result = t.call(&call.request).await;
    t.merge(row, vec![(call, result)])
}

/// The backend: accepts every batch without I/O, so the figures are the
/// hot path plus the real exporter's queue (the `Exporter` of
/// `elspeth-telemetry`, batching in a background task), not the network.
struct NullTransport;

impl Transport for NullTransport {
    fn label(&self) -> String {
        "bench-null".into()
    }
    fn auth_hint(&self) -> String {
        String::new()
    }
    fn send<'a>(
        &'a self,
        batch: &'a [SpanRecord],
        _truncate_to: Option<usize>,
    ) -> BoxFuture<'a, SendOutcome> {
        black_box(batch.len());
        Box::pin(async { SendOutcome::Accepted })
    }
}

/// Polls a future that completes without waiting (every future here does).
fn run<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("bench futures complete at once"),
    }
}

struct Setup {
    transform: BenchTransform,
    none: Tracer,
    active: Tracer,
    row: Row,
}

/// The runtime the exporter's background worker runs on (one thread).
fn background() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

fn setup() -> Setup {
    let runtime = background();
    let prompt = "Classify the sentiment of this customer ticket: the delivery was late but support was great.";
    let mut transform = BenchTransform {
        tracing: Some(TracingConfig::Langfuse(LangfuseTracingConfig {
            public_key: Some(EnvString::new("${LANGFUSE_PUBLIC_KEY}")),
            secret_key: Some(SecretRef::new("${LANGFUSE_SECRET_KEY}")),
            ..LangfuseTracingConfig::default()
        })),
        request: LlmRequest {
            messages: vec![
                ChatMessage::system("You are a classifier."),
                ChatMessage::user(prompt),
            ],
            model: "gpt-4o".into(),
            temperature: Some(0.0),
            max_tokens: Some(16),
            response_format: None,
        },
        response: LlmResponse {
            content: "mixed".into(),
            model: Some("gpt-4o-2024-08-06".into()),
            usage: Some(Usage {
                input: 31,
                output: 1,
                total: 32,
                ..Default::default()
            }),
            finish_reason: Some("stop".into()),
            id: Some("chatcmpl-bench".into()),
            cost: None,
        },
    };
    let label = TransformLabel {
        index: 0,
        plugin: "bench_llm".into(),
    };
    let exporter = runtime
        .block_on(async { Exporter::start(Arc::new(NullTransport), ExportConfig::default()) })
        .expect("a runtime is running");
    let registry = Arc::new(TracingRegistry::fixed(exporter));
    let active = run(Transform::on_start(
        &mut transform,
        &StartContext::new(label.clone(), registry.clone()),
    ))
    .expect("starts");
    assert!(active.is_enabled());
    transform.tracing = Some(TracingConfig::None);
    let none = run(Transform::on_start(
        &mut transform,
        &StartContext::new(label, registry),
    ))
    .expect("starts");
    assert!(!none.is_enabled());
    let row = json!({"id": 17, "text": prompt})
        .as_object()
        .cloned()
        .expect("object");
    Setup {
        transform,
        none,
        active,
        row,
    }
}

#[derive(Clone, Copy)]
enum Variant {
    Plain,
    None,
    Active,
}

fn once(s: &Setup, v: Variant) -> Result<Row, RowError> {
    let row = s.row.clone();
    match v {
        Variant::Plain => run(plain(&s.transform, row)),
        Variant::None => run(Transform::process(
            &s.transform,
            row,
            RowContext::new("row-17", 17, &s.none),
        )),
        Variant::Active => run(Transform::process(
            &s.transform,
            row,
            RowContext::new("row-17", 17, &s.active),
        )),
    }
}

fn criterion_benches(c: &mut Criterion) {
    let s = setup();
    let mut group = c.benchmark_group("llm_transform/process");
    for (name, v) in [
        ("plain", Variant::Plain),
        ("macro_none", Variant::None),
        ("macro_active", Variant::Active),
    ] {
        group.bench_function(name, |b| b.iter(|| black_box(once(&s, v))));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = criterion_benches
}

/// Median time per call of `v`, in ns, over `samples` batches of `iters`.
fn sample(s: &Setup, v: Variant, iters: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(once(s, v)).expect("row ok");
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Interleaves the three variants so drift affects them alike, then prints
/// medians, the added cost and the ratios against the targets.
fn summary() {
    let s = setup();
    let (samples, iters) = (101, 2_000);
    for v in [Variant::Plain, Variant::None, Variant::Active] {
        sample(&s, v, iters); // warm up
    }
    let (mut plain, mut none, mut active) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples {
        plain.push(sample(&s, Variant::Plain, iters));
        none.push(sample(&s, Variant::None, iters));
        active.push(sample(&s, Variant::Active, iters));
    }
    let (plain, none, active) = (median(plain), median(none), median(active));
    let none_added = none - plain;
    let active_added = active - plain;
    let verdict = |ok: bool| if ok { "within target" } else { "OVER TARGET" };
    println!();
    println!("llm_transform per-call cost (median of {samples} samples x {iters} calls, one run)");
    println!("  plain (no attribute)        {plain:>9.1} ns");
    println!(
        "  macro, tracing none         {none:>9.1} ns   ratio {:.3}x",
        none / plain
    );
    println!(
        "  macro, active provider      {active:>9.1} ns   ratio {:.3}x",
        active / plain
    );
    println!(
        "  added, tracing none         {none_added:>9.1} ns   target <= 50 ns   ({:.2} of target, {})",
        none_added / 50.0,
        verdict(none_added <= 50.0)
    );
    println!(
        "  added, active provider      {active_added:>9.1} ns   target <= 2000 ns ({:.2} of target, {})",
        active_added / 2000.0,
        verdict(active_added <= 2000.0)
    );
    let summary = s.active.summary().expect("active");
    println!(
        "  background export: {} spans enqueued and sent or pending, {} dropped (queue full)",
        summary.sent + summary.pending,
        summary.dropped
    );
    for (id, tracing, total, added, target, limit) in [
        (
            "macro.added_none",
            "tracing none",
            none,
            none_added,
            "≤ 50 ns added",
            50.0,
        ),
        (
            "macro.added_active",
            "active provider, background export",
            active,
            active_added,
            "≤ 2 µs added",
            2000.0,
        ),
    ] {
        figure::Figure::new(
            id,
            &format!(
                "per-call cost #[llm_transform(tracing)] adds, {tracing} (median, interleaved)"
            ),
            format!("{added:.1}"),
            "ns",
        )
        .anchor(
            "plain call (same struct, no attribute)",
            format!("{plain:.1} ns"),
        )
        .ratio(format!("{:.3}×", total / plain))
        .target(target, added <= limit)
        .print();
    }
}

fn main() {
    // `cargo test --benches` runs benches without `--bench`: smoke only.
    if figure::criterion_main(benches).is_some() {
        summary();
    } else {
        let s = setup();
        for v in [Variant::Plain, Variant::None, Variant::Active] {
            assert_eq!(once(&s, v).expect("row ok")["llm_response"], "mixed");
        }
    }
}
