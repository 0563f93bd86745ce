//! The traces each transform records, checked field by field (through
//! `TracingRegistry::fixed(InMemorySink)`).

use elspeth_mock::Fault;
use elspeth_mock::chat::tokens;
use elspeth_mock::openrouter::cost;
use elspeth_runtime::llm::{ChatMessage, GenAiSystem, Usage};
use elspeth_telemetry::record::{ObservationKind, SpanKind, SpanRecord, SpanStatus};
use serde_json::{Value, json};

use crate::common::{Harness, Mocks, config, langfuse, meta};

fn latency_ms(span: &SpanRecord) -> f64 {
    let (k, v) = span
        .metadata
        .iter()
        .find(|(k, _)| k == "latency_ms")
        .expect("latency_ms");
    assert_eq!(k, "latency_ms");
    let ms = v.as_f64().expect("latency_ms is a number");
    let measured = span.duration().as_secs_f64() * 1000.0;
    assert!(
        ms >= 0.0 && (ms - measured).abs() < 1.0,
        "latency_ms {ms} vs span duration {measured}"
    );
    ms
}

/// Checks the row trace (root span) of a per-call transform.
fn assert_root(root: &SpanRecord, plugin: &str, token: &str, model_key: &str, model: &str) {
    assert_eq!(root.name, format!("elspeth.{plugin}"));
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.kind, SpanKind::Internal);
    assert_eq!(root.observation, ObservationKind::Span);
    assert_eq!(root.status, SpanStatus::Unset);
    assert!(root.generation.is_none());
    assert_eq!(root.trace.name, format!("elspeth.{plugin}"));
    assert_eq!(
        meta(&root.trace.metadata),
        json!({"token_id": token, "plugin": plugin, model_key: model})
    );
    assert!(root.start <= root.end);
}

fn assert_child(g: &SpanRecord, root: &SpanRecord) {
    assert_eq!(g.name, "llm_call");
    assert_eq!(g.trace_id, root.trace_id);
    assert_eq!(g.parent_span_id, Some(root.span_id));
    assert_ne!(g.span_id, root.span_id);
    assert_eq!(g.kind, SpanKind::Client);
    assert_eq!(g.observation, ObservationKind::Generation);
    assert!(
        root.start <= g.start && g.end <= root.end,
        "the generation lies inside its trace"
    );
}

fn usage_of(messages: &[&str], reply: &str) -> Usage {
    let all: String = messages.iter().map(|m| format!("{m}\n")).collect();
    let input = tokens(&all);
    let output = tokens(reply);
    Usage {
        input,
        output,
        total: input + output,
        ..Default::default()
    }
}

#[tokio::test]
async fn azure_llm_success_and_failure() {
    let mocks = Mocks::start().await;
    let cfg = config(
        "azure_llm",
        json!({"prompt_template": "Classify: {{ text }}", "system_prompt": "You triage.", "temperature": 0.2,
               "max_tokens": 20, "max_retries": 0, "tracing": langfuse()}),
    );
    let h = Harness::start(&cfg, mocks.env(), None).await;
    h.process(3, json!({"text": "refund please"}))
        .await
        .unwrap();
    let spans = h.spans();
    assert_eq!(spans.len(), 2, "one trace span and one generation");
    let (g, root) = (&spans[0], &spans[1]);
    assert_root(root, "azure_llm", "row-3", "deployment", "gpt-4o");
    assert_child(g, root);
    assert_eq!(g.status, SpanStatus::Unset);
    latency_ms(g);
    assert_eq!(g.metadata.len(), 1, "only latency_ms: {:?}", g.metadata);
    let d = g.generation.as_deref().unwrap();
    assert_eq!(d.system, Some(GenAiSystem::AzureOpenAi));
    assert_eq!(d.request_model, "gpt-4o");
    assert_eq!(d.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert!(
        d.response_id
            .as_deref()
            .is_some_and(|id| id.starts_with("chatcmpl-mock")),
        "{:?}",
        d.response_id
    );
    assert_eq!(d.finish_reasons, vec!["stop".to_string()]);
    assert_eq!(
        d.input,
        Some(vec![
            ChatMessage::system("You triage."),
            ChatMessage::user("Classify: refund please")
        ])
    );
    assert_eq!(d.output.as_deref(), Some("billing"));
    assert_eq!(
        d.usage,
        Some(usage_of(
            &["You triage.", "Classify: refund please"],
            "billing"
        ))
    );
    // Azure reports no cost: the price table's gpt-4o prices the call, and
    // the tracer records that cost with its parts.
    let u = d.usage.unwrap();
    let cost = d.cost.expect("priced by the table");
    let want = u.input as f64 * 2.50 / 1e6 + u.output as f64 * 10.00 / 1e6;
    assert!((cost.total - want).abs() < 1e-12, "{cost:?} for {u:?}");
    let parts = cost.parts.expect("a priced cost has its parts");
    assert!(
        (parts.input + parts.output - want).abs() < 1e-12,
        "{parts:?}"
    );
    assert_eq!(d.temperature, Some(0.2));
    assert_eq!(d.max_tokens, Some(20));
    assert_eq!(d.error_type, None);
    assert_eq!(d.http_status, None);
    assert_eq!(d.server_address.as_deref(), Some("127.0.0.1"));

    // A failed call: an error observation, and the row still fails.
    h.sink.take();
    mocks.azure.chat_faults().push(Fault::status(500));
    let e = h
        .process(4, json!({"text": "refund please"}))
        .await
        .unwrap_err();
    assert_eq!(e.http_status, Some(500));
    let spans = h.spans();
    assert_eq!(spans.len(), 2);
    let (g, root) = (&spans[0], &spans[1]);
    assert_root(root, "azure_llm", "row-4", "deployment", "gpt-4o");
    assert_child(g, root);
    assert_eq!(
        g.status,
        SpanStatus::Error("Azure OpenAI answered HTTP 500: mock fault: HTTP 500".into())
    );
    latency_ms(g);
    let d = g.generation.as_deref().unwrap();
    assert_eq!(d.error_type.as_deref(), Some("500"));
    assert_eq!(d.http_status, Some(500));
    assert_eq!(d.output, None);
    assert_eq!(d.usage, None);
    assert_eq!(d.response_model, None);
    assert!(
        d.input.is_some(),
        "the prompt is recorded even when the call fails"
    );
}

#[tokio::test]
async fn openrouter_llm_records_cost_and_model() {
    let mocks = Mocks::start().await;
    let cfg = config(
        "openrouter_llm",
        json!({"prompt_template": "Classify: {{ text }}", "tracing": langfuse()}),
    );
    let h = Harness::start(&cfg, mocks.env(), None).await;
    h.process(0, json!({"text": "my password does not work"}))
        .await
        .unwrap();
    let spans = h.spans();
    assert_eq!(spans.len(), 2);
    let (g, root) = (&spans[0], &spans[1]);
    assert_root(
        root,
        "openrouter_llm",
        "row-0",
        "model",
        "openai/gpt-4o-mini",
    );
    assert_child(g, root);
    let d = g.generation.as_deref().unwrap();
    assert_eq!(d.system, Some(GenAiSystem::OpenRouter));
    assert_eq!(d.request_model, "openai/gpt-4o-mini");
    assert_eq!(d.response_model.as_deref(), Some("openai/gpt-4o-mini"));
    assert!(
        d.response_id
            .as_deref()
            .is_some_and(|id| id.starts_with("gen-mock-"))
    );
    assert_eq!(d.output.as_deref(), Some("account"));
    let usage = usage_of(&["Classify: my password does not work"], "account");
    assert_eq!(d.usage, Some(usage));
    assert_eq!(
        d.cost,
        Some(elspeth_runtime::llm::Cost::reported(cost(
            usage.input,
            usage.output
        )))
    );
    assert_eq!(d.temperature, None);
    assert_eq!(d.server_address.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn multi_query_one_trace_one_generation_per_query() {
    let mocks = Mocks::start().await;
    for (plugin, model_key, model) in [
        ("azure_multi_query_llm", "deployment", "gpt-4o"),
        ("openrouter_multi_query_llm", "model", "openai/gpt-4o-mini"),
    ] {
        let cfg = config(
            plugin,
            json!({"prompt_template": "Rate {{ text }} on {{ criterion.name }} ({{ criterion.scale }}) for {{ case.name }}",
                   "queries": {"case": [{"name": "cs1"}], "criterion": [
                        {"name": "accuracy", "vars": {"scale": "1-5"}}, {"name": "clarity", "vars": {"scale": "1-3"}}]},
                   "tracing": langfuse()}),
        );
        let h = Harness::start(&cfg, mocks.env(), None).await;
        let row = h.process(9, json!({"text": "the essay"})).await.unwrap();
        assert_eq!(row["cs1_accuracy_llm_response"], "general");
        assert_eq!(row["cs1_clarity_llm_response"], "general");
        let spans = h.spans();
        assert_eq!(spans.len(), 3, "{plugin}: one trace, two generations");
        let root = spans.iter().find(|s| s.parent_span_id.is_none()).unwrap();
        assert_root(root, plugin, "row-9", model_key, model);
        let mut generations: Vec<&SpanRecord> = spans
            .iter()
            .filter(|s| s.parent_span_id.is_some())
            .collect();
        generations.sort_by_key(|g| {
            g.metadata
                .iter()
                .find(|(k, _)| k == "query")
                .map(|(_, v)| v.to_string())
        });
        for (g, (query, prompt)) in generations.iter().zip([
            ("cs1_accuracy", "Rate the essay on accuracy (1-5) for cs1"),
            ("cs1_clarity", "Rate the essay on clarity (1-3) for cs1"),
        ]) {
            assert_child(g, root);
            assert_eq!(
                g.metadata[0],
                ("query".into(), Value::from(query).into()),
                "{plugin}"
            );
            assert_eq!(g.metadata[1].0, "latency_ms");
            latency_ms(g);
            let d = g.generation.as_deref().unwrap();
            assert_eq!(d.input, Some(vec![ChatMessage::user(prompt)]), "{plugin}");
            assert_eq!(d.output.as_deref(), Some("general"));
            assert_eq!(d.usage, Some(usage_of(&[prompt], "general")));
        }
    }
}

#[tokio::test]
async fn openrouter_batch_traces_each_call() {
    let mocks = Mocks::start().await;
    let cfg = config(
        "openrouter_batch_llm",
        json!({"prompt_template": "Classify: {{ text }}", "batch_size": 2, "tracing": langfuse()}),
    );
    let h = Harness::start(&cfg, mocks.env(), None).await;
    let texts = ["refund", "crash", "password"];
    for (i, t) in texts.iter().enumerate() {
        h.process(i as u64, json!({"text": t})).await.unwrap();
    }
    let spans = h.spans();
    assert_eq!(spans.len(), 6, "a trace and a generation per row");
    for (i, pair) in spans.chunks(2).enumerate() {
        let (g, root) = (&pair[0], &pair[1]);
        assert_root(
            root,
            "openrouter_batch_llm",
            &format!("row-{i}"),
            "model",
            "openai/gpt-4o-mini",
        );
        assert_child(g, root);
        let d = g.generation.as_deref().unwrap();
        assert_eq!(
            d.input,
            Some(vec![ChatMessage::user(format!("Classify: {}", texts[i]))])
        );
        assert!(d.cost.is_some());
    }
    let traces: std::collections::HashSet<_> = spans.iter().map(|s| s.trace_id).collect();
    assert_eq!(traces.len(), 3, "one trace per call");
}

#[tokio::test]
async fn untraced_and_content_off() {
    let mocks = Mocks::start().await;
    let cfg = config(
        "azure_llm",
        json!({"prompt_template": "Classify: {{ text }}"}),
    );
    let h = Harness::start(&cfg, mocks.env(), None).await;
    h.process(0, json!({"text": "refund"})).await.unwrap();
    assert!(h.spans().is_empty(), "no tracing block: nothing recorded");
    assert!(!h.tracer.is_enabled());

    let mut tracing = langfuse();
    tracing["enable_content_recording"] = json!(false);
    let cfg = config(
        "azure_llm",
        json!({"prompt_template": "Classify: {{ text }}", "tracing": tracing}),
    );
    let h = Harness::start(&cfg, mocks.env(), None).await;
    h.process(0, json!({"text": "secret refund text"}))
        .await
        .unwrap();
    let spans = h.spans();
    let d = spans[0].generation.as_deref().unwrap();
    assert_eq!(
        (d.input.as_ref(), d.output.as_ref()),
        (None, None),
        "no prompt or reply text recorded"
    );
    assert!(
        d.usage.is_some() && d.response_model.is_some(),
        "tokens and model still are"
    );
}
