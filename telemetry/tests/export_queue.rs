//! The export queue itself, with a scripted transport: drop-oldest, one
//! summary line per exporter, deadlines, partial batches on the interval.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use elspeth_telemetry::SpanSink;
use elspeth_telemetry::TracingProvider;
use elspeth_telemetry::export::{ExportConfig, Exporter, SendOutcome, Transport};
use elspeth_telemetry::record::SpanRecord;
use elspeth_telemetry::sink::BoxFuture;

/// Records the token ids it is sent; answers after `delay`.
struct Recorder {
    label: String,
    delay: Duration,
    tokens: Mutex<Vec<String>>,
}

impl Recorder {
    fn new(label: &str, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            label: label.into(),
            delay,
            tokens: Mutex::new(Vec::new()),
        })
    }
}

impl Transport for Recorder {
    fn label(&self) -> String {
        self.label.clone()
    }
    fn auth_hint(&self) -> String {
        String::new()
    }
    fn send<'a>(
        &'a self,
        batch: &'a [SpanRecord],
        _t: Option<usize>,
    ) -> BoxFuture<'a, SendOutcome> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            let mut tokens = self.tokens.lock().unwrap();
            for span in batch {
                if let Some((_, v)) = span.trace.metadata.iter().find(|(k, _)| k == "token_id") {
                    tokens.push(v.as_str().unwrap_or_default().to_string());
                }
            }
            SendOutcome::Accepted
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_the_oldest_spans_and_counts_them() {
    let transport = Recorder::new("recorder-drop-oldest", Duration::ZERO);
    // A batch never fills and the interval never passes: spans stay queued
    // until the flush.
    let config = ExportConfig {
        max_queue: 6,
        batch_size: 100,
        interval: Duration::from_secs(3600),
        ..fast_config()
    };
    let exporter = Exporter::start(transport.clone(), config).unwrap();
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    for i in 0..10 {
        tracer.start_trace(start(&format!("t{i}"))).end(); // one span per trace
    }
    assert_eq!(exporter.summary().pending, 6);
    assert_eq!(exporter.summary().dropped, 4);
    let s = exporter.flush(Duration::from_secs(5)).await;
    assert_eq!((s.sent, s.dropped, s.failed, s.pending), (6, 4, 0, 0));
    assert_eq!(
        *transport.tokens.lock().unwrap(),
        vec!["t4", "t5", "t6", "t7", "t8", "t9"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_batches_leave_on_the_interval_without_a_flush() {
    let transport = Recorder::new("recorder-interval", Duration::ZERO);
    let config = ExportConfig {
        batch_size: 100,
        interval: Duration::from_millis(20),
        ..fast_config()
    };
    let exporter = Exporter::start(transport.clone(), config).unwrap();
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    record_ok(&tracer, "tick", false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while exporter.summary().sent < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(exporter.summary().sent, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_summary_line_per_exporter_and_flush_keeps_its_deadline() {
    let logs = logs();
    let transport = Recorder::new("recorder-summary-line", Duration::from_millis(1500));
    let exporter = Exporter::start(transport, fast_config()).unwrap();
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    record_ok(&tracer, "a", false);
    // The transport takes 1.5 s: a 50 ms flush returns long before that.
    let early = tokio::time::timeout(
        Duration::from_millis(1000),
        exporter.flush(Duration::from_millis(50)),
    )
    .await
    .expect("flush returns within its deadline");
    assert_eq!(early.pending, 2);
    let done = exporter.flush(Duration::from_secs(5)).await;
    assert_eq!(done.sent, 2);
    // Two transforms sharing the exporter both close: nothing new, no new line.
    exporter.flush(Duration::from_secs(5)).await;
    exporter.shutdown(Duration::from_secs(5)).await;
    let lines = logs.lines_with(&[
        "tracing export summary for recorder-summary-line",
        "2 spans sent",
    ]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    // After shutdown nothing is accepted any more; it is counted as dropped.
    record_ok(&tracer, "late", false);
    let after = exporter.summary();
    assert_eq!((after.sent, after.dropped, after.pending), (2, 2, 0));
}
