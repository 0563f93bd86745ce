//! `azure_batch_llm` against the mock Batch API: the job lifecycle,
//! out-of-order output, failed lines, expired and failed jobs, transient
//! errors, resuming from a checkpoint, and the job's trace.

use std::path::Path;
use std::time::Duration;

use elspeth_mock::Fault;
use elspeth_mock::azure::{BatchOutcome, BatchTiming};
use elspeth_mock::chat::{TRIGGER_CONTENT_FILTER, TRIGGER_LINE_FAIL, TRIGGER_MALFORMED, category};
use elspeth_runtime::llm::{ChatMessage, GenAiSystem};
use elspeth_telemetry::record::{ObservationKind, SpanKind, SpanStatus};
use serde_json::{Value, json};

use crate::common::{Harness, Mocks, config, langfuse, meta, tmpdir};

const TEXTS: [&str; 12] = [
    "I want a refund",
    "the app crashes",
    "reset my password",
    "add dark mode feature",
    "hello there",
    "invoice is wrong",
    "error on save",
    "cannot log in",
    "would be nice to export",
    "what time is it",
    "charge appeared twice",
    "exception in the logs",
];

fn fast(mocks: &Mocks) {
    mocks.azure.set_batch_timing(BatchTiming {
        validating: Duration::from_millis(20),
        in_progress: Duration::from_millis(40),
        finalizing: Duration::from_millis(10),
    });
}

fn batch_config(extra: Value) -> elspeth_schema::config::TransformConfig {
    let mut o = json!({"prompt_template": "Classify: {{ text }}", "batch_size": 100, "poll_interval_s": 0.01,
                       "max_retries": 3, "tracing": langfuse()});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        o[k] = v;
    }
    config("azure_batch_llm", o)
}

fn rows(texts: &[&str]) -> Vec<Value> {
    texts.iter().map(|t| json!({"text": t})).collect()
}

fn checkpoints(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".checkpoint.json"))
        .collect()
}

#[tokio::test]
async fn completes_and_matches_out_of_order_output() {
    let mocks = Mocks::start().await;
    fast(&mocks);
    let dir = tmpdir("batch-ok");
    let h = Harness::start(&batch_config(json!({})), mocks.env(), Some(dir.clone())).await;
    assert_eq!(h.transform.batch_size(), Some(100));
    let results = h.process_batch(rows(&TEXTS)).await;
    for (text, result) in TEXTS.iter().zip(&results) {
        let row = result.as_ref().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(row["llm_response"], category(text), "{text}");
        assert_eq!(row["text"], *text);
    }
    assert_eq!(
        (mocks.azure.uploads(), mocks.azure.batches_created()),
        (1, 1)
    );
    assert!(
        checkpoints(&dir).is_empty(),
        "the checkpoint is removed once the job is collected"
    );

    // The input file as uploaded, and the output really out of order.
    let batch = mocks.azure.batches().pop().unwrap();
    let input = String::from_utf8(mocks.azure.file(&batch.input_file_id).unwrap()).unwrap();
    let first: Value = serde_json::from_str(input.lines().next().unwrap()).unwrap();
    assert_eq!(
        first,
        json!({"custom_id": "row-0", "method": "POST", "url": "/chat/completions",
               "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "Classify: I want a refund"}]}})
    );
    let output = String::from_utf8(
        mocks
            .azure
            .file(batch.output_file_id.as_deref().unwrap())
            .unwrap(),
    )
    .unwrap();
    let order: Vec<String> = output
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["custom_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let sorted: Vec<String> = (0..TEXTS.len()).map(|i| format!("row-{i}")).collect();
    assert_eq!(order.len(), TEXTS.len());
    assert_ne!(order, sorted, "the mock returns lines out of order");

    // Usage of every line was counted.
    assert_eq!(h.meter.snapshot().calls, TEXTS.len() as u64);

    // The trace: one job span holding one generation per row.
    let spans = h.spans();
    assert_eq!(spans.len(), TEXTS.len() + 1);
    let job = spans.last().unwrap();
    assert_eq!(job.name, "elspeth.azure_batch_llm");
    assert_eq!(job.parent_span_id, None);
    assert_eq!(job.kind, SpanKind::Internal);
    assert_eq!(job.observation, ObservationKind::Span);
    assert_eq!(job.status, SpanStatus::Unset);
    assert_eq!(
        meta(&job.trace.metadata),
        json!({"plugin": "azure_batch_llm", "deployment": "gpt-4o", "rows": 12})
    );
    assert_eq!(
        meta(&job.metadata),
        json!({"rows": 12, "batch_id": batch.id, "status": "completed"})
    );
    for (i, g) in spans[..TEXTS.len()].iter().enumerate() {
        assert_eq!(g.name, "llm_call");
        assert_eq!(g.trace_id, job.trace_id);
        assert_eq!(g.parent_span_id, Some(job.span_id));
        assert_eq!(g.kind, SpanKind::Client);
        assert_eq!(g.observation, ObservationKind::Generation);
        assert_eq!(g.status, SpanStatus::Unset);
        let token = format!("row-{i}");
        assert_eq!(
            g.metadata[0],
            ("token_id".into(), Value::from(token.as_str()).into())
        );
        assert_eq!(
            g.metadata[1],
            ("custom_id".into(), Value::from(token.as_str()).into())
        );
        assert_eq!(g.metadata[2].0, "latency_ms");
        assert!(
            g.start >= job.start && g.end <= job.end,
            "rows are timed by the job"
        );
        let d = g.generation.as_deref().unwrap();
        assert_eq!(d.system, Some(GenAiSystem::AzureOpenAi));
        assert_eq!(d.request_model, "gpt-4o");
        assert_eq!(d.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(
            d.input,
            Some(vec![ChatMessage::user(format!("Classify: {}", TEXTS[i]))])
        );
        assert_eq!(d.output.as_deref(), Some(category(TEXTS[i])));
        assert!(
            d.usage
                .is_some_and(|u| u.input > 0 && u.total == u.input + u.output)
        );
        // Batch API lines are billed at half the gpt-4o price.
        let u = d.usage.unwrap();
        let full = u.input as f64 * 2.50 / 1e6 + u.output as f64 * 10.00 / 1e6;
        let cost = d.cost.expect("a batch line is priced");
        assert!(
            (cost.total - full * 0.5).abs() < 1e-12,
            "{cost:?} for {u:?}"
        );
        assert_eq!(d.finish_reasons, vec!["stop".to_string()]);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn failed_lines_fail_only_their_rows() {
    let mocks = Mocks::start().await;
    fast(&mocks);
    let h = Harness::start(&batch_config(json!({})), mocks.env(), None).await;
    let texts = [
        "refund please".to_string(),
        format!("{TRIGGER_LINE_FAIL} crash"),
        format!("{TRIGGER_CONTENT_FILTER} text"),
        format!("{TRIGGER_MALFORMED} text"),
        "password reset".to_string(),
    ];
    let results = h
        .process_batch(texts.iter().map(|t| json!({"text": t})).collect())
        .await;
    assert_eq!(results[0].as_ref().unwrap()["llm_response"], "billing");
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(
        (e.kind.as_str(), e.message.as_str()),
        (
            "llm",
            "batch line failed (server_error): The server had an error processing this line."
        )
    );
    let e = results[2].as_ref().unwrap_err();
    assert_eq!(e.kind, "content_filter");
    assert_eq!(e.http_status, Some(400));
    let e = results[3].as_ref().unwrap_err();
    assert_eq!(e.kind, "parse", "{}", e.message);
    assert_eq!(results[4].as_ref().unwrap()["llm_response"], "account");
    let spans = h.spans();
    let failed: Vec<_> = spans
        .iter()
        .filter(|s| matches!(s.status, SpanStatus::Error(_)))
        .collect();
    assert_eq!(
        failed.len(),
        3,
        "one error observation per failed line; the job itself completed"
    );
    assert_eq!(spans.last().unwrap().status, SpanStatus::Unset);
}

#[tokio::test]
async fn expired_batch_keeps_partial_results() {
    let mocks = Mocks::start().await;
    fast(&mocks);
    mocks.azure.set_batch_outcome(BatchOutcome::Expire);
    let dir = tmpdir("batch-expired");
    let h = Harness::start(&batch_config(json!({})), mocks.env(), Some(dir.clone())).await;
    let texts = &TEXTS[..6];
    let results = h.process_batch(rows(texts)).await;
    for (i, r) in results.iter().enumerate() {
        if i < 3 {
            assert_eq!(r.as_ref().unwrap()["llm_response"], category(texts[i]));
        } else {
            let e = r.as_ref().unwrap_err();
            assert_eq!(e.kind, "batch");
            assert!(
                e.message
                    .ends_with("expired (completion window 24h) before this row was processed"),
                "{}",
                e.message
            );
        }
    }
    let job = h.spans().pop().unwrap();
    assert_eq!(
        job.status,
        SpanStatus::Error("batch job ended with status `expired`".into())
    );
    assert_eq!(
        job.metadata.last().unwrap(),
        &("status".into(), Value::from("expired").into())
    );
    assert!(checkpoints(&dir).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn failed_batch_fails_every_row() {
    let mocks = Mocks::start().await;
    fast(&mocks);
    mocks.azure.set_batch_outcome(BatchOutcome::Fail);
    let h = Harness::start(&batch_config(json!({})), mocks.env(), None).await;
    let results = h.process_batch(rows(&TEXTS[..3])).await;
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.kind, "batch");
        assert!(
            e.message
                .contains("failed: validation_failed: the input file failed validation"),
            "{}",
            e.message
        );
    }
}

#[tokio::test]
async fn transient_api_errors_are_retried() {
    let mocks = Mocks::start().await;
    fast(&mocks);
    let h = Harness::start(&batch_config(json!({"timeout_s": 0.2})), mocks.env(), None).await;
    // upload: 429 then ok; create: ok; first poll: 500; second poll: too slow (timeout); then ok.
    let plan = mocks.azure.batch_faults();
    plan.push(Fault::Status {
        code: 429,
        retry_after: Some(0.01),
    });
    plan.push(Fault::None);
    plan.push(Fault::None);
    plan.push(Fault::status(503));
    plan.push(Fault::Delay(Duration::from_millis(600)));
    let results = h.process_batch(rows(&TEXTS[..2])).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        (mocks.azure.uploads(), mocks.azure.batches_created()),
        (1, 1)
    );
}

#[tokio::test]
async fn batch_creation_is_not_retried_after_a_server_error() {
    let mocks = Mocks::start().await;
    fast(&mocks);
    let dir = tmpdir("batch-create-500");
    let h = Harness::start(&batch_config(json!({})), mocks.env(), Some(dir.clone())).await;
    mocks
        .azure
        .batch_faults()
        .push(Fault::None)
        .push(Fault::status(500));
    let results = h.process_batch(rows(&TEXTS[..2])).await;
    for r in &results {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.http_status, Some(500));
        assert!(
            !e.message.contains("attempts"),
            "not retried: {}",
            e.message
        );
    }
    assert_eq!(mocks.azure.batches_created(), 0);
    assert!(checkpoints(&dir).is_empty(), "no job, no checkpoint");
    let job = h.spans().pop().unwrap();
    assert!(matches!(job.status, SpanStatus::Error(_)));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn resumes_from_checkpoint_without_a_second_submission() {
    let mocks = Mocks::start().await;
    mocks.azure.set_batch_timing(BatchTiming {
        validating: Duration::from_millis(20),
        in_progress: Duration::from_millis(600),
        finalizing: Duration::from_millis(10),
    });
    let dir = tmpdir("batch-resume");
    let texts = &TEXTS[..4];

    // First run: crashes (is dropped) while the job runs.
    let first = Harness::start(&batch_config(json!({})), mocks.env(), Some(dir.clone())).await;
    let run = tokio::spawn(async move { first.process_batch(rows(texts)).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while checkpoints(&dir).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint written"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    assert_eq!(mocks.azure.batches_created(), 1);
    let files = checkpoints(&dir);
    assert_eq!(files.len(), 1);
    assert!(
        files[0].starts_with(".elspeth-azure_batch_llm-t0-"),
        "{files:?}"
    );
    let cp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(&files[0])).unwrap()).unwrap();
    let batch = mocks.azure.batches().pop().unwrap();
    assert_eq!(cp["batch_id"], batch.id);
    assert_eq!(cp["rows"], 4);

    // Second run: same rows, same config: polls the same job.
    let second = Harness::start(&batch_config(json!({})), mocks.env(), Some(dir.clone())).await;
    let results = second.process_batch(rows(texts)).await;
    for (t, r) in texts.iter().zip(&results) {
        assert_eq!(r.as_ref().unwrap()["llm_response"], category(t));
    }
    assert_eq!(mocks.azure.batches_created(), 1, "no second submission");
    assert_eq!(mocks.azure.uploads(), 1);
    assert!(checkpoints(&dir).is_empty(), "removed once done");
    let job = second.spans().pop().unwrap();
    assert_eq!(
        job.metadata
            .iter()
            .find(|(k, _)| k == "batch_id")
            .unwrap()
            .1,
        Value::from(batch.id.as_str())
    );

    // Different rows make a different job.
    let third = Harness::start(&batch_config(json!({})), mocks.env(), Some(dir.clone())).await;
    mocks.azure.set_batch_timing(BatchTiming {
        validating: Duration::ZERO,
        in_progress: Duration::ZERO,
        finalizing: Duration::ZERO,
    });
    third.process_batch(rows(&TEXTS[4..6])).await;
    assert_eq!(mocks.azure.batches_created(), 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn stale_checkpoint_of_a_vanished_batch_submits_anew() {
    let mocks = Mocks::start().await;
    fast(&mocks);
    let dir = tmpdir("batch-stale");
    // Learn the checkpoint file name by crashing a first run, then point it at a batch that does not exist.
    mocks.azure.set_batch_timing(BatchTiming {
        validating: Duration::from_secs(30),
        in_progress: Duration::ZERO,
        finalizing: Duration::ZERO,
    });
    let first = Harness::start(&batch_config(json!({})), mocks.env(), Some(dir.clone())).await;
    let run = tokio::spawn(async move { first.process_batch(rows(&TEXTS[..2])).await });
    while checkpoints(&dir).is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    run.abort();
    let _ = run.await;
    let path = dir.join(&checkpoints(&dir)[0]);
    let mut cp: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cp["batch_id"] = json!("batch_gone");
    std::fs::write(&path, cp.to_string()).unwrap();
    fast(&mocks);
    let second = Harness::start(&batch_config(json!({})), mocks.env(), Some(dir.clone())).await;
    let results = second.process_batch(rows(&TEXTS[..2])).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(mocks.azure.batches_created(), 2);
    assert!(checkpoints(&dir).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}
