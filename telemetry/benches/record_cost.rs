//! Per-call record cost: one trace + one generation (start, succeed, end)
//! with an active Langfuse exporter exporting in the background to a local
//! mock. Targets: median ≤ 1 µs, at most 8 heap allocations per trace +
//! generation (counted by a counting global allocator).
//!
//! - `sustained`: calls are recorded in bursts of 256 (timed); after each
//!   burst the bench waits (not timed) until the background exporter has
//!   caught up to at most 1,024 pending spans — the exporter is busy
//!   encoding and sending while calls are recorded, but never saturated,
//!   which is the situation of a real pipeline (LLM backends serve far
//!   fewer calls than the exporter sends). This is the headline figure.
//! - `saturated`: a tight loop, the worst case: the queue is always full,
//!   every enqueue evicts (and frees) the oldest span, and the exporter
//!   encodes and the mock decodes on the same two cores all the time.
//! - `tracing off`: a disabled tracer, for reference.
//!
//! `cargo bench -p elspeth-telemetry --bench record_cost`
//!
//! After criterion's report it prints the `figure` lines of
//! `benches/support/figure.rs`: the criterion medians of the three cases.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use elspeth_core::call::{GenAiSystem, LlmRequest, LlmResponse, Usage};
use elspeth_mock::langfuse::LangfuseMock;
use elspeth_telemetry::TracingProvider;
use elspeth_telemetry::export::ExportConfig;
use elspeth_telemetry::langfuse::{LangfuseSettings, langfuse_exporter};
use elspeth_telemetry::{GenerationStart, SpanSink, TraceStart, Tracer, TracerOptions};

#[path = "../../benches/support/figure.rs"]
mod figure;

/// Counts the allocations made on the recording thread (the background
/// exporter's are not the recording's cost).
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    std::thread_local! {
        static COUNT: Cell<u64> = const { Cell::new(0) };
    }

    pub(crate) struct Counting;

    // SAFETY: every call is forwarded to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            COUNT.with(|c| c.set(c.get() + 1));
            // SAFETY: forwarded with the caller's layout.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from `alloc` above, i.e. from `System`.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            COUNT.with(|c| c.set(c.get() + 1));
            // SAFETY: as `dealloc`, and the new size is the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// Allocations made on this thread so far.
    pub(crate) fn count() -> u64 {
        COUNT.with(Cell::get)
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Allocations per recorded trace + generation, averaged over `n` calls.
static ALLOCS_PER_RECORD: std::sync::Mutex<Option<f64>> = std::sync::Mutex::new(None);

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mock = rt
        .block_on(LangfuseMock::spawn("pk-lf-bench", "sk-lf-bench"))
        .expect("mock");
    let exporter = {
        let _guard = rt.enter();
        langfuse_exporter(
            LangfuseSettings::new(mock.url(), "pk-lf-bench", "sk-lf-bench".into()),
            ExportConfig::default(),
        )
        .expect("exporter")
    };
    // The mock keeps every request it accepts (raw body and decoded
    // message) for tests to inspect; over a bench's millions of spans that
    // is gigabytes, and its growth (fresh pages, page faults) would load
    // the cores the recording runs on. Between timed bursts it forgets
    // them (on its own runtime, which allocated them: freed there). It
    // still decodes and checks every request like a test run.
    let forget_received = || {
        let received = mock.mock.clone();
        rt.spawn(async move { received.clear() });
    };
    let request = LlmRequest::user("gpt-4o", "Classify: hello world");
    let response = LlmResponse {
        content: "positive".into(),
        model: Some("gpt-4o-2024-08-06".into()),
        usage: Some(Usage {
            input: 12,
            output: 3,
            total: 15,
            ..Default::default()
        }),
        finish_reason: Some("stop".into()),
        id: Some("chatcmpl-1".into()),
        cost: None,
    };
    let start = TraceStart {
        plugin: "azure_llm",
        token_id: "tok-1",
        model_key: "deployment",
        model: "gpt-4o",
        row: None,
    };
    let record = |tracer: &Tracer| {
        let trace = tracer.start_trace(black_box(start));
        trace
            .generation(GenerationStart::new(
                GenAiSystem::AzureOpenAi,
                black_box(&request),
            ))
            .succeed(black_box(&response));
        trace.end();
    };
    {
        let tracer = Tracer::new(
            exporter.clone(),
            TracerOptions {
                provider: TracingProvider::Langfuse,
                content_recording: true,
                sample_rate: 1.0,
                trace_failures: true,
            },
        );
        for _ in 0..1_000 {
            record(&tracer); // warm: the queue has grown, the caches are hot
        }
        while exporter.summary().pending > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let n = 512;
        let before = counting::count();
        for _ in 0..n {
            record(&tracer);
        }
        let per = (counting::count() - before) as f64 / f64::from(n);
        eprintln!("allocations per trace + generation (content on): {per:.1}");
        *ALLOCS_PER_RECORD.lock().unwrap() = Some(per);
    }
    {
        // The sustained case outside criterion, with the recording thread's
        // own CPU time next to the wall time: on a loaded machine the wall
        // time includes the time the thread was preempted, its CPU time
        // does not (a diagnostic line, not a figure).
        let tracer = Tracer::new(
            exporter.clone(),
            TracerOptions {
                provider: TracingProvider::Langfuse,
                content_recording: true,
                sample_rate: 1.0,
                trace_failures: true,
            },
        );
        let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
        let bursts = 400;
        for _ in 0..bursts {
            let (t0, c0) = (Instant::now(), thread_cpu());
            for _ in 0..256 {
                record(&tracer);
            }
            cpu += thread_cpu() - c0;
            wall += t0.elapsed();
            while exporter.summary().pending > 1024 {
                std::thread::sleep(Duration::from_micros(200));
            }
            forget_received();
        }
        let calls = f64::from(bursts * 256);
        eprintln!(
            "sustained (content on), {calls} calls: {:.3} µs wall, {:.3} µs recording-thread CPU per call",
            wall.as_secs_f64() * 1e6 / calls,
            cpu.as_secs_f64() * 1e6 / calls
        );
    }
    for (name, content) in [
        ("sustained: trace+generation (langfuse, content on)", true),
        ("sustained: trace+generation (langfuse, content off)", false),
    ] {
        let tracer = Tracer::new(
            exporter.clone(),
            TracerOptions {
                provider: TracingProvider::Langfuse,
                content_recording: content,
                sample_rate: 1.0,
                trace_failures: true,
            },
        );
        c.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(256);
                    let t0 = Instant::now();
                    for _ in 0..n {
                        record(&tracer);
                    }
                    timed += t0.elapsed();
                    left -= n;
                    // Untimed: let the exporter catch up (never saturated).
                    while exporter.summary().pending > 1024 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    forget_received();
                }
                timed
            })
        });
    }
    let tracer = Tracer::new(
        exporter.clone(),
        TracerOptions {
            provider: TracingProvider::Langfuse,
            content_recording: true,
            sample_rate: 1.0,
            trace_failures: true,
        },
    );
    c.bench_function("saturated: trace+generation (langfuse, content on)", |b| {
        b.iter_custom(|iters| {
            // A tight loop; the mock forgets what it received every 4,096
            // calls (untimed), like in the sustained case.
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(4096);
                let t0 = Instant::now();
                for _ in 0..n {
                    record(&tracer);
                }
                timed += t0.elapsed();
                left -= n;
                forget_received();
            }
            timed
        })
    });
    // The recording alone: a sink that frees each span at once.
    struct Discard;
    impl SpanSink for Discard {
        fn label(&self) -> String {
            "discard".into()
        }
        fn enqueue(&self, span: elspeth_telemetry::record::SpanRecord) {
            drop(black_box(span));
        }
        fn flush(
            &self,
            _: Duration,
        ) -> elspeth_telemetry::sink::BoxFuture<'_, elspeth_telemetry::ExportSummary> {
            Box::pin(async { elspeth_telemetry::ExportSummary::default() })
        }
        fn summary(&self) -> elspeth_telemetry::ExportSummary {
            elspeth_telemetry::ExportSummary::default()
        }
    }
    let discard = Tracer::new(
        std::sync::Arc::new(Discard),
        TracerOptions {
            provider: TracingProvider::Langfuse,
            content_recording: true,
            sample_rate: 1.0,
            trace_failures: true,
        },
    );
    c.bench_function("record only: trace+generation (spans discarded)", |b| {
        b.iter(|| record(&discard))
    });
    let disabled = Tracer::disabled();
    c.bench_function("record trace+generation (tracing off)", |b| {
        b.iter(|| {
            let trace = disabled.start_trace(black_box(start));
            trace
                .generation(GenerationStart::new(
                    GenAiSystem::AzureOpenAi,
                    black_box(&request),
                ))
                .succeed(black_box(&response));
            trace.end();
        })
    });
    let summary = rt.block_on(exporter.shutdown(Duration::from_secs(10)));
    eprintln!(
        "exporter after the bench: {} sent, {} dropped (queue full: the bench records far faster than any pipeline), {} failed; mock received {} spans since it last forgot them",
        summary.sent,
        summary.dropped,
        summary.failed,
        mock.span_count()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = bench
}

fn main() {
    let Some(started) = figure::criterion_main(benches) else {
        return;
    };
    // criterion's result folders: its ids with ':' replaced by '_'.
    let median_us = |dir: &str| figure::criterion_median_ns(dir, started).map(|ns| ns / 1e3);
    let off = median_us("record trace+generation (tracing off)");
    let off = off.map_or_else(|_| "-".to_string(), |us| format!("{us:.3} µs"));
    for (id, dir, what, target) in [
        (
            "telemetry.record_cost",
            "sustained_ trace+generation (langfuse, content on)",
            "record one trace + generation, Langfuse exporter active in the background, content on (criterion median)",
            Some("≤ 1 µs"),
        ),
        (
            "telemetry.record_cost_content_off",
            "sustained_ trace+generation (langfuse, content off)",
            "the same with content recording off (criterion median)",
            Some("≤ 1 µs"),
        ),
        (
            "telemetry.record_cost_saturated",
            "saturated_ trace+generation (langfuse, content on)",
            "worst case: tight loop, export queue always full, exporter and mock on the same cores (criterion median)",
            None,
        ),
    ] {
        match median_us(dir) {
            Ok(us) => {
                let f = figure::Figure::new(id, what, format!("{us:.3}"), "µs")
                    .anchor("tracing off (disabled tracer)", &off);
                match target {
                    Some(t) => f.target(t, us <= 1.0),
                    None => f,
                }
                .print();
            }
            Err(why) => figure::Figure::skipped(id, what, target.unwrap_or("-"), why).print(),
        }
    }
    let what = "heap allocations per trace + generation on the recording thread (counting allocator, content on)";
    match *ALLOCS_PER_RECORD.lock().unwrap() {
        Some(n) => figure::Figure::new(
            "telemetry.record_allocations",
            what,
            format!("{n:.1}"),
            "allocations",
        )
        .target("≤ 8", n <= 8.0)
        .print(),
        None => {
            figure::Figure::skipped("telemetry.record_allocations", what, "≤ 8", "not measured")
                .print()
        }
    }
}
