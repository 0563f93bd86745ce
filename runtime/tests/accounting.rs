//! Exact span accounting for every exporter (Langfuse, Application Insights,
//! Tier 1 OTLP) whatever the backend does: for each,
//! `sent + dropped + failed + pending + kept == recorded`, `recorded` is
//! every span the run made, and one summary line is logged per exporter.

mod common;
mod tracing_common;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use elspeth_mock::appinsights::AppInsightsMock;
use elspeth_mock::langfuse::LangfuseMock;
use elspeth_mock::otlp::OtlpCollector;
use elspeth_mock::server::{Fault, MockServer};
use elspeth_runtime::pipeline::{Pipeline, RunOptions, RunSummary};
use elspeth_schema::config::PipelineConfig;
use elspeth_telemetry::ExportSummary;
use serde_json::json;

use common::{Mocks, tmpdir, traced_classifier};
use tracing_common::{dead_port, logs};

const ROWS: u64 = 120;
const IKEY: &str = "00000000-0000-4000-8000-0000000000ac";

/// Where the three tracing backends are, for one scenario.
struct Backends {
    langfuse: String,
    appinsights: String,
    otlp: String,
    /// Kept alive for the run.
    _servers: Vec<MockServer>,
    _hung: Option<TcpListener>,
}

/// The three mocks, each answering every request with `fault`.
async fn faulty(fault: Fault) -> Backends {
    let langfuse = LangfuseMock::new("pk-lf-acc", "sk-lf-acc");
    langfuse.faults().set_default(Some(fault.clone()));
    let appinsights = AppInsightsMock::new(IKEY);
    appinsights.faults().set_default(Some(fault.clone()));
    let collector = OtlpCollector::new();
    collector.faults().set_default(Some(fault));
    let (l, a, o) = (
        langfuse.start(0).await.unwrap(),
        appinsights.start(0).await.unwrap(),
        collector.start(0).await.unwrap(),
    );
    Backends {
        langfuse: l.url(),
        appinsights: appinsights.connection_string_for(&a.url()),
        otlp: o.url(),
        _servers: vec![l, a, o],
        _hung: None,
    }
}

/// Nothing listens.
fn refused() -> Backends {
    let url = format!("http://127.0.0.1:{}", dead_port());
    Backends {
        langfuse: url.clone(),
        appinsights: AppInsightsMock::new(IKEY).connection_string_for(&url),
        otlp: url,
        _servers: Vec::new(),
        _hung: None,
    }
}

/// A listener that accepts connections and never answers (the kernel
/// completes the handshake; nobody reads).
fn hung() -> Backends {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    Backends {
        langfuse: url.clone(),
        appinsights: AppInsightsMock::new(IKEY).connection_string_for(&url),
        otlp: url,
        _servers: Vec::new(),
        _hung: Some(listener),
    }
}

async fn run(mocks: &Mocks, backends: &Backends, name: &str) -> RunSummary {
    let dir = tmpdir(name);
    let input: String = (0..ROWS)
        .map(|i| format!("{}\n", json!({"text": format!("ticket {i}")})))
        .collect();
    std::fs::write(dir.join("in.jsonl"), input).unwrap();
    let config: PipelineConfig = serde_json::from_value(json!({
        "name": name,
        "source": {"plugin": "jsonl", "path": "in.jsonl"},
        "telemetry": {"exporters": [{"name": "otlp", "options": {"endpoint": backends.otlp}}]},
        "transforms": [
            // A small queue: a dead backend overflows it, so drops happen too.
            traced_classifier("azure_llm", json!({"provider": "langfuse", "public_key": "pk-lf-acc",
                "secret_key": "sk-lf-acc", "host": backends.langfuse, "max_queue": 64,
                "flush_interval_ms": 20})),
            traced_classifier("openrouter_llm", json!({"provider": "azure_ai",
                "connection_string": backends.appinsights})),
        ],
        "sink": {"plugin": "jsonl", "path": "out.jsonl"},
    }))
    .unwrap();
    let mut options = RunOptions::default()
        .with_env(Arc::new(mocks.env()))
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20));
    options.flush_deadline = Duration::from_millis(1500);
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        Pipeline::new(config, &dir).run(options),
    )
    .await
    .expect("the run ends whatever the backends do")
    .unwrap();
    assert_eq!(summary.rows_ok, ROWS, "tracing never fails a row");
    let _ = std::fs::remove_dir_all(dir);
    summary
}

fn exporter<'a>(summary: &'a RunSummary, prefix: &str) -> &'a ExportSummary {
    let found: Vec<_> = summary
        .exporters
        .iter()
        .filter(|e| e.exporter.starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "{:?}", summary.exporters);
    found[0]
}

/// Every exporter's counters add up to what the run recorded, and each
/// logged exactly one summary line.
fn assert_exact(summary: &RunSummary, scenario: &str, expect_sent: bool) {
    let logs = logs();
    for (prefix, recorded, line) in [
        ("langfuse", 2 * ROWS, "tracing export summary for "),
        ("azure_ai", 2 * ROWS, "tracing export summary for "),
        // The run span, a span per row, a call span per row per transform.
        ("tier1", 1 + 3 * ROWS, "Tier 1 telemetry summary for "),
    ] {
        let e = exporter(summary, prefix);
        assert_eq!(e.recorded, recorded, "{scenario}: {e:?}");
        assert!(e.is_exact(), "{scenario}: counters do not add up: {e:?}");
        if expect_sent {
            assert!(e.sent > 0, "{scenario}: {e:?}");
        } else {
            assert_eq!(e.sent, 0, "{scenario}: {e:?}");
        }
        let label = format!("{line}{}:", e.exporter);
        let lines = logs.lines_with(&[&label]);
        assert_eq!(
            lines.len(),
            1,
            "{scenario}: one summary line for {}: {lines:#?}",
            e.exporter
        );
        assert!(
            lines[0].contains(&format!("{} spans sent", e.sent))
                && lines[0].contains(&format!("({recorded} recorded)")),
            "{scenario}: the line agrees with the summary: {} vs {e:?}",
            lines[0]
        );
    }
    assert!(
        logs.lines_with(&["not sent at close"]).is_empty(),
        "no second, disagreeing line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_span_is_accounted_for_whatever_the_backend_does() {
    let _ = logs();
    let mocks = Mocks::start().await;

    let b = refused();
    assert_exact(&run(&mocks, &b, "acc-refused").await, "refused port", false);

    let b = hung();
    assert_exact(&run(&mocks, &b, "acc-hung").await, "hung listener", false);

    let b = faulty(Fault::status(500)).await;
    assert_exact(&run(&mocks, &b, "acc-500").await, "HTTP 500", false);

    let b = faulty(Fault::Status {
        code: 429,
        retry_after: Some(0.05),
    })
    .await;
    assert_exact(&run(&mocks, &b, "acc-429").await, "HTTP 429", false);

    // Slower than the flush deadline allows for everything: some is sent,
    // the rest is counted.
    let b = faulty(Fault::Delay(Duration::from_millis(400))).await;
    assert_exact(&run(&mocks, &b, "acc-slow").await, "slow backend", true);
}
