//! The pipeline runner end to end: order under concurrency, streaming,
//! cancellation, sources and sinks, relative paths, failed rows, dry runs.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elspeth_mock::Fault;
use elspeth_mock::chat::{TRIGGER_CONTENT_FILTER, category};
use elspeth_mock::structured::TRIGGER_SCHEMA_MISMATCH;
use elspeth_runtime::pipeline::{
    CancelToken, Pipeline, Progress, RunError, RunObserver, RunOptions, RunStart, RunSummary,
};
use elspeth_runtime::{
    CloseReport, Row, RowContext, RowError, StartContext, StartError, Transform,
};
use elspeth_schema::config::PipelineConfig;
use elspeth_telemetry::Tracer;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use common::{Mocks, connection, langfuse, tmpdir};

fn write_jsonl(path: &Path, rows: impl IntoIterator<Item = Value>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for r in rows {
        writeln!(f, "{r}").unwrap();
    }
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn llm(plugin: &str, options: Value) -> Value {
    let mut o = connection(plugin);
    for (k, v) in options.as_object().cloned().unwrap_or_default() {
        o[k] = v;
    }
    json!({"plugin": plugin, "options": o})
}

fn pipeline_config(source: Value, transforms: Vec<Value>, sink: Value) -> PipelineConfig {
    serde_json::from_value(
        json!({"name": "test", "source": source, "transforms": transforms, "sink": sink}),
    )
    .unwrap()
}

fn options(mocks: &Mocks) -> RunOptions {
    RunOptions::default()
        .with_env(Arc::new(mocks.env()))
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .with_tracing(elspeth_test_support::discard_tracing())
}

/// A test transform: sleeps a random 0–4 ms, tags the row, tracks the most
/// rows in flight at once; optionally waits on a gate before finishing.
struct Jitter {
    concurrency: usize,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    started: Arc<AtomicU64>,
    gate: Option<Arc<Semaphore>>,
    max_sleep_us: u64,
}

impl Jitter {
    fn new(concurrency: usize) -> Self {
        Self {
            concurrency,
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            started: Arc::default(),
            gate: None,
            max_sleep_us: 4000,
        }
    }
}

impl Transform for Jitter {
    fn plugin(&self) -> &str {
        "jitter"
    }
    fn concurrency(&self) -> usize {
        self.concurrency
    }
    async fn on_start(&mut self, _ctx: &StartContext) -> Result<Tracer, StartError> {
        Ok(Tracer::disabled())
    }
    async fn process(&self, mut row: Row, ctx: RowContext<'_>) -> Result<Row, RowError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            let _ = gate.acquire().await.map(|p| p.forget());
        }
        if self.max_sleep_us > 0 {
            tokio::time::sleep(Duration::from_micros(fastrand::u64(0..self.max_sleep_us))).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        row.insert("jitter_token".into(), json!(ctx.token_id));
        if row.get("fail").is_some() {
            return Err(RowError::new("test", "asked to fail"));
        }
        Ok(row)
    }
    async fn close(&mut self, _tracer: Tracer) -> CloseReport {
        CloseReport::default()
    }
}

#[derive(Default)]
struct Recorder {
    start: Mutex<Option<RunStart>>,
    last: Mutex<Option<Progress>>,
    rows: AtomicU64,
    stopping: AtomicU64,
    finished: Mutex<Option<RunSummary>>,
    cancel_after: Option<(u64, CancelToken)>,
}

impl RunObserver for Recorder {
    fn started(&self, start: &RunStart) {
        *self.start.lock().unwrap() = Some(start.clone());
    }
    fn row_written(&self, progress: &Progress) {
        let n = self.rows.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(progress.rows_done, n);
        *self.last.lock().unwrap() = Some(*progress);
        if let Some((after, token)) = &self.cancel_after
            && n == *after
        {
            token.cancel();
        }
    }
    fn stopping(&self) {
        self.stopping.fetch_add(1, Ordering::SeqCst);
    }
    fn finished(&self, summary: &RunSummary) {
        *self.finished.lock().unwrap() = Some(summary.clone());
    }
}

#[tokio::test]
async fn rows_leave_in_input_order_under_concurrency() {
    let dir = tmpdir("order");
    write_jsonl(&dir.join("in.jsonl"), (0..600).map(|i| json!({"n": i})));
    let jitter = Jitter::new(16);
    let max = jitter.max_in_flight.clone();
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![],
        json!({"plugin": "jsonl", "path": "out.jsonl"}),
    );
    let recorder = Arc::new(Recorder::default());
    let summary = Pipeline::new(config, &dir)
        .with_transform(Box::new(jitter))
        .run(RunOptions::default().with_observer(recorder.clone()))
        .await
        .unwrap();
    let out = read_jsonl(&dir.join("out.jsonl"));
    assert_eq!(out.len(), 600);
    for (i, row) in out.iter().enumerate() {
        assert_eq!(row, &json!({"n": i, "jitter_token": format!("row-{i}")}));
    }
    let max = max.load(Ordering::SeqCst);
    assert!(max <= 16, "concurrency bound exceeded: {max}");
    assert!(max > 1, "rows ran concurrently");
    assert_eq!(
        (summary.rows_read, summary.rows_ok, summary.rows_failed),
        (600, 600, 0)
    );
    assert!(summary.is_success());
    let start = recorder.start.lock().unwrap().clone().unwrap();
    assert_eq!(start.total_rows, Some(600));
    assert_eq!(start.transforms, vec!["transforms[0] (jitter)".to_string()]);
    assert_eq!(recorder.rows.load(Ordering::SeqCst), 600);
    assert_eq!(recorder.finished.lock().unwrap().as_ref(), Some(&summary));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn llm_rows_in_order_with_failures_flowing_through() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("llm-order");
    let texts = [
        "refund",
        "crash",
        "password",
        "feature wish",
        "hi",
        "invoice",
        "error",
        "login",
    ];
    let mut rows: Vec<Value> = (0..80)
        .map(|i| json!({"id": i, "text": texts[i % texts.len()]}))
        .collect();
    rows[5] = json!({"id": 5, "body": "no text"});
    rows[11] = json!({"id": 11, "text": format!("{TRIGGER_CONTENT_FILTER} x")});
    write_jsonl(&dir.join("in.jsonl"), rows);
    // Random per-request delays so that answers come back out of order.
    for _ in 0..200 {
        mocks
            .azure
            .chat_faults()
            .push(Fault::Delay(Duration::from_millis(fastrand::u64(0..15))));
    }
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![
            llm(
                "azure_llm",
                json!({"prompt_template": "Classify: {{ text }}", "pool_size": 12, "output_field": "category", "tracing": langfuse()}),
            ),
            llm(
                "openrouter_llm",
                json!({"prompt_template": "Category {{ category }} of: {{ text }}", "pool_size": 5, "output_field": "check"}),
            ),
        ],
        json!({"plugin": "jsonl", "path": "out/result.jsonl"}),
    );
    let (registry, sink) = elspeth_test_support::memory_tracing();
    let summary = Pipeline::new(config, &dir)
        .run(options(&mocks).with_tracing(registry))
        .await
        .unwrap();
    let out = read_jsonl(&dir.join("out/result.jsonl"));
    assert_eq!(out.len(), 80);
    for (i, row) in out.iter().enumerate() {
        assert_eq!(row["id"], i, "input order");
        match i {
            5 => {
                assert_eq!(row["error"]["transform"], "transforms[0] (azure_llm)");
                assert_eq!(row["error"]["kind"], "template");
                assert!(
                    row.get("check").is_none(),
                    "a failed row skips later transforms"
                );
            }
            11 => {
                assert_eq!(
                    row["error"],
                    json!({"transform": "transforms[0] (azure_llm)", "kind": "content_filter",
                    "message": row["error"]["message"], "http_status": 400})
                );
            }
            _ => {
                let text = texts[i % texts.len()];
                assert_eq!(row["category"], category(text), "row {i}");
                assert_eq!(
                    row["check"],
                    category(&format!("Category {} of: {text}", category(text)))
                );
                assert!(row.get("error").is_none());
            }
        }
    }
    assert_eq!(
        (summary.rows_ok, summary.rows_failed, summary.rows_cancelled),
        (78, 2, 0)
    );
    assert_eq!(
        summary.llm_calls,
        78 + 78,
        "successful calls: azure for 78 of the 79 rows with text, openrouter for those 78"
    );
    assert_eq!(summary.llm_calls_failed, 1);
    assert!(summary.tokens_in > 0 && summary.tokens_out > 0);
    assert!(
        summary.cost_usd.is_some_and(|c| c > 0.0),
        "OpenRouter reports cost"
    );
    assert!(!summary.is_success());
    // Only the traced transform recorded: a trace + generation per called row.
    assert_eq!(sink.spans().len(), 2 * 79);
    assert_eq!(summary.exporters.len(), 1);
    assert_eq!(summary.exporters[0].sent, 2 * 79);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[tokio::test]
async fn source_is_streamed_not_loaded() {
    // The source is a FIFO fed by a writer thread: while the transform is
    // blocked, the runner must stop reading (bounded buffers), so the writer
    // blocks far before it has written everything.
    let dir = tmpdir("stream");
    let fifo = dir.join("in.jsonl");
    if std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        eprintln!("mkfifo unavailable; skipping");
        return;
    }
    const ROWS: u64 = 20_000;
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (fifo, written) = (fifo.clone(), written.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let pad = "x".repeat(180);
            for i in 0..ROWS {
                writeln!(f, "{}", json!({"n": i, "pad": pad})).unwrap();
                written.store(i + 1, Ordering::SeqCst);
            }
        })
    };
    let gate = Arc::new(Semaphore::new(0));
    let mut jitter = Jitter::new(4);
    jitter.gate = Some(gate.clone());
    jitter.max_sleep_us = 0;
    let started = jitter.started.clone();
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![],
        json!({"plugin": "jsonl", "path": "out.jsonl"}),
    );
    let opts = RunOptions {
        channel_capacity: 16,
        ..RunOptions::default()
    };
    let run = tokio::spawn(
        Pipeline::new(config, &dir)
            .with_transform(Box::new(jitter))
            .run(opts),
    );
    // Let the reader run ahead as far as it can.
    let mut last = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = written.load(Ordering::SeqCst);
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    let ahead = written.load(Ordering::SeqCst);
    assert!(
        started.load(Ordering::SeqCst) <= 4,
        "only the concurrency's worth of rows started"
    );
    assert!(
        ahead < 3_000,
        "the runner read {ahead} of {ROWS} rows ahead of a blocked transform"
    );
    gate.add_permits(ROWS as usize);
    let summary = run.await.unwrap().unwrap();
    writer.join().unwrap();
    assert_eq!(summary.rows_ok, ROWS);
    let out = std::fs::read_to_string(dir.join("out.jsonl")).unwrap();
    assert_eq!(out.lines().count() as u64, ROWS);
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["n"], ROWS - 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn cancel_stops_taking_rows_and_writes_what_is_done() {
    let mocks = Mocks::start().await;
    mocks
        .azure
        .chat_faults()
        .set_latency(Duration::from_millis(40));
    let dir = tmpdir("cancel");
    write_jsonl(
        &dir.join("in.jsonl"),
        (0..2000).map(|i| json!({"id": i, "text": "refund"})),
    );
    let cancel = CancelToken::new();
    let recorder = Arc::new(Recorder {
        cancel_after: Some((10, cancel.clone())),
        ..Default::default()
    });
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![llm(
            "azure_llm",
            json!({"prompt_template": "Classify: {{ text }}", "pool_size": 4}),
        )],
        json!({"plugin": "jsonl", "path": "out.jsonl"}),
    );
    let summary = Pipeline::new(config, &dir)
        .run(
            options(&mocks)
                .with_cancel(cancel)
                .with_observer(recorder.clone())
                .with_cancel_grace(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert!(summary.interrupted);
    assert!(!summary.is_success());
    assert_eq!(recorder.stopping.load(Ordering::SeqCst), 1);
    assert!(
        summary.rows_read < 2000,
        "stopped taking rows: read {}",
        summary.rows_read
    );
    let out = read_jsonl(&dir.join("out.jsonl"));
    assert_eq!(
        out.len() as u64,
        summary.rows_read,
        "every row read is written exactly once"
    );
    for (i, row) in out.iter().enumerate() {
        assert_eq!(row["id"], i);
    }
    let ok = out.iter().filter(|r| r.get("error").is_none()).count() as u64;
    let cancelled = out
        .iter()
        .filter(|r| r["error"]["kind"] == "cancelled")
        .count() as u64;
    assert_eq!((summary.rows_ok, summary.rows_cancelled), (ok, cancelled));
    assert_eq!(ok + cancelled, summary.rows_read);
    assert!(ok >= 10, "rows in flight at the stop were finished: {ok}");
    assert_eq!(
        mocks.azure.chat_requests(),
        ok,
        "no call started after the stop, none abandoned within the grace"
    );
    // Finished rows are a prefix: the rest were not started.
    assert!(
        out[..ok as usize]
            .iter()
            .all(|r| r["llm_response"] == "billing")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn abort_cancels_calls_in_flight() {
    let mocks = Mocks::start().await;
    mocks
        .azure
        .chat_faults()
        .set_latency(Duration::from_secs(30));
    let dir = tmpdir("abort");
    write_jsonl(
        &dir.join("in.jsonl"),
        (0..50).map(|i| json!({"id": i, "text": "refund"})),
    );
    let cancel = CancelToken::new();
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![llm(
            "azure_llm",
            json!({"prompt_template": "Classify: {{ text }}", "pool_size": 3, "tracing": langfuse()}),
        )],
        json!({"plugin": "jsonl", "path": "out.jsonl", "error_path": "failed.jsonl"}),
    );
    let (registry, sink) = elspeth_test_support::memory_tracing();
    let opts = options(&mocks)
        .with_cancel(cancel.clone())
        .with_tracing(registry)
        .with_cancel_grace(Duration::from_millis(50));
    let run = tokio::spawn(Pipeline::new(config, &dir).run(opts));
    while mocks.azure.chat_requests() < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cancel.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the grace period ends the run")
        .unwrap()
        .unwrap();
    assert!(summary.interrupted);
    assert_eq!(summary.rows_ok, 0);
    assert_eq!(summary.rows_cancelled, summary.rows_read);
    assert_eq!(
        std::fs::read_to_string(dir.join("out.jsonl")).unwrap(),
        "",
        "failed rows go to error_path"
    );
    let failed = read_jsonl(&dir.join("failed.jsonl"));
    assert_eq!(failed.len() as u64, summary.rows_read);
    assert_eq!(failed[0]["error"]["kind"], "cancelled");
    assert_eq!(failed[0]["text"], "refund", "the row is written as it was");
    // The three aborted calls are recorded as cancelled generations.
    let cancelled: Vec<_> = sink
        .spans()
        .into_iter()
        .filter(|s| s.name == "llm_call")
        .map(|s| s.status)
        .collect();
    assert_eq!(cancelled.len(), 3);
    assert!(cancelled.iter().all(|s| *s
        == elspeth_telemetry::record::SpanStatus::Error("cancelled before completion".into())));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn csv_in_csv_out_round_trip() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("csv");
    std::fs::write(
        dir.join("tickets.csv"),
        "id;subject;body\n1;Refund;\"I was charged; twice\"\n2;Bug;\"it says \"\"error\"\"\nthen quits\"\n3;Hi;hello\n",
    )
    .unwrap();
    let config = pipeline_config(
        json!({"plugin": "csv", "path": "tickets.csv", "delimiter": ";"}),
        vec![llm(
            "azure_llm",
            json!({"prompt_template": "Triage as JSON: {{ subject }} / {{ body }}", "response_format": "json",
                                      "output_fields": ["category", "priority"]}),
        )],
        json!({"plugin": "csv", "path": "out/triaged.csv", "columns": ["id", "category", "priority", "body"]}),
    );
    let summary = Pipeline::new(config, &dir)
        .run(options(&mocks))
        .await
        .unwrap();
    assert_eq!(summary.rows_ok, 3);
    let out = std::fs::read_to_string(dir.join("out/triaged.csv")).unwrap();
    assert_eq!(
        out,
        "id,category,priority,body,error\n1,billing,medium,I was charged; twice,\n2,bug,medium,\"it says \"\"error\"\"\nthen quits\",\n3,general,medium,hello,\n"
    );
}

#[tokio::test]
async fn structured_outputs_become_fields_and_mismatches_fail_their_row() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("json-schema");
    write_jsonl(
        &dir.join("in.jsonl"),
        [
            json!({"id": 1, "text": "I was charged twice, refund asap"}),
            json!({"id": 2, "text": format!("{TRIGGER_SCHEMA_MISMATCH} the app crashes")}),
            json!({"id": 3, "text": "cannot log in"}),
        ],
    );
    let schema = json!({
        "type": "object",
        "properties": {
            "category": {"type": "string", "enum": ["billing", "bug", "account", "general"]},
            "priority": {"type": "string", "enum": ["low", "medium", "high"]}
        },
        "required": ["category", "priority"],
        "additionalProperties": false
    });
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![
            llm(
                "azure_llm",
                json!({"prompt_template": "Triage: {{ text }}",
                       "response_format": {"json_schema": {"name": "ticket", "schema": schema}}}),
            ),
            // The schema's properties are row fields for the next template.
            llm(
                "openrouter_llm",
                json!({"prompt_template": "Write a reply to this {{ priority }} {{ category }} ticket: {{ text }}",
                       "output_field": "reply"}),
            ),
        ],
        json!({"plugin": "jsonl", "path": "out.jsonl"}),
    );
    let summary = Pipeline::new(config, &dir)
        .run(options(&mocks))
        .await
        .unwrap();
    assert_eq!((summary.rows_ok, summary.rows_failed), (2, 1));
    let out = read_jsonl(&dir.join("out.jsonl"));
    assert_eq!(
        (&out[0]["category"], &out[0]["priority"]),
        (&json!("billing"), &json!("high"))
    );
    assert!(
        out[0]["reply"].as_str().unwrap().contains("billing"),
        "{}",
        out[0]
    );
    assert_eq!(out[2]["category"], "account");
    let error = &out[1]["error"];
    assert_eq!(error["kind"], "schema", "{}", out[1]);
    assert_eq!(error["transform"], "transforms[0] (azure_llm)");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("the reply does not match the JSON schema `ticket` at /category: "),
        "{error}"
    );
    assert!(out[1].get("category").is_none() && out[1].get("reply").is_none());
    // The request carried the schema.
    let body = mocks.azure.chat_bodies().remove(0);
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["name"], "ticket");
    assert_eq!(body["response_format"]["json_schema"]["schema"], schema);
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn jsonl_values_keep_their_types_and_bad_lines_fail_alone() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("jsonl");
    std::fs::write(
        dir.join("in.jsonl"),
        "{\"text\":\"refund\",\"n\":1.5,\"tags\":[\"a\"],\"nested\":{\"k\":null}}\n\n[1,2]\n{not json\n{\"text\":\"crash\"}\n",
    )
    .unwrap();
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![llm(
            "openrouter_llm",
            json!({"prompt_template": "Classify: {{ text }}"}),
        )],
        json!({"plugin": "jsonl", "path": "out.jsonl"}),
    );
    let summary = Pipeline::new(config, &dir)
        .run(options(&mocks))
        .await
        .unwrap();
    let out = read_jsonl(&dir.join("out.jsonl"));
    assert_eq!(out.len(), 4, "blank lines are skipped");
    assert_eq!(
        out[0],
        json!({"text": "refund", "n": 1.5, "tags": ["a"], "nested": {"k": null}, "llm_response": "billing"})
    );
    assert_eq!(out[1]["error"]["kind"], "source");
    assert!(
        out[1]["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("in.jsonl:3: expected a JSON object per line, got an array")
    );
    assert!(
        out[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in.jsonl:4: not valid JSON")
    );
    assert_eq!(out[3]["llm_response"], "bug");
    assert_eq!(
        (summary.rows_read, summary.rows_ok, summary.rows_failed),
        (4, 2, 2)
    );
}

#[tokio::test]
async fn relative_paths_resolve_against_the_pipeline_folder() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("relative");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    write_jsonl(&dir.join("data/in.jsonl"), [json!({"text": "refund"})]);
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "data/in.jsonl"}),
        vec![llm(
            "azure_llm",
            json!({"prompt_template": "Classify: {{ text }}"}),
        )],
        json!({"plugin": "jsonl", "path": "../relative-out/out.jsonl"}),
    );
    let p = Pipeline::new(config, dir.join("."));
    assert_eq!(p.paths().source, dir.join("./data/in.jsonl"));
    let summary = p.run(options(&mocks)).await.unwrap();
    let out_path = dir.join("../relative-out/out.jsonl");
    assert_eq!(summary.output, dir.join("./../relative-out/out.jsonl"));
    assert_eq!(read_jsonl(&out_path)[0]["llm_response"], "billing");
    let _ = std::fs::remove_dir_all(dir.join("../relative-out"));
    // A missing source names the resolved path and hints at the rule.
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "nope.jsonl"}),
        vec![llm("azure_llm", json!({"prompt_template": "x {{ text }}"}))],
        json!({"plugin": "jsonl", "path": "o.jsonl"}),
    );
    let e = Pipeline::new(config, &dir)
        .run(options(&mocks))
        .await
        .unwrap_err();
    assert!(matches!(e, RunError::Source { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("nope.jsonl")
            && msg.contains("relative paths are resolved against the pipeline file's folder"),
        "{msg}"
    );
}

#[tokio::test]
async fn limit_and_batch_transforms_in_a_pipeline() {
    let mocks = Mocks::start().await;
    mocks
        .azure
        .set_batch_timing(elspeth_mock::azure::BatchTiming {
            validating: Duration::from_millis(5),
            in_progress: Duration::from_millis(10),
            finalizing: Duration::from_millis(5),
        });
    let dir = tmpdir("batch-pipeline");
    let texts = [
        "refund", "crash", "password", "hi", "invoice", "error", "login", "wish", "charge",
    ];
    write_jsonl(
        &dir.join("in.jsonl"),
        texts.iter().map(|t| json!({"text": t})),
    );
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![
            llm(
                "azure_batch_llm",
                json!({"prompt_template": "Classify: {{ text }}", "batch_size": 3, "poll_interval_s": 0.005, "output_field": "a"}),
            ),
            llm(
                "openrouter_batch_llm",
                json!({"prompt_template": "Classify: {{ text }}", "batch_size": 2, "pool_size": 2, "output_field": "b"}),
            ),
        ],
        json!({"plugin": "jsonl", "path": "out/out.jsonl"}),
    );
    let summary = Pipeline::new(config, &dir)
        .run(options(&mocks).with_limit(Some(7)))
        .await
        .unwrap();
    assert_eq!(summary.rows_read, 7);
    let out = read_jsonl(&dir.join("out/out.jsonl"));
    assert_eq!(out.len(), 7);
    for (row, text) in out.iter().zip(texts) {
        assert_eq!(row["a"], category(text));
        assert_eq!(row["b"], category(text));
    }
    assert_eq!(mocks.azure.batches_created(), 3, "jobs of 3, 3 and 1 rows");
    assert_eq!(mocks.openrouter.requests(), 7);
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "checkpoints live next to the sink and are removed: {leftovers:?}"
    );
}

#[tokio::test]
async fn dry_run_makes_no_call() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("dry");
    write_jsonl(
        &dir.join("in.jsonl"),
        (0..5).map(|i| json!({"text": format!("refund {i}")})),
    );
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![
            llm(
                "azure_multi_query_llm",
                json!({"prompt_template": "Rate {{ text }} on {{ c.name }}",
                "queries": {"c": [{"name": "a"}, {"name": "b"}, {"name": "d"}]}, "tracing": langfuse()}),
            ),
            llm(
                "openrouter_llm",
                json!({"prompt_template": "Classify: {{ text }}"}),
            ),
        ],
        json!({"plugin": "jsonl", "path": "out.jsonl"}),
    );
    let p = Pipeline::new(config, &dir);
    let report = p.dry_run(&options(&mocks)).unwrap();
    assert!(report.is_ready(), "{report}");
    assert_eq!(report.rows, Some(5));
    assert_eq!(report.transforms[0].calls_per_row, 3);
    assert_eq!(
        report.transforms[0].sample_prompt.as_deref(),
        Some("Rate refund 0 on a")
    );
    assert_eq!(
        report.transforms[0].target.as_deref(),
        Some(mocks.azure_server.url().as_str())
    );
    assert!(report.transforms[0].tracing.starts_with("langfuse"));
    let text = report.to_string();
    assert!(text.contains("would make up to 20 LLM call(s)"), "{text}");
    assert_eq!(mocks.azure.chat_requests() + mocks.openrouter.requests(), 0);
    assert!(!dir.join("out.jsonl").exists(), "nothing written");

    let mut env = mocks.env();
    env.remove("OPENROUTER_API_KEY");
    let report = p.dry_run(&options(&mocks).with_env(Arc::new(env))).unwrap();
    assert!(!report.is_ready());
    assert_eq!(report.problems.len(), 1);
    assert!(report.problems[0].starts_with("transforms[1] (openrouter_llm): api_key: environment variable `OPENROUTER_API_KEY` is not set"));
}

#[tokio::test]
async fn every_unresolved_reference_is_reported_before_anything_runs() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("plan-fail");
    write_jsonl(&dir.join("in.jsonl"), [json!({"text": "x"})]);
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![
            llm("azure_llm", json!({"prompt_template": "x {{ text }}"})),
            llm("openrouter_llm", json!({"prompt_template": "x {{ text }}"})),
        ],
        json!({"plugin": "jsonl", "path": "out.jsonl"}),
    );
    let mut env = mocks.env();
    env.remove("AZURE_OPENAI_KEY");
    env.remove("OPENROUTER_API_KEY");
    let e = Pipeline::new(config, &dir)
        .run(options(&mocks).with_env(Arc::new(env)))
        .await
        .unwrap_err();
    let RunError::Build(plan) = &e else {
        panic!("{e:?}")
    };
    // Both transforms' problems at once, not the first one only.
    assert_eq!(plan.problems.len(), 2, "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(
            "transforms[0] (azure_llm): api_key: environment variable `AZURE_OPENAI_KEY` is not set"
        ),
        "{text}"
    );
    assert!(
        text.contains("\ntransforms[1] (openrouter_llm): api_key: environment variable `OPENROUTER_API_KEY` is not set"),
        "{text}"
    );
    assert_eq!(mocks.azure.chat_requests() + mocks.openrouter.requests(), 0);
    assert!(!dir.join("out.jsonl").exists(), "nothing written");
}

#[tokio::test]
async fn start_failures_stop_the_run_before_any_row() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("start-fail");
    write_jsonl(&dir.join("in.jsonl"), [json!({"text": "x"})]);
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![
            llm("azure_llm", json!({"prompt_template": "x {{ text }}"})),
            llm(
                "openrouter_llm",
                json!({"prompt_template": "x {{ text }}", "base_url": "not a url"}),
            ),
        ],
        json!({"plugin": "jsonl", "path": "out.jsonl"}),
    );
    let e = Pipeline::new(config, &dir)
        .run(options(&mocks))
        .await
        .unwrap_err();
    assert!(matches!(e, RunError::Start(_)));
    assert!(
        e.to_string()
            .starts_with("transforms[1] (openrouter_llm): endpoint `not a url` is not a valid URL"),
        "{e}"
    );
    assert_eq!(mocks.azure.chat_requests(), 0);
    // A template that does not compile is a build error.
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        vec![llm("azure_llm", json!({"prompt_template": "{{#if text}}"}))],
        json!({"plugin": "jsonl", "path": "out.jsonl"}),
    );
    let e = Pipeline::new(config, &dir)
        .run(options(&mocks))
        .await
        .unwrap_err();
    assert!(matches!(e, RunError::Build(_)));
    assert!(
        e.to_string().starts_with(
            "transforms[0] (azure_llm): prompt_template is not a valid Handlebars template"
        ),
        "{e}"
    );
}

#[tokio::test]
async fn live_exporters_and_tier1_telemetry() {
    use elspeth_mock::appinsights::AppInsightsMock;
    use elspeth_mock::langfuse::LangfuseMock;
    use elspeth_mock::otlp::OtlpCollector;

    let mocks = Mocks::start().await;
    let langfuse = LangfuseMock::new("pk-lf-live", "sk-lf-live");
    let langfuse_server = langfuse.start(0).await.unwrap();
    let appinsights = AppInsightsMock::new("00000000-0000-4000-8000-0000000000aa");
    let appinsights_server = appinsights.start(0).await.unwrap();
    let collector = OtlpCollector::new();
    let collector_server = collector.start(0).await.unwrap();
    let mut env = mocks.env();
    env.insert("LANGFUSE_HOST".into(), langfuse_server.url());
    env.insert("LANGFUSE_SECRET_KEY".into(), "sk-lf-live".into());
    env.insert(
        "APPINSIGHTS".into(),
        appinsights.connection_string_for(&appinsights_server.url()),
    );
    env.insert("OTLP".into(), collector_server.url());

    let dir = tmpdir("live");
    let texts = [
        "refund now",
        "it crashes",
        "reset password",
        "hello",
        "invoice",
    ];
    write_jsonl(
        &dir.join("in.jsonl"),
        texts.iter().map(|t| json!({"text": t})),
    );
    let config: PipelineConfig = serde_json::from_value(json!({
        "name": "live",
        "source": {"plugin": "jsonl", "path": "in.jsonl"},
        "telemetry": {"exporters": [{"name": "otlp", "options": {"endpoint": "${OTLP}"}}]},
        "transforms": [
            llm("azure_llm", json!({"prompt_template": "Classify: {{ text }}", "output_field": "category",
                "tracing": {"provider": "langfuse", "public_key": "pk-lf-live", "secret_key": "${LANGFUSE_SECRET_KEY}", "host": "${LANGFUSE_HOST}"}})),
            llm("openrouter_llm", json!({"prompt_template": "Write a reply to this {{ category }} ticket: {{ text }}", "output_field": "reply",
                "tracing": {"provider": "azure_ai", "connection_string": "${APPINSIGHTS}"}})),
        ],
        "sink": {"plugin": "jsonl", "path": "out.jsonl"},
    }))
    .unwrap();
    let summary = Pipeline::new(config, &dir)
        .run(
            RunOptions::default()
                .with_env(Arc::new(env))
                .with_backoff(Duration::from_millis(5), Duration::from_millis(20)),
        )
        .await
        .unwrap();
    assert_eq!(summary.rows_ok, 5);

    // Tier 2: every span reached its backend, and the summary says so.
    let sent = |prefix: &str| {
        summary
            .exporters
            .iter()
            .filter(|e| e.exporter.starts_with(prefix))
            .map(|e| (e.sent, e.dropped, e.failed, e.pending))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sent("langfuse"),
        vec![(10, 0, 0, 0)],
        "{:?}",
        summary.exporters
    );
    assert_eq!(
        sent("azure_ai"),
        vec![(10, 0, 0, 0)],
        "{:?}",
        summary.exporters
    );
    assert_eq!(langfuse.span_count(), 10);
    let names: Vec<String> = langfuse
        .spans()
        .iter()
        .map(|s| s.span.name.clone())
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "elspeth.azure_llm").count(),
        5,
        "{names:?}"
    );
    assert_eq!(appinsights.envelopes().len(), 10);

    // Cost reaches every backend. Langfuse: each generation's cost_details
    // (so Langfuse shows it instead of inferring one), priced by the table
    // from its usage_details; they add up to the transform's cost in the
    // summary.
    let price = elspeth_core::price::PriceTable::builtin()
        .find(&summary.transforms[0].model)
        .expect("the test deployment is a priced model")
        .1
        .price;
    let mut langfuse_cost = 0.0;
    for s in langfuse
        .spans()
        .iter()
        .filter(|s| s.span.name == "llm_call")
    {
        let details = |key: &str| -> Value {
            serde_json::from_str(s.str_attr(key).unwrap_or_else(|| panic!("{key} on {s:?}")))
                .unwrap()
        };
        let (usage, cost) = (
            details("langfuse.observation.usage_details"),
            details("langfuse.observation.cost_details"),
        );
        let n = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
        let want =
            n(&usage, "input") * price.input / 1e6 + n(&usage, "output") * price.output / 1e6;
        assert!(
            (n(&cost, "total") - want).abs() < 1e-12,
            "{cost} for {usage}"
        );
        assert!(
            (n(&cost, "input") + n(&cost, "output") - n(&cost, "total")).abs() < 1e-12,
            "{cost}"
        );
        langfuse_cost += n(&cost, "total");
    }
    let summed = summary.transforms[0].usage.cost_usd.unwrap();
    assert!(
        (langfuse_cost - summed).abs() < 1e-12,
        "{langfuse_cost} vs {summed}"
    );
    // Application Insights: a property on each dependency, OpenRouter's
    // reported cost, adding up to the second transform's.
    let ai_costs: Vec<f64> = appinsights
        .dependencies()
        .iter()
        .map(|d| &d["data"]["baseData"]["properties"])
        .filter(|p| p.get("gen_ai.request.model").is_some())
        .map(|p| {
            p["elspeth.cost_usd"]
                .as_str()
                .and_then(|c| c.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no elspeth.cost_usd in {p}"))
        })
        .collect();
    assert_eq!(ai_costs.len(), 5, "one generation per row");
    let ai_cost: f64 = ai_costs.iter().sum();
    let summed = summary.transforms[1].usage.cost_usd.unwrap();
    assert!((ai_cost - summed).abs() < 1e-9, "{ai_cost} vs {summed}");

    // Tier 1: a run span, a trace per row, a span per LLM call, with
    // hashes and never content.
    let tier1: Vec<_> = summary
        .exporters
        .iter()
        .filter(|e| e.exporter.starts_with("tier1"))
        .collect();
    assert_eq!(tier1.len(), 1, "{:?}", summary.exporters);
    let spans = collector.spans();
    let count = |name: &str| spans.iter().filter(|s| s.span.name == name).count();
    assert_eq!(count("pipeline.run"), 1);
    assert_eq!(count("pipeline.row"), 5);
    assert_eq!(count("llm.chat"), 10);
    assert_eq!(tier1[0].sent as usize, spans.len());
    let run = spans
        .iter()
        .find(|s| s.span.name == "pipeline.run")
        .unwrap();
    let run_id = run.str_attr("elspeth.run_id").expect("the run has an id");
    let rows: Vec<_> = spans
        .iter()
        .filter(|s| s.span.name == "pipeline.row")
        .collect();
    // One trace per row, each a root linked to the run span.
    let mut row_traces: Vec<Vec<u8>> = rows.iter().map(|r| r.span.trace_id.clone()).collect();
    row_traces.sort();
    row_traces.dedup();
    assert_eq!(row_traces.len(), 5, "one trace per row");
    let mut indexes: Vec<i64> = rows
        .iter()
        .map(|r| r.int_attr("elspeth.row.index").unwrap())
        .collect();
    indexes.sort();
    assert_eq!(indexes, vec![0, 1, 2, 3, 4]);
    for row in &rows {
        assert!(row.span.parent_span_id.is_empty());
        assert_ne!(row.span.trace_id, run.span.trace_id);
        assert_eq!(row.span.links.len(), 1);
        assert_eq!(row.span.links[0].span_id, run.span.span_id);
        assert_eq!(row.span.links[0].trace_id, run.span.trace_id);
        assert_eq!(row.str_attr("elspeth.run_id"), Some(run_id));
        assert_eq!(row.str_attr("elspeth.pipeline"), Some("live"));
        // Each row's two calls (one per transform) are its children.
        let mut transforms: Vec<&str> = spans
            .iter()
            .filter(|s| s.span.name == "llm.chat" && s.span.parent_span_id == row.span.span_id)
            .inspect(|c| assert_eq!(c.span.trace_id, row.span.trace_id))
            .map(|c| c.str_attr("elspeth.transform").unwrap())
            .collect();
        transforms.sort();
        assert_eq!(
            transforms,
            vec![
                "transforms[0] (azure_llm)",
                "transforms[1] (openrouter_llm)"
            ]
        );
    }
    for call in spans.iter().filter(|s| s.span.name == "llm.chat") {
        assert_eq!(call.str_attr("server.address"), Some("127.0.0.1"));
        assert_eq!(call.str_attr("http.request.method"), Some("POST"));
        assert_eq!(call.int_attr("http.response.status_code"), Some(200));
        assert_eq!(call.bool_attr("elspeth.cache_hit"), Some(false));
        assert_eq!(
            call.str_attr("elspeth.request.sha256").map(str::len),
            Some(64)
        );
        let url = reqwest::Url::parse(call.str_attr("url.full").unwrap()).unwrap();
        assert_eq!(
            call.int_attr("server.port"),
            url.port().map(i64::from),
            "{url}"
        );
        assert!(
            url.query_pairs().all(|(_, v)| v == "***"),
            "query values are masked in url.full: {url}"
        );
    }
    // A row's Tier 2 traces carry its Tier 1 trace id: Langfuse's trace id
    // and Application Insights' operation id.
    let mut langfuse_traces: Vec<Vec<u8>> = langfuse
        .spans()
        .iter()
        .filter(|s| s.span.name == "elspeth.azure_llm")
        .map(|s| s.span.trace_id.clone())
        .collect();
    langfuse_traces.sort();
    assert_eq!(langfuse_traces, row_traces);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut operations: Vec<String> = appinsights
        .envelopes()
        .iter()
        .map(|e| e["tags"]["ai.operation.id"].as_str().unwrap().to_string())
        .collect();
    operations.sort();
    operations.dedup();
    let mut row_hex: Vec<String> = row_traces.iter().map(|t| hex(t)).collect();
    row_hex.sort();
    assert_eq!(operations, row_hex);
    for request in collector.requests() {
        let bytes = request.all_bytes();
        let text = String::from_utf8_lossy(&bytes);
        for t in texts {
            assert!(!text.contains(t), "Tier 1 must not carry row content ({t})");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Three transforms tracing to three dead Langfuse hosts: closing waits for
/// their exporters together, within ONE flush deadline (not one per
/// transform, nor one more for the registry and Tier 1), and every unsent
/// span is counted.
#[tokio::test]
async fn closing_with_dead_backends_takes_one_deadline_and_counts_every_span() {
    let mocks = Mocks::start().await;
    let dir = tmpdir("dead-backends");
    write_jsonl(
        &dir.join("in.jsonl"),
        (0..4).map(|i| json!({"text": format!("ticket {i}")})),
    );
    // Ports that refuse connections: bound, then closed.
    let dead = |_: usize| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let transforms = (0..3)
        .map(|i| {
            llm(
                "azure_llm",
                json!({"prompt_template": "Classify: {{ text }}", "output_field": format!("c{i}"),
                    "tracing": {"provider": "langfuse", "public_key": "pk", "secret_key": "sk", "host": dead(i)}}),
            )
        })
        .collect();
    let config = pipeline_config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        transforms,
        json!({"plugin": "jsonl", "path": "out.jsonl"}),
    );
    let mut options = RunOptions::default()
        .with_env(Arc::new(mocks.env()))
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20));
    options.flush_deadline = Duration::from_millis(600);
    let summary = Pipeline::new(config, &dir).run(options).await.unwrap();
    assert_eq!(summary.rows_ok, 4);
    assert_eq!(read_jsonl(&dir.join("out.jsonl")).len(), 4);
    let closing = summary.elapsed - summary.rows_elapsed;
    // Three sequential deadlines plus the registry's would be ≥ 2.4 s.
    assert!(
        closing < Duration::from_millis(1800),
        "closing took {closing:?} for a 600 ms deadline"
    );
    let langfuse: Vec<_> = summary
        .exporters
        .iter()
        .filter(|e| e.exporter.starts_with("langfuse"))
        .collect();
    assert_eq!(langfuse.len(), 3, "{:?}", summary.exporters);
    for e in langfuse {
        // 4 rows × (trace + generation), none sent, all accounted for.
        assert_eq!((e.sent, e.dropped + e.failed + e.pending), (0, 8), "{e:?}");
    }
}

/// `sample_rate` decides per row from the row's identity (the source's
/// `key`), so a second run over the same rows in another order traces the
/// same rows; a row sampled out whose call fails is traced anyway, unless
/// `trace_failures: false`.
#[tokio::test]
async fn sampling_follows_the_row_and_keeps_failures() {
    use elspeth_mock::langfuse::LangfuseMock;
    use elspeth_runtime::RowIdentity;

    let mocks = Mocks::start().await;
    let ids: Vec<u64> = (0..40).collect();
    let row_of = |id: u64| {
        let mut row = elspeth_runtime::Row::new();
        row.insert("id".into(), json!(id));
        row
    };
    let point = |id: u64| RowIdentity::of(&row_of(id), Some("id")).unit();
    let sampled: Vec<u64> = ids.iter().copied().filter(|&id| point(id) < 0.5).collect();
    assert!(
        (8..=32).contains(&sampled.len()),
        "about half sampled: {sampled:?}"
    );
    // Two rows sampled out whose call fails.
    let failing: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|&id| point(id) >= 0.5)
        .take(2)
        .collect();

    // Traced ids of one run over `order`, with `trace_failures`.
    let run = async |order: Vec<u64>, trace_failures: bool| -> Vec<u64> {
        let langfuse = LangfuseMock::new("pk-lf-s", "sk-lf-s");
        let server = langfuse.start(0).await.unwrap();
        let dir = tmpdir("sampling");
        write_jsonl(
            &dir.join("in.jsonl"),
            order.iter().map(|&id| {
                let text = if failing.contains(&id) {
                    "MOCK_CONTENT_FILTER"
                } else {
                    "hello"
                };
                json!({"id": id, "text": text})
            }),
        );
        let config: PipelineConfig = serde_json::from_value(json!({
            "name": "sampling",
            "source": {"plugin": "jsonl", "path": "in.jsonl", "key": "id"},
            "transforms": [llm("azure_llm", json!({
                "prompt_template": "Classify: {{ text }}", "output_field": "category",
                "tracing": {"provider": "langfuse", "public_key": "pk-lf-s", "secret_key": "sk-lf-s",
                    "host": server.url(), "sample_rate": 0.5, "trace_failures": trace_failures}}))],
            "sink": {"plugin": "jsonl", "path": "out.jsonl"},
        }))
        .unwrap();
        let summary = Pipeline::new(config, &dir)
            .run(
                RunOptions::default()
                    .with_env(Arc::new(mocks.env()))
                    .with_backoff(Duration::from_millis(5), Duration::from_millis(20)),
            )
            .await
            .unwrap();
        assert_eq!(summary.rows_failed, 2);
        let mut traced: Vec<u64> = langfuse
            .spans()
            .iter()
            .filter(|s| s.span.name == "elspeth.azure_llm")
            .map(|s| {
                let token = s.str_attr("langfuse.trace.metadata.token_id").unwrap();
                let index: usize = token
                    .trim_matches('"')
                    .trim_start_matches("row-")
                    .parse()
                    .unwrap();
                order[index]
            })
            .collect();
        traced.sort();
        let _ = std::fs::remove_dir_all(dir);
        traced
    };

    let mut expected: Vec<u64> = sampled.iter().chain(&failing).copied().collect();
    expected.sort();
    let forward = run(ids.clone(), true).await;
    assert_eq!(forward, expected, "sampled rows plus the failures");
    let backward = run(ids.iter().rev().copied().collect(), true).await;
    assert_eq!(backward, forward, "the same rows, whatever their order");
    let without_failures = run(ids.clone(), false).await;
    assert_eq!(without_failures, sampled);
}
