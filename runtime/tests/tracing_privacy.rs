//! `enable_content_recording: false` (both providers): no byte of the prompt,
//! the system prompt or the reply reaches any backend — in any attribute,
//! status message, header or log line — even when an error message quotes
//! them. With it on, the same search finds them (so the search is real).

mod tracing_common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use elspeth_mock::appinsights::AppInsightsMock;
use elspeth_mock::langfuse::LangfuseMock;
use elspeth_mock::otlp::{OtlpCollector, RecordedRequest};
use elspeth_runtime::llm::{
    ChatMessage, GenAiSystem, LlmError, LlmErrorKind, LlmRequest, LlmResponse,
};
use elspeth_runtime::tracing_settings::tier1_with;
use elspeth_schema::config::{TelemetryConfig, TracingConfig, TracingProvider};
use elspeth_telemetry::appinsights::AzureMonitorSlot;
use elspeth_telemetry::tier1::{Tier1, Tier1Options};
use elspeth_telemetry::{
    GenerationStart, RowGeneration, TraceStart, Tracer, TracingRegistry, TransformLabel,
};
use serde_json::json;
use tracing_common::*;

const SECRET_PROMPT: &str = "patient Jane Roe, DOB 1970-01-01, reports chest pain";
const SECRET_SYSTEM: &str = "internal triage rubric v7 do-not-share";
const SECRET_REPLY: &str = "urgent: cardiology referral for Jane Roe";

fn calls(tier1: &Tier1, tracer: &Tracer, tag: &str) {
    let request = LlmRequest {
        messages: vec![
            ChatMessage::system(SECRET_SYSTEM),
            ChatMessage::user(SECRET_PROMPT),
        ],
        model: "gpt-4o".into(),
        temperature: Some(0.0),
        max_tokens: Some(50),
        response_format: None,
    };
    let reply = LlmResponse {
        content: SECRET_REPLY.into(),
        ..response()
    };
    let request_body =
        serde_json::to_vec(&json!({"messages": [SECRET_SYSTEM, SECRET_PROMPT]})).unwrap();
    let response_body = serde_json::to_vec(&json!({"content": SECRET_REPLY})).unwrap();
    for i in 0..3 {
        let start = TraceStart {
            plugin: "azure_llm",
            token_id: &format!("{tag}-{i}"),
            model_key: "deployment",
            model: "gpt-4o",
            row: None,
        };
        let trace = tracer.start_trace(start);
        let call = tier1.start_call("llm.chat", "myresource.openai.azure.com");
        let g = trace.generation(GenerationStart::new(GenAiSystem::AzureOpenAi, &request));
        if i == 1 {
            // An error message that quotes the reply and the prompt.
            let e = LlmError::new(
                LlmErrorKind::MalformedResponse,
                format!("expected JSON, got {SECRET_REPLY:?} for {SECRET_PROMPT:?}"),
            );
            g.fail(&e);
            call.fail(
                Some(200),
                &e.error_type(),
                &request_body,
                Some(&response_body),
            );
        } else {
            g.succeed(&reply);
            call.succeed(200, &request_body, &response_body);
        }
        trace.end();
    }
    // A batch job row.
    let job = tracer.start_job("azure_batch_llm", "deployment", "gpt-4o", 1);
    let now = SystemTime::now();
    job.record_row(RowGeneration {
        system: GenAiSystem::AzureOpenAi,
        token_id: &format!("{tag}-job"),
        custom_id: "row-0",
        request: &request,
        outcome: Ok(&reply),
        start: now,
        end: now,
    });
    job.finish("completed", None);
}

struct Received {
    bytes: Vec<u8>,
}

impl Received {
    fn add(&mut self, requests: Vec<RecordedRequest>) {
        for r in requests {
            self.bytes.extend(r.all_bytes());
        }
    }
}

async fn run(content: bool) -> (Received, String) {
    let logs = logs();
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    let ai = AppInsightsMock::spawn(IKEY).await.unwrap();
    let collector = OtlpCollector::spawn().await.unwrap();
    let env: HashMap<String, String> = [("CS".to_string(), ai.connection_string())].into();
    let telemetry: TelemetryConfig = serde_json::from_value(
        json!({"exporters": [{"name": "otlp", "options": {"endpoint": collector.url()}}]}),
    )
    .unwrap();
    let tier1 = tier1_with(
        &telemetry,
        &env,
        Tier1Options {
            interval: Duration::from_millis(50),
            ..Tier1Options::default()
        },
    );
    let reg = Registry::new(
        env,
        TracingRegistry::new()
            .with_azure_slot(Arc::new(AzureMonitorSlot::new()))
            .with_export_config(fast_config())
            .with_tier1(&tier1),
    );
    let all = [TracingProvider::AzureAi, TracingProvider::Langfuse];
    let langfuse: TracingConfig = serde_json::from_value(json!({
        "provider": "langfuse", "public_key": PK, "secret_key": SK, "host": lf.url(),
        "enable_content_recording": content
    }))
    .unwrap();
    let azure: TracingConfig = serde_json::from_value(json!({
        "provider": "azure_ai", "connection_string": "${CS}", "enable_content_recording": content
    }))
    .unwrap();
    let label = |i: usize| TransformLabel {
        index: i,
        plugin: "azure_llm".into(),
    };
    let t_lf = reg.tracer_for(&label(0), Some(&langfuse), &all).unwrap();
    let t_ai = reg.tracer_for(&label(1), Some(&azure), &all).unwrap();
    calls(&tier1, &t_lf, "lf");
    calls(&tier1, &t_ai, "ai");
    let summaries = reg.shutdown(Duration::from_secs(5)).await;
    assert!(
        summaries.iter().all(|s| s.sent > 0 && s.failed == 0),
        "{summaries:?}"
    );
    tier1.shutdown(Duration::from_secs(5)).await;
    assert!(lf.span_count() >= 8 && ai.envelopes().len() >= 8 && !collector.spans().is_empty());
    let mut received = Received { bytes: Vec::new() };
    received.add(lf.requests());
    received.add(ai.requests());
    received.add(ai.live_requests());
    received.add(collector.requests());
    (received, logs.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_recording_off_sends_no_prompt_or_reply_anywhere() {
    let (received, logs) = run(false).await;
    for secret in [
        SECRET_PROMPT,
        SECRET_SYSTEM,
        SECRET_REPLY,
        "Jane Roe",
        "chest pain",
        "cardiology",
    ] {
        assert!(
            !contains(&received.bytes, secret),
            "{secret:?} reached a backend"
        );
        assert!(!logs.contains(secret), "{secret:?} reached a log line");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_recording_on_does_send_them() {
    let (received, _) = run(true).await;
    for expected in [SECRET_PROMPT, SECRET_SYSTEM, SECRET_REPLY] {
        assert!(
            contains(&received.bytes, expected),
            "{expected:?} was expected with content recording on"
        );
    }
}
