//! Spans a backend did not take before the run ended are kept in the run
//! store (bounded, counted) and `traces::replay` delivers each once.

mod common;
mod tracing_common;

use std::sync::Arc;
use std::time::Duration;

use elspeth_mock::appinsights::AppInsightsMock;
use elspeth_mock::langfuse::LangfuseMock;
use elspeth_mock::server::{Fault, MockServer};
use elspeth_runtime::pipeline::{Pipeline, RunOptions, RunSummary, StoreOptions};
use elspeth_runtime::store::RunStore;
use elspeth_runtime::traces::replay;
use elspeth_schema::config::PipelineConfig;
use elspeth_telemetry::ExportSummary;
use elspeth_telemetry::export::RetryPolicy;
use serde_json::json;

use common::{Mocks, tmpdir, traced_classifier};
use tracing_common::logs;

const ROWS: u64 = 30;
const IKEY: &str = "00000000-0000-4000-8000-0000000000ad";

struct Backends {
    langfuse: LangfuseMock,
    appinsights: AppInsightsMock,
    _servers: Vec<MockServer>,
    langfuse_url: String,
    connection_string: String,
}

async fn backends() -> Backends {
    let langfuse = LangfuseMock::new("pk-lf-rp", "sk-lf-rp");
    let appinsights = AppInsightsMock::new(IKEY);
    let l = langfuse.start(0).await.unwrap();
    let a = appinsights.start(0).await.unwrap();
    Backends {
        langfuse_url: l.url(),
        connection_string: appinsights.connection_string_for(&a.url()),
        langfuse,
        appinsights,
        _servers: vec![l, a],
    }
}

impl Backends {
    /// Every request answered with `fault` (`None`: normally).
    fn answer(&self, fault: Option<Fault>) {
        self.langfuse.faults().set_default(fault.clone());
        self.appinsights.faults().set_default(fault);
    }
}

fn config(b: &Backends, max_kept: u64) -> PipelineConfig {
    serde_json::from_value(json!({
        "name": "replay",
        "source": {"plugin": "jsonl", "path": "in.jsonl"},
        "store": {"max_kept_spans": max_kept},
        "transforms": [
            traced_classifier("azure_llm", json!({"provider": "langfuse", "public_key": "pk-lf-rp",
                "secret_key": "sk-lf-rp", "host": b.langfuse_url, "flush_interval_ms": 20})),
            traced_classifier("openrouter_llm", json!({"provider": "azure_ai",
                "connection_string": b.connection_string})),
        ],
        "sink": {"plugin": "jsonl", "path": "out.jsonl"},
    }))
    .unwrap()
}

/// Retries of a replay, short.
fn quick() -> RetryPolicy {
    RetryPolicy::new(2).with_backoff(Duration::from_millis(5), Duration::from_millis(20))
}

async fn run(mocks: &Mocks, dir: &std::path::Path, config: PipelineConfig) -> RunSummary {
    let mut options = RunOptions::default()
        .with_env(Arc::new(mocks.env()))
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .with_store(StoreOptions {
            path: dir.join("replay.elspeth.db"),
            serve: false,
        });
    options.flush_deadline = Duration::from_millis(800);
    let summary = Pipeline::new(config, dir).run(options).await.unwrap();
    assert_eq!(summary.rows_ok, ROWS);
    summary
}

fn exporter<'a>(summary: &'a RunSummary, prefix: &str) -> &'a ExportSummary {
    summary
        .exporters
        .iter()
        .find(|e| e.exporter.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} exporter in {:?}", summary.exporters))
}

fn input(dir: &std::path::Path) {
    let rows: String = (0..ROWS)
        .map(|i| format!("{}\n", json!({"text": format!("ticket {i}")})))
        .collect();
    std::fs::write(dir.join("in.jsonl"), rows).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_spans_are_kept_and_replayed_exactly_once() {
    let logs = logs();
    let mocks = Mocks::start().await;
    let b = backends().await;
    let dir = tmpdir("replay");
    input(&dir);

    // Both backends down for the whole run: every span is kept.
    b.answer(Some(Fault::status(503)));
    let summary = run(&mocks, &dir, config(&b, 100_000)).await;
    for prefix in ["langfuse", "azure_ai"] {
        let e = exporter(&summary, prefix);
        assert!(e.is_exact(), "{e:?}");
        assert_eq!(
            (e.recorded, e.sent, e.kept),
            (2 * ROWS, 0, 2 * ROWS),
            "{e:?}"
        );
    }
    let store = RunStore::open(&dir.join("replay.elspeth.db")).unwrap();
    let waiting = store.kept_span_counts().unwrap();
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert!(waiting.iter().all(|k| k.count == 2 * ROWS), "{waiting:?}");

    // The next run says so.
    let _ = run(&mocks, &dir, config(&b, 100_000)).await;
    assert_eq!(
        logs.lines_with(&[
            "tracing spans from earlier runs are waiting",
            "elspeth traces replay"
        ])
        .len(),
        1
    );
    // (That second run, still down, kept its own spans too.)
    let waiting: u64 = store
        .kept_span_counts()
        .unwrap()
        .iter()
        .map(|k| k.count)
        .sum();
    assert_eq!(waiting, 8 * ROWS);

    // Still down: a replay sends nothing and keeps everything.
    let replayed = replay(&config(&b, 100_000), &mocks.env(), &store, &quick())
        .await
        .unwrap();
    assert!(
        replayed.iter().all(|r| r.sent == 0 && r.left == 4 * ROWS),
        "{replayed:?}"
    );
    assert!(replayed.iter().all(|r| {
        r.problem
            .as_deref()
            .is_some_and(|p| p.contains("still unavailable"))
    }));

    // Back up: every kept span is delivered, once.
    b.answer(None);
    let before = (b.langfuse.span_count(), b.appinsights.envelopes().len());
    let replayed = replay(&config(&b, 100_000), &mocks.env(), &store, &quick())
        .await
        .unwrap();
    assert_eq!(replayed.len(), 2);
    for r in &replayed {
        assert_eq!((r.sent, r.refused, r.left), (4 * ROWS, 0, 0), "{r:?}");
    }
    assert_eq!(b.langfuse.span_count() - before.0, (4 * ROWS) as usize);
    assert_eq!(
        b.appinsights.envelopes().len() - before.1,
        (4 * ROWS) as usize
    );
    // The replayed spans are the run's: trace names and generations intact.
    let names: Vec<String> = b
        .langfuse
        .spans()
        .iter()
        .map(|s| s.span.name.clone())
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "elspeth.azure_llm").count(),
        (2 * ROWS) as usize
    );
    assert_eq!(
        names.iter().filter(|n| *n == "llm_call").count(),
        (2 * ROWS) as usize
    );
    // A second replay sends nothing.
    let again = replay(&config(&b, 100_000), &mocks.env(), &store, &quick())
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(b.langfuse.span_count() - before.0, (4 * ROWS) as usize);
    assert!(store.kept_span_counts().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(dir);

    // (One test: Application Insights is process-wide, so the scenarios
    // share its backend and run one after the other.)
    the_store_keeps_at_most_its_cap_and_counts_the_rest(&mocks, &b).await;
}

async fn the_store_keeps_at_most_its_cap_and_counts_the_rest(mocks: &Mocks, b: &Backends) {
    let dir = tmpdir("replay-cap");
    input(&dir);
    b.answer(Some(Fault::status(503)));
    let summary = run(mocks, &dir, config(b, 25)).await;
    let (l, a) = (
        exporter(&summary, "langfuse"),
        exporter(&summary, "azure_ai"),
    );
    for e in [l, a] {
        assert!(e.is_exact(), "{e:?}");
        assert_eq!(e.sent, 0);
    }
    assert_eq!(l.kept + a.kept, 25, "{l:?} {a:?}");
    assert_eq!(l.failed + a.failed, 4 * ROWS - 25);
    let store = RunStore::open(&dir.join("replay.elspeth.db")).unwrap();
    let waiting: u64 = store
        .kept_span_counts()
        .unwrap()
        .iter()
        .map(|k| k.count)
        .sum();
    assert_eq!(waiting, 25);
    let _ = std::fs::remove_dir_all(dir);
}
