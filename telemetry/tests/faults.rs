//! Tracing never hurts the pipeline: for every backend fault the miniature
//! pipeline writes all its rows, the summary counts add up exactly
//! (`enqueued = sent + dropped + failed + pending`), the queue stays bounded
//! and `shutdown` returns within its deadline.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use elspeth_mock::Fault;
use elspeth_mock::appinsights::AppInsightsMock;
use elspeth_mock::langfuse::LangfuseMock;
use elspeth_telemetry::SpanSink;
use elspeth_telemetry::TracingProvider;
use elspeth_telemetry::appinsights::{AppInsightsSettings, ConnectionString, appinsights_exporter};
use elspeth_telemetry::export::{ExportConfig, Exporter};
use elspeth_telemetry::langfuse::{LangfuseSettings, langfuse_exporter};

fn langfuse(url: String, secret: &str, config: ExportConfig) -> Arc<Exporter> {
    langfuse_exporter(LangfuseSettings::new(url, PK, secret.into()), config).unwrap()
}

/// Shuts down within `deadline` (plus 2 s of slack for a loaded machine;
/// every slow backend below answers later than that).
async fn close(exporter: &Exporter, deadline: Duration) -> elspeth_telemetry::ExportSummary {
    tokio::time::timeout(
        deadline + Duration::from_secs(2),
        exporter.shutdown(deadline),
    )
    .await
    .expect("shutdown did not return within its deadline")
}

fn assert_adds_up(exporter: &Exporter, s: &elspeth_telemetry::ExportSummary) {
    assert_eq!(
        exporter.enqueued(),
        s.sent + s.dropped + s.failed + s.pending,
        "{s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down() {
    let config = ExportConfig {
        max_queue: 50,
        batch_size: 10,
        ..fast_config()
    };
    let exporter = langfuse(
        format!("http://127.0.0.1:{}", dead_port()),
        SK,
        config.clone(),
    );
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    let (rows, peak) = run_rows(&tracer, exporter.clone(), 300, "down").await;
    assert_eq!(rows.len(), 300, "every row is written");
    assert!(
        peak <= (config.max_queue + config.max_in_flight * config.batch_size) as u64,
        "peak {peak}"
    );
    let s = close(&exporter, Duration::from_millis(500)).await;
    assert_adds_up(&exporter, &s);
    assert_eq!(exporter.enqueued(), 600);
    assert_eq!(s.sent, 0);
    assert_eq!(s.pending, 0);
    assert!(
        s.dropped > 0,
        "a 50-span queue cannot hold 600 spans: {s:?}"
    );
    assert_eq!(s.dropped + s.failed, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_backend_5s() {
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    lf.faults().set_latency(Duration::from_secs(5));
    let exporter = langfuse(
        lf.url(),
        SK,
        ExportConfig {
            request_timeout: Duration::from_secs(10),
            ..fast_config()
        },
    );
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    let (rows, _) = run_rows(&tracer, exporter.clone(), 20, "slow").await;
    assert_eq!(rows.len(), 20);
    let flushed = tokio::time::timeout(
        Duration::from_secs(3),
        exporter.flush(Duration::from_millis(300)),
    )
    .await
    .expect("flush returns within its deadline");
    assert_eq!(flushed.pending, 40, "{flushed:?}");
    let s = close(&exporter, Duration::from_millis(300)).await;
    assert_adds_up(&exporter, &s);
    assert_eq!((s.sent, s.dropped, s.failed, s.pending), (0, 0, 40, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_429_honours_retry_after() {
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    lf.faults().push_n(
        Fault::Status {
            code: 429,
            retry_after: Some(0.15),
        },
        3,
    );
    let exporter = langfuse(lf.url(), SK, fast_config());
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    let started = Instant::now();
    let (rows, _) = run_rows(&tracer, exporter.clone(), 20, "429").await;
    assert_eq!(rows.len(), 20);
    let s = close(&exporter, Duration::from_secs(10)).await;
    assert_adds_up(&exporter, &s);
    assert_eq!((s.sent, s.dropped, s.failed), (40, 0, 0));
    assert_eq!(lf.span_count(), 40);
    let statuses: Vec<u16> = lf.requests().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..3], &[429, 429, 429], "{statuses:?}");
    // Three waits of at least Retry-After (0.15 s) each happened.
    assert!(started.elapsed() >= Duration::from_millis(450));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_429_storm_gives_up_without_a_retry_storm() {
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    lf.faults().set_default(Some(Fault::status(429)));
    let config = fast_config();
    let exporter = langfuse(lf.url(), SK, config.clone());
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    let (rows, _) = run_rows(&tracer, exporter.clone(), 20, "storm").await;
    assert_eq!(rows.len(), 20);
    let s = close(&exporter, Duration::from_secs(10)).await;
    assert_adds_up(&exporter, &s);
    assert_eq!((s.sent, s.dropped, s.failed, s.pending), (0, 0, 40, 0));
    let batches = lf.requests().len() as u32;
    assert!(
        batches <= 40 * config.retry.max_attempts()
            && batches.is_multiple_of(config.retry.max_attempts()),
        "each batch is tried exactly max_attempts times: {batches} requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried() {
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    lf.faults()
        .push_n(Fault::status(500), 2)
        .push(Fault::status(503));
    let exporter = langfuse(lf.url(), SK, fast_config());
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    let (rows, _) = run_rows(&tracer, exporter.clone(), 20, "500").await;
    assert_eq!(rows.len(), 20);
    let s = close(&exporter, Duration::from_secs(10)).await;
    assert_adds_up(&exporter, &s);
    assert_eq!((s.sent, s.failed), (40, 0));
    assert_eq!(lf.span_count(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_is_retried() {
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    lf.faults().push_n(Fault::DropConnection, 2);
    let exporter = langfuse(lf.url(), SK, fast_config());
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    let (rows, _) = run_rows(&tracer, exporter.clone(), 20, "reset").await;
    assert_eq!(rows.len(), 20);
    let s = close(&exporter, Duration::from_secs(10)).await;
    assert_adds_up(&exporter, &s);
    assert_eq!((s.sent, s.failed), (40, 0));
    assert_eq!(lf.span_count(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_disables_with_one_warning_and_no_retry_storm() {
    let logs = logs();
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    let wrong = "sk-lf-wrong-secret-9f8e7d";
    let exporter = langfuse(
        lf.url(),
        wrong,
        ExportConfig {
            batch_size: 10,
            ..fast_config()
        },
    );
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    let (rows, _) = run_rows(&tracer, exporter.clone(), 20, "401").await;
    assert_eq!(rows.len(), 20);
    exporter.flush(Duration::from_secs(5)).await;
    assert!(exporter.is_disabled());
    // Rows keep flowing after the exporter is disabled; nothing is queued.
    let (rows, _) = run_rows(&tracer, exporter.clone(), 20, "401-after").await;
    assert_eq!(rows.len(), 20);
    let s = close(&exporter, Duration::from_secs(5)).await;
    assert_adds_up(&exporter, &s);
    assert_eq!((s.sent, s.dropped, s.failed, s.pending), (0, 0, 80, 0));
    let requests = lf.requests();
    assert!(
        requests.len() <= 2,
        "no retry storm: {} requests",
        requests.len()
    );
    assert!(requests.iter().all(|r| r.status == 401));
    let label = exporter.label();
    let warnings = logs.lines_with(&["WARN", "rejected the credentials", &label]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        !logs.text().contains(wrong),
        "the secret never reaches a log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_too_large_splits_and_truncates() {
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    lf.set_max_body(Some(32 * 1024));
    let exporter = langfuse(lf.url(), SK, fast_config());
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    let (rows, _) = run_rows(&tracer, exporter.clone(), 60, "413").await;
    assert_eq!(rows.len(), 60);
    // One row whose prompt alone is larger than the backend accepts.
    let huge = "x".repeat(200 * 1024);
    let trace = tracer.start_trace(start("huge"));
    let req = elspeth_core::call::LlmRequest::user("gpt-4o", huge.clone());
    trace
        .generation(elspeth_telemetry::GenerationStart::new(
            elspeth_core::call::GenAiSystem::AzureOpenAi,
            &req,
        ))
        .succeed(&response());
    trace.end();
    let s = close(&exporter, Duration::from_secs(10)).await;
    assert_adds_up(&exporter, &s);
    assert_eq!((s.sent, s.dropped, s.failed), (122, 0, 0), "{s:?}");
    assert_eq!(lf.span_count(), 122);
    assert!(lf.requests().iter().any(|r| r.status == 413));
    let spans = lf.spans();
    let big = spans
        .iter()
        .find(|s| {
            s.span.name == "llm_call"
                && s.str_attr("langfuse.trace.metadata.token_id") == Some("\"huge\"")
        })
        .unwrap();
    let input = big.str_attr("langfuse.observation.input").unwrap();
    assert!(
        input.len() < huge.len() && input.contains("[truncated 204800 bytes]"),
        "{}",
        input.len()
    );
    let marker: Vec<String> = serde_json::from_str(
        big.str_attr("langfuse.observation.metadata.truncated")
            .unwrap(),
    )
    .unwrap();
    assert!(
        marker.contains(&"langfuse.observation.input".to_string()),
        "{marker:?}"
    );
    // Spans that fit were not touched.
    let normal = spans
        .iter()
        .find(|s| {
            s.span.name == "llm_call"
                && s.str_attr("langfuse.trace.metadata.token_id") == Some("\"413-0\"")
        })
        .unwrap();
    assert_eq!(normal.str_attr("langfuse.observation.input"), Some(PROMPT));
    assert!(
        normal
            .attr("langfuse.observation.metadata.truncated")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appinsights_faults_retry_split_and_disable() {
    let ai = AppInsightsMock::spawn(IKEY).await.unwrap();
    ai.faults()
        .push(Fault::status(503))
        .push(Fault::DropConnection);
    ai.set_max_body(Some(24 * 1024));
    let settings = AppInsightsSettings {
        connection: ConnectionString::parse(&ai.connection_string()).unwrap(),
        live_metrics: false,
    };
    let exporter = appinsights_exporter(settings, fast_config()).unwrap();
    let tracer = tracer(exporter.clone(), TracingProvider::AzureAi, true);
    let (rows, _) = run_rows(&tracer, exporter.clone(), 60, "ai").await;
    assert_eq!(rows.len(), 60);
    let s = close(&exporter, Duration::from_secs(10)).await;
    assert_adds_up(&exporter, &s);
    assert_eq!((s.sent, s.dropped, s.failed), (120, 0, 0), "{s:?}");
    assert_eq!(ai.envelopes().len(), 120);
    let statuses: Vec<u16> = ai.requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&413), "{statuses:?}");

    // A resource refusing the key: disabled after one request.
    let ai = AppInsightsMock::spawn(IKEY).await.unwrap();
    ai.faults().set_default(Some(Fault::status(403)));
    let settings = AppInsightsSettings {
        connection: ConnectionString::parse(&ai.connection_string()).unwrap(),
        live_metrics: false,
    };
    let exporter = appinsights_exporter(settings, fast_config()).unwrap();
    let tracer = common::tracer(exporter.clone(), TracingProvider::AzureAi, true);
    let (rows, _) = run_rows(&tracer, exporter.clone(), 20, "ai403").await;
    assert_eq!(rows.len(), 20);
    let s = close(&exporter, Duration::from_secs(5)).await;
    assert_adds_up(&exporter, &s);
    assert_eq!((s.sent, s.failed), (0, 40));
    assert!(ai.requests().len() <= 2);
}
