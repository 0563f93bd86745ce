//! Memory stays bounded when the backend is down: 100,000 recorded
//! generations (each in its own trace: 200,000 spans) against a Langfuse
//! host where nothing listens, default settings (queue of 10,000 spans).
//! Prints the peak RSS growth (target ≤ 50 MB) and checks that every span is
//! accounted for exactly (`sent + dropped + failed + pending = recorded`).
//!
//! `cargo bench -p elspeth-telemetry --bench memory`
//!
//! It also prints the `figure` lines of `benches/support/figure.rs`
//! (`telemetry.memory_growth`, `telemetry.spans_accounted`).

use std::time::{Duration, Instant};

use elspeth_core::call::{GenAiSystem, LlmRequest, LlmResponse, Usage};
use elspeth_telemetry::TracingProvider;
use elspeth_telemetry::export::ExportConfig;
use elspeth_telemetry::langfuse::{LangfuseSettings, langfuse_exporter};
use elspeth_telemetry::{GenerationStart, SpanSink, TraceStart, Tracer, TracerOptions};

#[path = "../../benches/support/figure.rs"]
mod figure;

const GROWTH_WHAT: &str = "peak RSS growth while recording 100,000 generations (200,000 spans) with the Langfuse backend down, default queue of 10,000 spans";
const GROWTH_TARGET: &str = "≤ 50 MB";
const ACCOUNTED_WHAT: &str =
    "spans accounted for after shutdown: sent + dropped + failed + pending";
const ACCOUNTED_TARGET: &str = "= recorded";

/// `VmRSS` and `VmHWM` from /proc/self/status, in KiB.
fn rss_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets the peak (`VmHWM`) to the current RSS, where the kernel allows it.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    const GENERATIONS: u64 = 100_000;
    let Some((rss_start, _)) = rss_kib() else {
        let why = "/proc/self/status is not available on this system";
        println!("memory bench skipped: {why}");
        figure::Figure::skipped("telemetry.memory_growth", GROWTH_WHAT, GROWTH_TARGET, why).print();
        figure::Figure::skipped(
            "telemetry.spans_accounted",
            ACCOUNTED_WHAT,
            ACCOUNTED_TARGET,
            why,
        )
        .print();
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let exporter = {
        let _guard = rt.enter();
        langfuse_exporter(
            LangfuseSettings::new(
                format!("http://127.0.0.1:{dead_port}"),
                "pk-lf-mem",
                "sk-lf-mem".into(),
            ),
            ExportConfig::default(),
        )
        .expect("exporter")
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
    let request = LlmRequest::user(
        "gpt-4o",
        "Classify the sentiment of this customer ticket: the parcel arrived late and damaged.",
    );
    let response = LlmResponse {
        content: "negative".into(),
        model: Some("gpt-4o-2024-08-06".into()),
        usage: Some(Usage {
            input: 31,
            output: 1,
            total: 32,
            ..Default::default()
        }),
        finish_reason: Some("stop".into()),
        id: Some("chatcmpl-1".into()),
        cost: None,
    };
    let (rss_before, _) = rss_kib().expect("rss");
    let peak_reset = reset_peak();
    let started = Instant::now();
    for i in 0..GENERATIONS {
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
    }
    let recording = started.elapsed();
    let (rss_after, hwm) = rss_kib().expect("rss");
    let summary = rt.block_on(exporter.shutdown(Duration::from_secs(2)));
    let recorded = exporter.enqueued();
    let accounted = summary.sent + summary.dropped + summary.failed + summary.pending;
    let growth_mib = (hwm.max(rss_after).saturating_sub(rss_before)) as f64 / 1024.0;
    println!(
        "memory bench: {GENERATIONS} generations (200,000 spans) recorded in {recording:.2?} with the backend down"
    );
    println!(
        "  RSS at start {:.1} MiB, before recording {:.1} MiB, after {:.1} MiB, peak {:.1} MiB{}",
        rss_start as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        hwm as f64 / 1024.0,
        if peak_reset {
            ""
        } else {
            " (peak since process start: /proc/self/clear_refs not writable)"
        }
    );
    println!("  peak RSS growth: {growth_mib:.1} MiB (target ≤ 50 MB)");
    println!(
        "  spans recorded {recorded}: sent {}, dropped {}, failed {}, pending {} (sum {accounted})",
        summary.sent, summary.dropped, summary.failed, summary.pending
    );
    let growth_bytes = hwm.max(rss_after).saturating_sub(rss_before) * 1024;
    let growth_what = if peak_reset {
        GROWTH_WHAT.to_string()
    } else {
        format!("{GROWTH_WHAT} (peak since process start: clear_refs not writable)")
    };
    figure::Figure::new(
        "telemetry.memory_growth",
        &growth_what,
        format!("{:.1}", growth_bytes as f64 / 1e6),
        "MB",
    )
    .anchor(
        "RSS before recording",
        format!("{:.1} MB", rss_before as f64 * 1024.0 / 1e6),
    )
    .target(GROWTH_TARGET, growth_bytes <= 50_000_000)
    .print();
    figure::Figure::new(
        "telemetry.spans_accounted",
        &format!(
            "{ACCOUNTED_WHAT} ({} + {} + {} + {})",
            summary.sent, summary.dropped, summary.failed, summary.pending
        ),
        accounted,
        "spans",
    )
    .anchor("spans recorded (2 per generation)", recorded)
    .target(
        ACCOUNTED_TARGET,
        recorded == 2 * GENERATIONS && accounted == recorded,
    )
    .print();
    let mut ok = true;
    if recorded != 2 * GENERATIONS || accounted != recorded {
        println!("  FAIL: spans are not accounted for exactly");
        ok = false;
    }
    if growth_mib * 1024.0 * 1024.0 > 50_000_000.0 {
        println!("  FAIL: peak RSS growth above 50 MB");
        ok = false;
    }
    if !ok {
        std::process::exit(1);
    }
    println!("  OK");
}
