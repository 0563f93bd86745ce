//! Behaviour of `#[llm_transform(...)]`: the generated lifecycle records
//! exactly the traces and generations `docs/guides/tier2-tracing.md`
//! describes (one trace per row, one generation per LLM call, their names,
//! usage and error status), into an in-memory sink through
//! `TracingRegistry::fixed`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use elspeth::config::{
    AzureAiTracingConfig, EnvString, LangfuseTracingConfig, SecretRef, TracingConfig,
};
use elspeth::llm::{
    ChatMessage, GenAiSystem, LlmError, LlmErrorKind, LlmRequest, LlmResponse, Usage,
};
use elspeth::telemetry::InMemorySink;
use elspeth::telemetry::record::{
    GenerationData, ObservationKind, SpanKind, SpanRecord, SpanStatus,
};
use elspeth::telemetry::{ExportSummary, TracingProvider, TracingRegistry, TransformLabel};
use elspeth::{
    BatchContext, BatchRow, CloseReport, DynTransform, HasTracing, JobLine, JobOutcome, LlmCall,
    LlmJob, PlannedCall, Row, RowContext, RowError, StartContext, StartError, Transform,
    llm_transform,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------- fixtures

/// A plugin's options: the tracing block plus its own settings.
#[derive(Debug, Clone)]
struct SentimentOptions {
    deployment: String,
    tracing: Option<TracingConfig>,
}

impl HasTracing for SentimentOptions {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        self.tracing.as_ref()
    }
}

/// One call per row; a prompt containing `boom` fails with HTTP 500.
#[llm_transform(tracing, name = "sentiment")]
struct Sentiment {
    config: SentimentOptions,
    set_up: bool,
}

impl Sentiment {
    fn new(tracing: Option<TracingConfig>) -> Self {
        Self {
            config: SentimentOptions {
                deployment: "gpt-4o".into(),
                tracing,
            },
            set_up: false,
        }
    }
}

fn request(prompt: &str) -> LlmRequest {
    LlmRequest {
        messages: vec![
            ChatMessage::system("You classify sentiment."),
            ChatMessage::user(prompt),
        ],
        model: "gpt-4o".into(),
        temperature: Some(0.2),
        max_tokens: Some(64),
        response_format: None,
    }
}

fn reply(content: &str) -> LlmResponse {
    LlmResponse {
        content: content.into(),
        model: Some("gpt-4o-2024-08-06".into()),
        usage: Some(Usage {
            input: 12,
            output: 3,
            total: 15,
            ..Default::default()
        }),
        finish_reason: Some("stop".into()),
        id: Some("chatcmpl-42".into()),
        cost: None,
    }
}

fn server_error() -> LlmError {
    LlmError::new(LlmErrorKind::Server, "HTTP 500: upstream overloaded").with_status(500)
}

impl LlmCall for Sentiment {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::AzureOpenAi
    }
    fn model_label(&self) -> (&'static str, &str) {
        ("deployment", &self.config.deployment)
    }
    fn server_address(&self) -> Option<&str> {
        Some("example.openai.azure.com")
    }
    async fn setup(&mut self, _ctx: &StartContext) -> Result<(), StartError> {
        self.set_up = true;
        Ok(())
    }
    fn plan(&self, row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        let text = row
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| RowError::new("template", "row has no `text`"))?;
        Ok(vec![PlannedCall::single(request(&format!(
            "Classify: {text}"
        )))])
    }
    async fn call(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if request.prompt().unwrap_or_default().contains("boom") {
            Err(server_error())
        } else {
            Ok(reply("positive"))
        }
    }
}

fn label(plugin: &str) -> TransformLabel {
    TransformLabel {
        index: 0,
        plugin: plugin.into(),
    }
}

fn registry() -> (Arc<TracingRegistry>, InMemorySink) {
    elspeth_test_support::memory_tracing()
}

fn langfuse() -> TracingConfig {
    TracingConfig::Langfuse(LangfuseTracingConfig {
        public_key: Some(EnvString::new("${LANGFUSE_PUBLIC_KEY}")),
        secret_key: Some(SecretRef::new("${LANGFUSE_SECRET_KEY}")),
        ..LangfuseTracingConfig::default()
    })
}

fn azure_ai() -> TracingConfig {
    TracingConfig::AzureAi(AzureAiTracingConfig {
        connection_string: Some(SecretRef::new("${APPLICATIONINSIGHTS_CONNECTION_STRING}")),
        ..AzureAiTracingConfig::default()
    })
}

fn row(v: Value) -> Row {
    v.as_object().cloned().expect("object")
}

/// Metadata entries as `(String, Value)` pairs, to compare with literals.
fn pairs(entries: &[elspeth::telemetry::record::MetaEntry]) -> Vec<(String, Value)> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_json()))
        .collect()
}

fn latency(span: &SpanRecord) -> f64 {
    assert_eq!(
        span.metadata.last().map(|(k, _)| k.as_str()),
        Some("latency_ms")
    );
    span.metadata
        .last()
        .unwrap()
        .1
        .as_f64()
        .expect("latency_ms is a number")
}

fn expected_generation(prompt: &str) -> GenerationData {
    GenerationData {
        system: Some(GenAiSystem::AzureOpenAi),
        request_model: "gpt-4o".into(),
        response_model: None,
        response_id: None,
        finish_reasons: vec![],
        input: Some(request(prompt).messages),
        output: None,
        usage: None,
        cost: None,
        temperature: Some(0.2),
        max_tokens: Some(64),
        error_type: None,
        http_status: None,
        server_address: Some("example.openai.azure.com".into()),
    }
}

fn assert_root(root: &SpanRecord, plugin: &str, token: &str) {
    assert_eq!(root.name, format!("elspeth.{plugin}"));
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.kind, SpanKind::Internal);
    assert_eq!(root.observation, ObservationKind::Span);
    assert_eq!(
        root.status,
        SpanStatus::Unset,
        "a failed call does not fail the row's trace"
    );
    assert_eq!(root.trace.name, format!("elspeth.{plugin}"));
    assert_eq!(
        pairs(&root.trace.metadata),
        vec![
            ("token_id".to_string(), json!(token)),
            ("plugin".to_string(), json!(plugin)),
            ("deployment".to_string(), json!("gpt-4o")),
        ]
    );
    assert!(root.metadata.is_empty());
    assert!(root.generation.is_none());
    assert!(root.start <= root.end);
}

fn assert_child(child: &SpanRecord, root: &SpanRecord) {
    assert_eq!(child.name, "llm_call");
    assert_eq!(child.trace_id, root.trace_id);
    assert_eq!(child.parent_span_id, Some(root.span_id));
    assert_ne!(child.span_id, root.span_id);
    assert_eq!(child.kind, SpanKind::Client);
    assert_eq!(child.observation, ObservationKind::Generation);
    assert!(Arc::ptr_eq(&child.trace, &root.trace));
    assert!(
        root.start <= child.start && child.end <= root.end,
        "the call lies inside the row's trace"
    );
}

async fn started(t: &mut Sentiment, registry: &Arc<TracingRegistry>) -> elspeth::telemetry::Tracer {
    Transform::on_start(t, &StartContext::new(label("sentiment"), registry.clone()))
        .await
        .expect("starts")
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn successful_call_records_trace_and_generation() {
    let (registry, sink) = registry();
    let mut t = Sentiment::new(Some(langfuse()));
    let tracer = started(&mut t, &registry).await;
    assert!(t.set_up, "LlmCall::setup ran in on_start");
    assert!(tracer.is_enabled());
    assert_eq!(tracer.provider(), TracingProvider::Langfuse);
    assert_eq!(Transform::plugin(&t), "sentiment");

    let out = Transform::process(
        &t,
        row(json!({"text": "great product"})),
        RowContext::new("row-7", 7, &tracer),
    )
    .await
    .expect("row succeeds");
    assert_eq!(
        Value::Object(out),
        json!({"text": "great product", "llm_response": "positive"})
    );

    let spans = sink.spans();
    assert_eq!(spans.len(), 2, "one trace span, one generation");
    let (generation, root) = (&spans[0], &spans[1]);
    assert_root(root, "sentiment", "row-7");
    assert_child(generation, root);
    assert_eq!(generation.status, SpanStatus::Unset);
    assert_eq!(generation.metadata.len(), 1, "only latency_ms");
    let ms = latency(generation);
    assert!(ms >= 2.0, "the call sleeps 2 ms, latency_ms = {ms}");
    assert!((ms - generation.duration().as_secs_f64() * 1000.0).abs() < 1.0);
    let expected = GenerationData {
        response_model: Some("gpt-4o-2024-08-06".into()),
        response_id: Some("chatcmpl-42".into()),
        finish_reasons: vec!["stop".into()],
        output: Some("positive".into()),
        usage: Some(Usage {
            input: 12,
            output: 3,
            total: 15,
            ..Default::default()
        }),
        ..expected_generation("Classify: great product")
    };
    assert_eq!(generation.generation.as_deref(), Some(&expected));

    let report = Transform::close(&mut t, tracer).await;
    assert_eq!(
        report,
        CloseReport {
            tracing: Some(ExportSummary {
                exporter: "in-memory".into(),
                recorded: 2,
                sent: 2,
                ..ExportSummary::default()
            })
        }
    );
}

#[tokio::test]
async fn failed_call_is_an_error_observation_and_the_row_fails() {
    let (registry, sink) = registry();
    let mut t = Sentiment::new(Some(azure_ai()));
    let tracer = started(&mut t, &registry).await;
    assert_eq!(tracer.provider(), TracingProvider::AzureAi);

    let err = Transform::process(
        &t,
        row(json!({"text": "boom"})),
        RowContext::new("row-0", 0, &tracer),
    )
    .await
    .expect_err("the call's error reaches the row");
    assert_eq!(
        err,
        RowError {
            kind: "llm".into(),
            message: "HTTP 500: upstream overloaded".into(),
            http_status: Some(500),
        }
    );
    let spans = sink.spans();
    assert_eq!(spans.len(), 2);
    let (generation, root) = (&spans[0], &spans[1]);
    assert_root(root, "sentiment", "row-0");
    assert_child(generation, root);
    assert_eq!(
        generation.status,
        SpanStatus::Error("HTTP 500: upstream overloaded".into())
    );
    assert_eq!(generation.metadata.len(), 1);
    assert!(latency(generation) >= 2.0);
    let expected = GenerationData {
        error_type: Some("500".into()),
        http_status: Some(500),
        ..expected_generation("Classify: boom")
    };
    assert_eq!(generation.generation.as_deref(), Some(&expected));
}

#[tokio::test]
async fn a_row_that_cannot_be_planned_records_nothing() {
    let (registry, sink) = registry();
    let mut t = Sentiment::new(Some(langfuse()));
    let tracer = started(&mut t, &registry).await;
    let err = Transform::process(
        &t,
        row(json!({"other": 1})),
        RowContext::new("row-0", 0, &tracer),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, "template");
    assert!(sink.spans().is_empty());
}

#[tokio::test]
async fn tracing_none_absent_or_incomplete_records_nothing() {
    let incomplete = TracingConfig::Langfuse(LangfuseTracingConfig::default());
    for config in [Some(TracingConfig::None), None, Some(incomplete)] {
        let (registry, sink) = registry();
        let mut t = Sentiment::new(config.clone());
        let tracer = started(&mut t, &registry).await;
        assert!(!tracer.is_enabled(), "{config:?} runs untraced");
        let out = Transform::process(
            &t,
            row(json!({"text": "fine"})),
            RowContext::new("row-0", 0, &tracer),
        )
        .await
        .unwrap();
        assert_eq!(out["llm_response"], "positive");
        let err = Transform::process(
            &t,
            row(json!({"text": "boom"})),
            RowContext::new("row-1", 1, &tracer),
        )
        .await
        .unwrap_err();
        assert_eq!(err.http_status, Some(500));
        assert!(sink.spans().is_empty(), "{config:?} recorded spans");
        assert_eq!(
            Transform::close(&mut t, tracer).await,
            CloseReport { tracing: None }
        );
    }
}

// ---------------------------------------------------------- multi-query

/// Three queries per row, at most two in flight; `q_bad` fails.
#[llm_transform(tracing(providers = [langfuse, azure_ai]), name = "multi")]
struct Multi {
    #[tracing]
    trace_cfg: Option<TracingConfig>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    queries: Vec<&'static str>,
}

impl LlmCall for Multi {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::OpenRouter
    }
    fn model_label(&self) -> (&'static str, &str) {
        ("model", "openai/gpt-4o-mini")
    }
    fn concurrency(&self) -> usize {
        2
    }
    fn plan(&self, _row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        Ok(self
            .queries
            .iter()
            .map(|q| PlannedCall {
                query: Some(q.to_string()),
                request: LlmRequest::user("openai/gpt-4o-mini", format!("Query {q}")),
            })
            .collect())
    }
    async fn call(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        // The first query is the slowest, so results finish out of order.
        let slow = request.prompt() == Some("Query q_a");
        tokio::time::sleep(Duration::from_millis(if slow { 20 } else { 2 })).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        match request.prompt() {
            Some("Query q_bad") => Err(LlmError::new(LlmErrorKind::Timeout, "no answer in 60 s")),
            Some(p) => Ok(LlmResponse {
                content: format!("answer to {p}"),
                ..LlmResponse::default()
            }),
            None => unreachable!(),
        }
    }
    fn merge(
        &self,
        mut row: Row,
        results: Vec<(PlannedCall, Result<LlmResponse, LlmError>)>,
    ) -> Result<Row, RowError> {
        for (call, result) in results {
            let q = call.query.expect("named");
            let v = match result {
                Ok(r) => Value::String(r.content),
                Err(e) => json!({"error": e.message}),
            };
            row.insert(q, v);
        }
        Ok(row)
    }
}

fn multi(queries: Vec<&'static str>, tracing: Option<TracingConfig>) -> Multi {
    Multi {
        trace_cfg: tracing,
        in_flight: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
        queries,
    }
}

#[tokio::test]
async fn multi_call_row_is_one_trace_with_a_generation_per_query() {
    let (registry, sink) = registry();
    let mut t = multi(vec!["q_a", "q_b", "q_bad", "q_c"], Some(langfuse()));
    let tracer = Transform::on_start(&mut t, &StartContext::new(label("multi"), registry.clone()))
        .await
        .unwrap();
    assert_eq!(Transform::concurrency(&t), 2);
    let out = Transform::process(&t, Row::new(), RowContext::new("row-3", 3, &tracer))
        .await
        .unwrap();
    assert_eq!(
        Value::Object(out),
        json!({
            "q_a": "answer to Query q_a",
            "q_b": "answer to Query q_b",
            "q_bad": {"error": "no answer in 60 s"},
            "q_c": "answer to Query q_c",
        }),
        "results are merged in plan order"
    );
    assert_eq!(
        t.peak.load(Ordering::SeqCst),
        2,
        "calls run concurrently, at most `concurrency` at once"
    );

    let spans = sink.spans();
    assert_eq!(spans.len(), 5);
    let root = spans.last().unwrap();
    assert_eq!(root.name, "elspeth.multi");
    assert_eq!(
        pairs(&root.trace.metadata),
        vec![
            ("token_id".to_string(), json!("row-3")),
            ("plugin".to_string(), json!("multi")),
            ("model".to_string(), json!("openai/gpt-4o-mini")),
        ]
    );
    let mut by_query: HashMap<String, &SpanRecord> = HashMap::new();
    for g in &spans[..4] {
        assert_child(g, root);
        assert_eq!(g.metadata[0].0, "query");
        latency(g);
        by_query.insert(g.metadata[0].1.as_str().unwrap().to_string(), g);
    }
    assert_eq!(by_query.len(), 4);
    for q in ["q_a", "q_b", "q_c"] {
        let g = by_query[q];
        assert_eq!(g.status, SpanStatus::Unset);
        let data = g.generation.as_deref().unwrap();
        assert_eq!(
            data.output.as_deref(),
            Some(format!("answer to Query {q}").as_str())
        );
        assert_eq!(data.system, Some(GenAiSystem::OpenRouter));
        assert_eq!(data.server_address, None);
    }
    let bad = by_query["q_bad"];
    assert_eq!(bad.status, SpanStatus::Error("no answer in 60 s".into()));
    assert_eq!(
        bad.generation.as_deref().unwrap().error_type.as_deref(),
        Some("timeout")
    );
}

#[tokio::test]
async fn untraced_multi_call_row_still_runs_every_query() {
    let (registry, sink) = registry();
    let mut t = multi(vec!["q_a", "q_b", "q_c"], None);
    let tracer = Transform::on_start(&mut t, &StartContext::new(label("multi"), registry.clone()))
        .await
        .unwrap();
    let out = Transform::process(&t, Row::new(), RowContext::new("row-0", 0, &tracer))
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(t.peak.load(Ordering::SeqCst), 2);
    assert!(sink.spans().is_empty());
}

// ---------------------------------------------------- provider excluded

/// Accepts Langfuse only.
#[llm_transform(tracing(providers = [langfuse]), name = "lf_only")]
struct LangfuseOnly {
    tracing: Option<TracingConfig>,
    set_up: Arc<AtomicBool>,
}

impl LlmCall for LangfuseOnly {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::OpenRouter
    }
    fn model_label(&self) -> (&'static str, &str) {
        ("model", "m")
    }
    async fn setup(&mut self, _ctx: &StartContext) -> Result<(), StartError> {
        self.set_up.store(true, Ordering::SeqCst);
        Ok(())
    }
    fn plan(&self, _row: &Row) -> Result<Vec<PlannedCall>, RowError> {
        Ok(vec![])
    }
    async fn call(&self, _request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        unreachable!("never planned")
    }
}

#[tokio::test]
async fn excluded_provider_fails_start_with_a_clear_message() {
    let (registry, sink) = registry();
    let set_up = Arc::new(AtomicBool::new(false));
    let mut t = LangfuseOnly {
        tracing: Some(azure_ai()),
        set_up: set_up.clone(),
    };
    let ctx = StartContext::new(
        TransformLabel {
            index: 2,
            plugin: "lf_only".into(),
        },
        registry.clone(),
    );
    let err = Transform::on_start(&mut t, &ctx).await.unwrap_err();
    assert!(matches!(err, StartError::ProviderNotAccepted(_)));
    assert_eq!(
        err.to_string(),
        "transforms[2] (lf_only) does not support tracing provider `azure_ai`; it accepts: langfuse"
    );
    assert!(
        !set_up.load(Ordering::SeqCst),
        "nothing is set up for a config that cannot run"
    );

    // The accepted provider and `none` both start.
    for ok in [langfuse(), TracingConfig::None] {
        t.tracing = Some(ok);
        assert!(Transform::on_start(&mut t, &ctx).await.is_ok());
    }
    assert!(set_up.load(Ordering::SeqCst));
    assert!(sink.spans().is_empty());
}

// ----------------------------------------------------------------- job mode

/// A batch job: `drop` rows are missing from the output, `bad` rows fail
/// their line, a row without `text` cannot be planned.
#[llm_transform(tracing, name = "batcher", mode = job)]
struct Batcher {
    config: Option<TracingConfig>,
    fail_job: bool,
    jobs: AtomicUsize,
}

const JOB_START: Duration = Duration::from_secs(1_700_000_000);
const JOB_END: Duration = Duration::from_secs(1_700_000_090);

impl LlmJob for Batcher {
    fn system(&self) -> GenAiSystem {
        GenAiSystem::AzureOpenAi
    }
    fn model_label(&self) -> (&'static str, &str) {
        ("deployment", "gpt-4o-batch")
    }
    fn batch_size(&self) -> usize {
        50
    }
    fn plan(&self, row: &Row) -> Result<LlmRequest, RowError> {
        let text = row
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| RowError::new("template", "row has no `text`"))?;
        Ok(LlmRequest::user("gpt-4o-batch", text))
    }
    async fn run_job(&self, lines: Vec<JobLine>) -> Result<JobOutcome, LlmError> {
        self.jobs.fetch_add(1, Ordering::SeqCst);
        if self.fail_job {
            return Err(
                LlmError::new(LlmErrorKind::Job, "upload rejected: HTTP 400").with_status(400),
            );
        }
        let mut results = HashMap::new();
        for line in lines {
            match line.request.prompt() {
                Some("drop") => {}
                Some("bad") => {
                    results.insert(
                        line.custom_id,
                        Err(LlmError::new(LlmErrorKind::ContentFilter, "filtered")),
                    );
                }
                Some(p) => {
                    results.insert(line.custom_id, Ok(reply(&format!("re: {p}"))));
                }
                None => unreachable!(),
            }
        }
        Ok(JobOutcome {
            batch_id: "batch_abc123".into(),
            status: "completed".into(),
            results,
            started: SystemTime::UNIX_EPOCH + JOB_START,
            finished: SystemTime::UNIX_EPOCH + JOB_END,
        })
    }
    fn merge(&self, mut row: Row, result: Result<LlmResponse, LlmError>) -> Result<Row, RowError> {
        row.insert("llm_response".into(), Value::String(result?.content));
        Ok(row)
    }
}

fn batch_rows(texts: &[Option<&str>]) -> Vec<BatchRow> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| BatchRow {
            row: match t {
                Some(t) => row(json!({"text": t})),
                None => Row::new(),
            },
            token_id: format!("row-{i}"),
            index: i as u64,
        })
        .collect()
}

#[tokio::test]
async fn job_mode_records_a_job_span_and_a_generation_per_row() {
    let (registry, sink) = registry();
    let mut t = Batcher {
        config: Some(azure_ai()),
        fail_job: false,
        jobs: AtomicUsize::new(0),
    };
    let tracer = Transform::on_start(
        &mut t,
        &StartContext::new(label("batcher"), registry.clone()),
    )
    .await
    .unwrap();
    assert_eq!(Transform::batch_size(&t), Some(50));
    let rows = batch_rows(&[Some("one"), None, Some("bad"), Some("drop"), Some("two")]);
    let out = Transform::process_batch(&t, rows, BatchContext::new(&tracer)).await;
    assert_eq!(t.jobs.load(Ordering::SeqCst), 1, "one job for the chunk");
    assert_eq!(out.len(), 5);
    assert_eq!(out[0].as_ref().unwrap()["llm_response"], "re: one");
    assert_eq!(
        out[1].as_ref().unwrap_err().kind,
        "template",
        "an unplannable row fails alone"
    );
    assert_eq!(out[2].as_ref().unwrap_err().kind, "content_filter");
    let missing = out[3].as_ref().unwrap_err();
    assert_eq!(missing.kind, "batch");
    assert_eq!(
        missing.message,
        "the batch job (status `completed`) returned no result for this row"
    );
    assert_eq!(out[4].as_ref().unwrap()["llm_response"], "re: two");

    let spans = sink.spans();
    assert_eq!(spans.len(), 5, "4 row generations + the job span");
    let job = spans.last().unwrap();
    assert_eq!(job.name, "elspeth.batcher");
    assert_eq!(job.parent_span_id, None);
    assert_eq!(job.kind, SpanKind::Internal);
    assert_eq!(job.observation, ObservationKind::Span);
    assert_eq!(job.status, SpanStatus::Unset);
    assert_eq!(
        pairs(&job.trace.metadata),
        vec![
            ("plugin".to_string(), json!("batcher")),
            ("deployment".to_string(), json!("gpt-4o-batch")),
            ("rows".to_string(), json!(4)),
        ]
    );
    assert_eq!(
        pairs(&job.metadata),
        vec![
            ("rows".to_string(), json!(4)),
            ("batch_id".to_string(), json!("batch_abc123")),
            ("status".to_string(), json!("completed")),
        ]
    );
    assert!(job.generation.is_none());

    let expected_rows = [
        ("row-0", "one"),
        ("row-2", "bad"),
        ("row-3", "drop"),
        ("row-4", "two"),
    ];
    for (g, (token, text)) in spans[..4].iter().zip(expected_rows) {
        assert_eq!(g.name, "llm_call");
        assert_eq!(g.trace_id, job.trace_id);
        assert_eq!(g.parent_span_id, Some(job.span_id));
        assert_eq!(g.kind, SpanKind::Client);
        assert_eq!(g.observation, ObservationKind::Generation);
        assert_eq!(
            g.start,
            SystemTime::UNIX_EPOCH + JOB_START,
            "rows are timed by the job"
        );
        assert_eq!(g.end, SystemTime::UNIX_EPOCH + JOB_END);
        assert_eq!(
            pairs(&g.metadata),
            vec![
                ("token_id".to_string(), json!(token)),
                ("custom_id".to_string(), json!(token)),
                ("latency_ms".to_string(), json!(90_000.0)),
            ]
        );
        let base = GenerationData {
            system: Some(GenAiSystem::AzureOpenAi),
            request_model: "gpt-4o-batch".into(),
            input: Some(vec![ChatMessage::user(text)]),
            ..GenerationData::default()
        };
        let data = g.generation.as_deref().unwrap();
        match text {
            "bad" => {
                assert_eq!(g.status, SpanStatus::Error("filtered".into()));
                assert_eq!(
                    data,
                    &GenerationData {
                        error_type: Some("content_filter".into()),
                        ..base
                    }
                );
            }
            "drop" => {
                assert_eq!(
                    g.status,
                    SpanStatus::Error(
                        "the batch job (status `completed`) returned no result for this row".into()
                    )
                );
                assert_eq!(
                    data,
                    &GenerationData {
                        error_type: Some("batch_job_failed".into()),
                        ..base
                    }
                );
            }
            _ => {
                assert_eq!(g.status, SpanStatus::Unset);
                assert_eq!(
                    data,
                    &GenerationData {
                        response_model: Some("gpt-4o-2024-08-06".into()),
                        response_id: Some("chatcmpl-42".into()),
                        finish_reasons: vec!["stop".into()],
                        output: Some(format!("re: {text}")),
                        usage: Some(Usage {
                            input: 12,
                            output: 3,
                            total: 15,
                            ..Default::default()
                        }),
                        ..base
                    }
                );
            }
        }
    }
}

#[tokio::test]
async fn job_that_cannot_run_fails_every_row_and_the_job_span() {
    let (registry, sink) = registry();
    let mut t = Batcher {
        config: Some(langfuse()),
        fail_job: true,
        jobs: AtomicUsize::new(0),
    };
    let tracer = Transform::on_start(
        &mut t,
        &StartContext::new(label("batcher"), registry.clone()),
    )
    .await
    .unwrap();
    let out = Transform::process_batch(
        &t,
        batch_rows(&[Some("a"), Some("b")]),
        BatchContext::new(&tracer),
    )
    .await;
    for r in &out {
        let e = r.as_ref().unwrap_err();
        assert_eq!(
            (e.kind.as_str(), e.message.as_str(), e.http_status),
            ("batch", "upload rejected: HTTP 400", Some(400))
        );
    }
    let spans = sink.spans();
    assert_eq!(spans.len(), 1, "no generations without a job output");
    assert_eq!(
        spans[0].status,
        SpanStatus::Error("upload rejected: HTTP 400".into())
    );
    assert_eq!(
        pairs(&spans[0].metadata),
        vec![
            ("rows".to_string(), json!(2)),
            ("status".to_string(), json!("failed"))
        ]
    );
}

#[tokio::test]
async fn job_mode_single_row_process_and_untraced() {
    let (registry, sink) = registry();
    let mut t = Batcher {
        config: None,
        fail_job: false,
        jobs: AtomicUsize::new(0),
    };
    let tracer = Transform::on_start(
        &mut t,
        &StartContext::new(label("batcher"), registry.clone()),
    )
    .await
    .unwrap();
    let out = Transform::process(
        &t,
        row(json!({"text": "solo"})),
        RowContext::new("row-9", 9, &tracer),
    )
    .await
    .unwrap();
    assert_eq!(out["llm_response"], "re: solo");
    assert_eq!(t.jobs.load(Ordering::SeqCst), 1);
    assert!(sink.spans().is_empty());
}

// ------------------------------------------------------------ object safety

#[tokio::test]
async fn generated_transforms_run_as_dyn_transform() {
    let (registry, sink) = registry();
    let mut boxed: Vec<Box<dyn DynTransform>> = vec![
        Box::new(Sentiment::new(Some(langfuse()))),
        Box::new(Batcher {
            config: Some(langfuse()),
            fail_job: false,
            jobs: AtomicUsize::new(0),
        }),
    ];
    for (i, t) in boxed.iter_mut().enumerate() {
        let ctx = StartContext::new(
            TransformLabel {
                index: i,
                plugin: t.plugin().into(),
            },
            registry.clone(),
        );
        let tracer = t.on_start(&ctx).await.unwrap();
        let out = t
            .process(
                row(json!({"text": "x"})),
                RowContext::new("row-0", 0, &tracer),
            )
            .await
            .unwrap();
        assert!(out.contains_key("llm_response"));
        let report = t.close(tracer).await;
        assert!(report.tracing.is_some());
    }
    let names: Vec<_> = sink.spans().into_iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "llm_call",
            "elspeth.sentiment",
            "llm_call",
            "elspeth.batcher"
        ]
    );
}

#[tokio::test]
async fn a_row_with_no_planned_call_is_merged_without_a_trace() {
    let (registry, sink) = registry();
    let mut t = multi(vec![], Some(langfuse()));
    let tracer = Transform::on_start(&mut t, &StartContext::new(label("multi"), registry.clone()))
        .await
        .unwrap();
    assert!(tracer.is_enabled());
    let out = Transform::process(
        &t,
        row(json!({"id": 1})),
        RowContext::new("row-0", 0, &tracer),
    )
    .await
    .unwrap();
    assert_eq!(Value::Object(out), json!({"id": 1}));
    assert!(sink.spans().is_empty(), "no call, no trace");
}
