//! The example's flow end to end, as `src/main.rs` runs it: the pipeline
//! generated from `pipelines/feedback-triage.yaml` plus the custom
//! `review_sentiment` transform, against the bundled mocks started in this
//! process, with an environment holding nothing but the mocks' variables.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use elspeth::config::{AzureAiTracingConfig, Env, SecretRef, SinkConfig, TracingConfig};
use elspeth::env::OverlayEnv;
use elspeth::pipeline::{Pipeline, RunError, RunOptions, RunSummary};
use elspeth::telemetry::{TracingRegistry, TransformLabel};
use elspeth::{StartContext, StartError, Transform};
use elspeth_example_custom_transform::sentiment::{APP_TITLE, PLUGIN, SENTIMENT_FIELD, SENTIMENTS};
use elspeth_example_custom_transform::{ReviewSentiment, SentimentOptions, pipelines};
use elspeth_mock::all::{MockStack, StackOptions};
use elspeth_mock::otlp::DecodedSpan;
use serde_json::Value;

/// A fresh output folder for one test.
fn out_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("custom-transform-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The mocks' variables over an empty environment: the run needs nothing
/// from the process environment.
fn mock_env(stack: &MockStack) -> Arc<dyn Env + Send + Sync> {
    Arc::new(OverlayEnv::new(
        stack.env(),
        Arc::new(BTreeMap::<String, String>::new()),
    ))
}

/// The generated pipeline, its sink moved into `dir`.
fn pipeline_writing_to(dir: &std::path::Path) -> Pipeline {
    let mut config = pipelines::feedback_triage::config();
    config.sink = SinkConfig::Jsonl {
        path: dir.join("feedback.jsonl").display().to_string(),
        error_path: None,
    };
    Pipeline::new(config, pipelines::feedback_triage::SOURCE_DIR)
}

/// The YAML transform's tracing block (Langfuse, `${VAR}`s unresolved).
fn yaml_tracing() -> Option<TracingConfig> {
    pipelines::feedback_triage::config().transforms[0]
        .tracing()
        .cloned()
}

async fn run(stack: &MockStack, test: &str) -> (RunSummary, Vec<Value>) {
    let dir = out_dir(test);
    let sentiment = ReviewSentiment::new(SentimentOptions::openrouter(yaml_tracing()));
    let summary = pipeline_writing_to(&dir)
        .with_transform(Box::new(sentiment))
        .run(RunOptions::default().with_env(mock_env(stack)))
        .await
        .expect("the run starts and finishes");
    let rows = std::fs::read_to_string(&summary.output)
        .expect("the output file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect();
    (summary, rows)
}

fn json_attr(span: &DecodedSpan, key: &str) -> Value {
    let text = span
        .str_attr(key)
        .unwrap_or_else(|| panic!("{} has no `{key}`: {:?}", span.span.name, span.keys()));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("`{key}` = {text:?} is not JSON: {e}"))
}

#[tokio::test]
async fn rows_get_the_custom_field_and_langfuse_gets_its_generations() {
    let stack = MockStack::start(StackOptions::default()).await.unwrap();
    let (summary, rows) = run(&stack, "traced").await;

    // Every row went through both transforms, in input order.
    assert_eq!(
        (summary.rows_read, summary.rows_ok, summary.rows_failed),
        (8, 8, 0),
        "{summary:?}"
    );
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "F-01", "F-02", "F-03", "F-04", "F-05", "F-06", "F-07", "F-08"
        ]
    );
    for row in &rows {
        assert!(row.get("error").is_none(), "{row}");
        assert!(row["category"].is_string(), "YAML transform's field: {row}");
        let sentiment = row[SENTIMENT_FIELD]
            .as_str()
            .unwrap_or_else(|| panic!("{row}"));
        assert!(SENTIMENTS.contains(&sentiment), "{row}");
    }
    // The mock rates by keyword: the value came from the model's JSON reply.
    let sentiment_of = |id: &str| {
        rows.iter().find(|r| r["id"] == id).unwrap()[SENTIMENT_FIELD]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(sentiment_of("F-01"), "negative"); // "unacceptable"
    assert_eq!(sentiment_of("F-02"), "positive"); // "Love", "thanks"
    assert_eq!(sentiment_of("F-08"), "neutral");

    // The custom transform's own calls: 8, in JSON mode, with its title.
    let bodies: Vec<_> = stack
        .openrouter
        .received()
        .into_iter()
        .filter(|r| r.title.as_deref() == Some(APP_TITLE))
        .map(|r| r.body)
        .collect();
    assert_eq!(bodies.len(), 8);
    for body in &bodies {
        assert_eq!(body["model"], "openai/gpt-4o-mini");
        assert_eq!(body["response_format"]["type"], "json_object");
        assert_eq!(body["messages"][0]["role"], "system");
    }
    // The run summary counts both transforms' calls: the custom one records
    // into the run's meter (`StartContext::usage`).
    assert_eq!((summary.llm_calls, summary.llm_calls_failed), (16, 0));

    // Langfuse: one trace `elspeth.review_sentiment` per row, each holding
    // one `llm_call` generation with the prompt, the reply, model and usage.
    let spans = stack.langfuse.spans();
    let trace_name = format!("elspeth.{PLUGIN}");
    let roots: Vec<&DecodedSpan> = spans.iter().filter(|s| s.span.name == trace_name).collect();
    assert_eq!(roots.len(), 8);
    let trace_ids: HashSet<String> = roots.iter().map(|s| s.trace_id()).collect();
    assert_eq!(trace_ids.len(), 8, "one trace per row");
    for root in &roots {
        assert_eq!(root.parent_span_id(), "");
        assert_eq!(root.str_attr("langfuse.observation.type"), Some("span"));
        assert_eq!(
            json_attr(root, "langfuse.trace.metadata.model"),
            "openai/gpt-4o-mini"
        );
    }
    let generations: Vec<&DecodedSpan> = spans
        .iter()
        .filter(|s| {
            s.span.name == "llm_call"
                && roots
                    .iter()
                    .any(|r| r.trace_id() == s.trace_id() && r.span_id() == s.parent_span_id())
        })
        .collect();
    // (The YAML transform's generations share the row's trace too: every
    // traced transform of a row records into the row's one trace.)
    assert_eq!(generations.len(), 8);
    let mut tokens_in = 0;
    for g in &generations {
        let root = roots.iter().find(|r| r.trace_id() == g.trace_id()).unwrap();
        assert_eq!(g.parent_span_id(), root.span_id());
        assert_eq!(g.str_attr("langfuse.trace.name"), Some(trace_name.as_str()));
        assert_eq!(g.str_attr("langfuse.observation.type"), Some("generation"));
        assert_eq!(
            g.str_attr("langfuse.observation.model.name"),
            Some("openai/gpt-4o-mini")
        );
        // Input: the chat (system + user); the user message holds the row's text.
        let input = json_attr(g, "langfuse.observation.input");
        assert_eq!(input[0]["role"], "system");
        let prompt = input[1]["content"].as_str().unwrap();
        assert!(
            prompt.starts_with("Rate this customer feedback."),
            "{prompt}"
        );
        let row = rows
            .iter()
            .find(|r| prompt.ends_with(r["text"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("no row for prompt {prompt:?}"));
        // Output: the reply whose sentiment went into that row.
        let output = json_attr(g, "langfuse.observation.output");
        assert_eq!(output["sentiment"], row[SENTIMENT_FIELD], "{row}");
        // Usage, also as the GenAI attributes.
        let usage = json_attr(g, "langfuse.observation.usage_details");
        let (input_tokens, output_tokens) = (
            usage["input"].as_u64().unwrap(),
            usage["output"].as_u64().unwrap(),
        );
        assert!(input_tokens > 0 && output_tokens > 0, "{usage}");
        assert_eq!(usage["total"].as_u64(), Some(input_tokens + output_tokens));
        assert_eq!(
            g.int_attr("gen_ai.usage.input_tokens"),
            Some(input_tokens as i64)
        );
        assert_eq!(g.str_attr("gen_ai.provider.name"), Some("openrouter"));
        tokens_in += input_tokens;
    }
    assert!(tokens_in > 0);
    // Traced usage = counted usage, over both transforms' generations.
    let traced_in: u64 = spans
        .iter()
        .filter(|s| s.span.name == "llm_call")
        .map(|g| {
            json_attr(g, "langfuse.observation.usage_details")["input"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(traced_in, summary.tokens_in, "traced usage = counted usage");

    // The YAML transform is traced to the same project, through the same exporter.
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.span.name == "elspeth.openrouter_llm")
            .count(),
        8
    );
    assert_eq!(summary.exporters.len(), 1, "{:?}", summary.exporters);
    assert_eq!(summary.exporters[0].sent, 32);
    assert_eq!(summary.exporters[0].failed, 0);
    stack.stop().await;
}

#[tokio::test]
async fn an_azure_ai_config_fails_on_start_as_the_attribute_excludes_it() {
    let stack = MockStack::start(StackOptions::default()).await.unwrap();
    let azure_ai = TracingConfig::AzureAi(AzureAiTracingConfig {
        connection_string: Some(SecretRef::new("${APPLICATIONINSIGHTS_CONNECTION_STRING}")),
        ..AzureAiTracingConfig::default()
    });
    let result = pipeline_writing_to(&out_dir("azure-ai"))
        .with_transform(Box::new(ReviewSentiment::new(
            SentimentOptions::openrouter(Some(azure_ai)),
        )))
        .run(RunOptions::default().with_env(mock_env(&stack)))
        .await;
    let Err(RunError::Start(StartError::ProviderNotAccepted(e))) = result else {
        panic!("expected the provider to be refused, got {result:?}");
    };
    assert_eq!(
        e.to_string(),
        "transforms[1] (review_sentiment) does not support tracing provider `azure_ai`; it accepts: langfuse"
    );
    // Refused before any row: no LLM call, no trace, no envelope.
    assert_eq!(stack.openrouter.requests(), 0);
    assert_eq!(stack.langfuse.span_count(), 0);
    assert!(stack.appinsights.dependencies().is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn an_unset_api_key_fails_on_start_naming_the_variable() {
    let env: BTreeMap<String, String> = BTreeMap::new();
    let registry = Arc::new(TracingRegistry::new());
    let label = TransformLabel {
        index: 1,
        plugin: PLUGIN.into(),
    };
    let mut sentiment = ReviewSentiment::new(SentimentOptions::openrouter(None));
    let ctx = StartContext {
        env: Arc::new(env),
        ..StartContext::new(label, registry)
    };
    let Err(e) = Transform::on_start(&mut sentiment, &ctx).await else {
        panic!("should not start without OPENROUTER_API_KEY");
    };
    assert_eq!(
        e.to_string(),
        "transforms[1] (review_sentiment): api_key: environment variable `OPENROUTER_API_KEY` is not set (set it (`export OPENROUTER_API_KEY=...`) or give a default: `${OPENROUTER_API_KEY:-default}`)"
    );
}
