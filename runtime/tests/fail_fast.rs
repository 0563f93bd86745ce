//! Fail fast: a dead key (401 / 403) or a backend failing every row stops
//! the run early, with a bounded number of requests, and says why.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use elspeth_mock::Fault;
use elspeth_mock::chat::TRIGGER_CONTENT_FILTER;
use elspeth_runtime::pipeline::{Pipeline, RunOptions, RunSummary, StopReason};
use elspeth_schema::config::PipelineConfig;
use serde_json::{Value, json};

use common::{Mocks, connection, tmpdir};

const POOL: u64 = 8;

fn write_rows(path: &Path, n: usize, text: impl Fn(usize) -> String) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        writeln!(f, "{}", json!({"id": i, "text": text(i)})).unwrap();
    }
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// One `azure_llm` transform over `in.jsonl`, with `max_retries` and an
/// optional `fail_fast` block.
fn config(max_retries: u32, fail_fast: Option<Value>) -> PipelineConfig {
    let mut options = connection("azure_llm");
    options["prompt_template"] = json!("Classify: {{ text }}");
    options["output_field"] = json!("category");
    options["pool_size"] = json!(POOL);
    options["max_retries"] = json!(max_retries);
    let mut cfg = json!({
        "name": "fail-fast",
        "source": {"plugin": "jsonl", "path": "in.jsonl"},
        "transforms": [{"plugin": "azure_llm", "options": options}],
        "sink": {"plugin": "jsonl", "path": "out.jsonl"},
    });
    if let Some(f) = fail_fast {
        cfg["fail_fast"] = f;
    }
    serde_json::from_value(cfg).unwrap()
}

async fn run(
    dir: &Path,
    cfg: PipelineConfig,
    env: std::collections::HashMap<String, String>,
) -> RunSummary {
    let options = RunOptions::default()
        .with_env(Arc::new(env))
        .with_backoff(Duration::from_millis(2), Duration::from_millis(10))
        .with_tracing(elspeth_test_support::discard_tracing());
    tokio::time::timeout(
        Duration::from_secs(60),
        Pipeline::new(cfg, dir).run(options),
    )
    .await
    .expect("the run ends")
    .unwrap()
}

/// Every row read is written once, in order; the failed ones name the
/// transform.
fn check_output(dir: &Path, summary: &RunSummary) -> Vec<Value> {
    let out = read_jsonl(&dir.join("out.jsonl"));
    assert_eq!(out.len() as u64, summary.rows_read);
    assert_eq!(summary.rows_ok + summary.rows_failed, summary.rows_read);
    for (i, row) in out.iter().enumerate() {
        assert_eq!(row["id"], i, "input order");
    }
    out
}

#[tokio::test]
async fn a_dead_key_stops_the_run_after_its_first_401() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("ff-401");
    write_rows(&dir.join("in.jsonl"), 300, |i| format!("invoice {i}"));
    let mut env = mocks.env();
    env.insert("AZURE_OPENAI_KEY".into(), "wrong-key-0123456789".into());
    let summary = run(&dir, config(3, None), env).await;

    let requests = mocks.azure.chat_requests();
    assert!(
        requests <= POOL + 2,
        "401 is not retried and no row starts after it: {requests} requests"
    );
    let Some(StopReason::AuthFailed { transform, error }) = &summary.stop_reason else {
        panic!("stopped by the auth breaker: {:?}", summary.stop_reason);
    };
    assert_eq!(transform.to_string(), "transforms[0] (azure_llm)");
    assert_eq!(error.http_status, Some(401));
    assert!(error.message.contains("check the API key"), "{error:?}");
    assert!(
        !error.message.contains("wrong-key-0123456789"),
        "no secret in the message"
    );
    assert!(summary.interrupted && !summary.is_success());
    assert_eq!(summary.rows_ok, 0);

    let out = check_output(&dir, &summary);
    let failed_401 = out
        .iter()
        .filter(|r| r["error"]["http_status"] == 401)
        .count() as u64;
    assert_eq!(failed_401, requests, "one request per row that started");
    // Every other row read was not started: written as cancelled, saying
    // why. (How many the source read before the first answer is a race.)
    let cancelled: Vec<&Value> = out
        .iter()
        .filter(|r| r["error"]["kind"] == "cancelled")
        .collect();
    assert_eq!(cancelled.len() as u64, summary.rows_cancelled);
    assert_eq!(summary.rows_read, requests + summary.rows_cancelled);
    for row in cancelled {
        let message = row["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("not processed: the run stopped because transforms[0] (azure_llm) got an authentication error (HTTP 401)"),
            "{message}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_403_stops_too_but_not_a_content_filter_403_or_400() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("ff-403");
    write_rows(&dir.join("in.jsonl"), 200, |i| format!("invoice {i}"));
    mocks
        .azure
        .chat_faults()
        .set_default(Some(Fault::status(403)));
    let summary = run(&dir, config(2, None), mocks.env()).await;
    assert!(mocks.azure.chat_requests() <= POOL + 2);
    assert!(
        matches!(&summary.stop_reason, Some(StopReason::AuthFailed { error, .. }) if error.http_status == Some(403)),
        "{:?}",
        summary.stop_reason
    );

    // Content-filter refusals are answers about their rows: 40 in a row
    // stop nothing, even with a low threshold.
    let mocks = Mocks::start().await;
    write_rows(&dir.join("in.jsonl"), 40, |i| {
        format!("{TRIGGER_CONTENT_FILTER} {i}")
    });
    let cfg = config(0, Some(json!({"consecutive_failures": 3})));
    let summary = run(&dir, cfg, mocks.env()).await;
    assert_eq!(summary.stop_reason, None);
    assert_eq!((summary.rows_read, summary.rows_failed), (40, 40));
    assert_eq!(mocks.azure.chat_requests(), 40);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_backend_failing_every_row_stops_after_n_rows_in_a_row() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("ff-500");
    write_rows(&dir.join("in.jsonl"), 150, |i| format!("invoice {i}"));
    mocks.azure.chat_faults().set_failure_rate(1.0);
    let (n, retries) = (10u64, 2u64);
    let cfg = config(retries as u32, Some(json!({"consecutive_failures": n})));
    let summary = run(&dir, cfg, mocks.env()).await;

    let requests = mocks.azure.chat_requests();
    assert!(
        requests >= n * (retries + 1) && requests <= (n + POOL) * (retries + 1),
        "bounded: {requests} requests"
    );
    let Some(StopReason::ConsecutiveFailures {
        transform,
        count,
        last_error,
    }) = &summary.stop_reason
    else {
        panic!("stopped by the failure breaker: {:?}", summary.stop_reason);
    };
    assert_eq!(transform.index, 0);
    assert_eq!(*count, 10);
    assert_eq!(last_error.http_status, Some(500));
    assert!(
        last_error.message.contains("after 3 attempts"),
        "{last_error:?}"
    );
    let out = check_output(&dir, &summary);
    let ran = out
        .iter()
        .filter(|r| r["error"]["http_status"] == 500)
        .count() as u64;
    assert_eq!(ran, summary.rows_failed - summary.rows_cancelled);
    assert!(
        (n..=n + POOL).contains(&ran),
        "no row started after the stop: {ran} rows ran"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_default_threshold_is_25() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("ff-default");
    write_rows(&dir.join("in.jsonl"), 120, |i| format!("invoice {i}"));
    mocks.azure.chat_faults().set_failure_rate(1.0);
    let summary = run(&dir, config(1, None), mocks.env()).await;
    let requests = mocks.azure.chat_requests();
    assert!(
        (25 * 2..=(25 + POOL) * 2).contains(&requests),
        "{requests} requests"
    );
    assert!(
        matches!(
            summary.stop_reason,
            Some(StopReason::ConsecutiveFailures { count: 25, .. })
        ),
        "{:?}",
        summary.stop_reason
    );
    check_output(&dir, &summary);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn failures_with_successes_between_them_or_a_disabled_breaker_do_not_stop() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("ff-mixed");
    write_rows(&dir.join("in.jsonl"), 60, |i| format!("invoice {i}"));
    // One call at a time, every other one a 500: never two failures in a row.
    for _ in 0..30 {
        mocks.azure.chat_faults().push(Fault::status(500));
        mocks.azure.chat_faults().push(Fault::None);
    }
    let mut cfg = config(0, Some(json!({"consecutive_failures": 2})));
    if let elspeth_schema::config::TransformConfig::AzureLlm(o) = &mut cfg.transforms[0] {
        o.call.pool_size = 1;
    }
    let summary = run(&dir, cfg, mocks.env()).await;
    assert_eq!(summary.stop_reason, None);
    assert_eq!((summary.rows_ok, summary.rows_failed), (30, 30));

    // Both breakers off: a dead key fails every row, one call each.
    let mocks = Mocks::start().await;
    write_rows(&dir.join("in.jsonl"), 30, |i| format!("invoice {i}"));
    let mut env = mocks.env();
    env.insert("AZURE_OPENAI_KEY".into(), "wrong-key-0123456789".into());
    let cfg = config(
        3,
        Some(json!({"consecutive_failures": 0, "on_auth_error": false})),
    );
    let summary = run(&dir, cfg, env).await;
    assert_eq!(summary.stop_reason, None);
    assert_eq!((summary.rows_read, summary.rows_failed), (30, 30));
    assert_eq!(mocks.azure.chat_requests(), 30, "401 is never retried");
    let _ = std::fs::remove_dir_all(dir);
}
