//! The official Langfuse SDK lost 14–17% of spans in a 20,000-call burst
//! with its default queue. At default settings ours loses nothing.
//!
//! The burst is shaped like a pipeline's: rows in flight concurrently, each
//! awaiting its LLM call (simulated by a 1 ms sleep, i.e. thousands of calls
//! per second — far more than a real LLM backend serves) and recording a
//! trace + generation. (A loop recording 20,000 spans with no call in
//! between enqueues faster than any exporter can send, so a bounded queue of
//! 10,000 must drop some of them by the pigeonhole principle; the
//! `record_cost` bench reports that case.)

mod common;

use std::time::Duration;

use common::*;
use elspeth_mock::langfuse::LangfuseMock;
use elspeth_telemetry::SpanSink;
use elspeth_telemetry::TracingProvider;
use elspeth_telemetry::export::ExportConfig;
use elspeth_telemetry::langfuse::{LangfuseSettings, langfuse_exporter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_20000_spans_loses_nothing_at_default_settings() {
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    let exporter = langfuse_exporter(
        LangfuseSettings::new(lf.url(), PK, SK.into()),
        ExportConfig::default(),
    )
    .unwrap();
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    // 10,000 rows = 20,000 spans (trace + generation), 8 rows in flight.
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let tracer = tracer.clone();
        let exporter = exporter.clone();
        let peak = peak.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..1250 {
                tokio::time::sleep(Duration::from_millis(1)).await; // the LLM call
                record_ok(&tracer, &format!("tok-{w}-{i}"), false);
                if i % 50 == 0 {
                    peak.fetch_max(
                        exporter.summary().pending,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let max_pending = peak.load(std::sync::atomic::Ordering::Relaxed);
    let summary = exporter.shutdown(Duration::from_secs(30)).await;
    assert_eq!(exporter.enqueued(), 20_000);
    assert_eq!(
        summary.dropped, 0,
        "{summary:?} (peak pending: {max_pending})"
    );
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(summary.sent, 20_000, "{summary:?}");
    assert_eq!(lf.span_count(), 20_000);
    // Memory stayed bounded: never more than the queue plus the batches in flight.
    let config = ExportConfig::default();
    assert!(max_pending <= (config.max_queue + config.max_in_flight * config.batch_size) as u64);
}
