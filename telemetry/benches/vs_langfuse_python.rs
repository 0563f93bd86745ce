//! Record cost of one trace + generation: elspeth vs the official Langfuse
//! Python SDK, both exporting to the same local Langfuse mock, measured in
//! one run. Prints both medians and the ratio (target ≥ 50×).
//!
//! The Python side runs in a virtualenv under `target/langfuse-py-venv`
//! (created on first run with `python3 -m venv` and `pip install
//! langfuse==5.0.4`, the version the reference captures come from). Without
//! Python, venv or network access to PyPI it prints why and skips.
//!
//! `cargo bench -p elspeth-telemetry --bench vs_langfuse_python`
//!
//! It also prints the `figure` line of `benches/support/figure.rs`
//! (`telemetry.vs_langfuse_python`), or a skipped one saying why.

use std::process::Command;
use std::time::{Duration, Instant};

use elspeth_core::call::{GenAiSystem, LlmRequest, LlmResponse, Usage};
use elspeth_mock::langfuse::LangfuseMock;
use elspeth_telemetry::TracingProvider;
use elspeth_telemetry::export::ExportConfig;
use elspeth_telemetry::langfuse::{LangfuseSettings, langfuse_exporter};
use elspeth_telemetry::{GenerationStart, SpanSink, TraceStart, Tracer, TracerOptions};

#[path = "../../benches/support/figure.rs"]
mod figure;
#[path = "../../benches/support/langfuse_py.rs"]
mod langfuse_py;

use langfuse_py::{python, target_dir};

const PK: &str = "pk-lf-bench";
const SK: &str = "sk-lf-bench";
const CALLS: usize = 5_000;

/// The same trace + generation as the Rust side records (one row trace with
/// one generation),
/// timed per call with `perf_counter_ns`.
const SCRIPT: &str = r#"
import json, statistics, sys, time
import langfuse
from langfuse import Langfuse, propagate_attributes

host, pk, sk, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lf = Langfuse(public_key=pk, secret_key=sk, host=host, environment="bench", release="1.2.3")

def one(i):
    meta = {"token_id": f"tok-{i}", "plugin": "azure_llm", "deployment": "gpt-4o"}
    with propagate_attributes(trace_name="elspeth.azure_llm", metadata=meta, tags=["bench"]):
        with lf.start_as_current_observation(as_type="span", name="elspeth.azure_llm", metadata=meta):
            with lf.start_as_current_observation(as_type="generation", name="llm_call", model="gpt-4o", input="Classify: hello world") as gen:
                gen.update(output="positive", usage_details={"input": 12, "output": 3, "total": 15}, metadata={"latency_ms": 123.4})

for i in range(200):
    one(-i)
times = []
for i in range(n):
    t0 = time.perf_counter_ns()
    one(i)
    times.append(time.perf_counter_ns() - t0)
t0 = time.perf_counter_ns()
lf.flush()
flush_ns = time.perf_counter_ns() - t0
print(json.dumps({"version": langfuse.__version__, "median_ns": statistics.median(times), "mean_ns": statistics.fmean(times), "flush_ms": flush_ns / 1e6}))
"#;

const FIGURE_ID: &str = "telemetry.vs_langfuse_python";
/// What the figure measures.
fn figure_what() -> String {
    format!(
        "record one trace + generation to a local Langfuse mock, median per call over {CALLS} calls, both in one run"
    )
}
const FIGURE_TARGET: &str = "≥ 50×";

/// Says why the comparison is skipped, for people and for the report.
fn skip(why: &str) {
    println!("vs_langfuse_python skipped: {why}");
    let first_line = why.lines().find(|l| !l.trim().is_empty()).unwrap_or(why);
    figure::Figure::skipped(FIGURE_ID, &figure_what(), FIGURE_TARGET, first_line).print();
}

fn main() {
    let python = match python() {
        Ok(p) => p,
        Err(why) => return skip(&why),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mock = rt.block_on(LangfuseMock::spawn(PK, SK)).expect("mock");

    // Python SDK.
    let script = target_dir()
        .join("langfuse-py-venv")
        .join("bench_record.py");
    std::fs::write(&script, SCRIPT).expect("write the script");
    let output = Command::new(&python)
        .arg(&script)
        .args([mock.url(), PK.into(), SK.into(), CALLS.to_string()])
        .output()
        .expect("run python");
    if !output.status.success() {
        return skip(&format!(
            "the Python script failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let py: serde_json::Value = match serde_json::from_slice(
        output
            .stdout
            .rsplit(|b| *b == b'\n')
            .find(|l| !l.is_empty())
            .unwrap_or_default(),
    ) {
        Ok(v) => v,
        Err(e) => return skip(&format!("unexpected Python output ({e})")),
    };
    let py_median_ns = py["median_ns"].as_f64().unwrap_or(f64::NAN);
    let py_spans = mock.span_count();
    mock.clear();

    // elspeth, same mock, same shape.
    let exporter = {
        let _guard = rt.enter();
        let mut settings = LangfuseSettings::new(mock.url(), PK, SK.into());
        settings.environment = Some("bench".into());
        settings.release = Some("1.2.3".into());
        settings.tags = vec!["bench".into()];
        langfuse_exporter(settings, ExportConfig::default()).expect("exporter")
    };
    let tracer = Tracer::new(
        exporter.clone(),
        TracerOptions {
            provider: TracingProvider::Langfuse,
            content_recording: true,
            sample_rate: 1.0,
            trace_failures: true,
        },
    );
    let request = LlmRequest::user("gpt-4o", "Classify: hello world");
    let response = LlmResponse {
        content: "positive".into(),
        model: Some("gpt-4o".into()),
        usage: Some(Usage {
            input: 12,
            output: 3,
            total: 15,
            ..Default::default()
        }),
        ..Default::default()
    };
    let one = |i: usize| {
        let token = format!("tok-{i}");
        let trace = tracer.start_trace(TraceStart {
            plugin: "azure_llm",
            token_id: &token,
            model_key: "deployment",
            model: "gpt-4o",
            row: None,
        });
        trace
            .generation(GenerationStart::new(GenAiSystem::AzureOpenAi, &request))
            .succeed(&response);
        trace.end();
    };
    for i in 0..200 {
        one(i);
    }
    // Per-call cost, measured over groups of 10 calls (Instant's own cost
    // would otherwise dominate), median of the groups.
    let mut samples = Vec::with_capacity(CALLS / 10);
    for g in 0..CALLS / 10 {
        let t0 = Instant::now();
        for i in 0..10 {
            one(g * 10 + i);
        }
        samples.push(t0.elapsed().as_nanos() as f64 / 10.0);
    }
    samples.sort_by(f64::total_cmp);
    let ours_ns = samples[samples.len() / 2];
    let summary = rt.block_on(exporter.shutdown(Duration::from_secs(30)));

    println!(
        "record one trace + generation (median per call, {CALLS} calls, local Langfuse mock):"
    );
    println!(
        "  Langfuse Python SDK {}: {:>9.2} µs   ({} spans received)",
        py["version"].as_str().unwrap_or("?"),
        py_median_ns / 1000.0,
        py_spans
    );
    println!(
        "  elspeth (Rust):           {:>9.3} µs   ({} spans sent, {} dropped, {} failed)",
        ours_ns / 1000.0,
        summary.sent,
        summary.dropped,
        summary.failed
    );
    println!(
        "  ratio: {:.0}x faster (target ≥ 50x){}",
        py_median_ns / ours_ns,
        if py_median_ns / ours_ns >= 50.0 {
            ""
        } else {
            "  BELOW TARGET"
        }
    );
    let ratio = py_median_ns / ours_ns;
    figure::Figure::new(
        FIGURE_ID,
        &figure_what(),
        format!("{:.3}", ours_ns / 1000.0),
        "µs",
    )
    .anchor(
        &format!(
            "Langfuse Python SDK {}",
            py["version"].as_str().unwrap_or("?")
        ),
        format!("{:.2} µs", py_median_ns / 1000.0),
    )
    .ratio(format!("{ratio:.1}×"))
    .target(FIGURE_TARGET, ratio >= 50.0)
    .print();
}
