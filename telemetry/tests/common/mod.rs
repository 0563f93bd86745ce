//! Helpers shared by the telemetry integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use elspeth_schema::config::TracingProvider;
use elspeth_telemetry::call::{
    ChatMessage, GenAiSystem, LlmError, LlmErrorKind, LlmRequest, LlmResponse, Usage,
};
use elspeth_telemetry::export::{ExportConfig, RetryPolicy};
use elspeth_telemetry::{GenerationStart, SpanSink, TraceStart, Tracer, TracerOptions};

pub const PK: &str = "pk-lf-test-0001";
pub const SK: &str = "sk-lf-secret-0001";
pub const IKEY: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

pub const PROMPT: &str = "Classify: hello world";
pub const SYSTEM: &str = "You are a sentiment classifier.";
pub const REPLY: &str = "positive";

/// Export settings for tests: small backoff so retries finish fast.
pub fn fast_config() -> ExportConfig {
    ExportConfig {
        interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            max_retry_after: Duration::from_millis(200),
        },
        ..ExportConfig::default()
    }
}

pub fn tracer(sink: Arc<dyn SpanSink>, provider: TracingProvider, content: bool) -> Tracer {
    Tracer::new(
        sink,
        TracerOptions {
            provider,
            content_recording: content,
            sample_rate: 1.0,
        },
    )
}

pub fn start(token: &str) -> TraceStart<'_> {
    TraceStart {
        plugin: "azure_llm",
        token_id: token,
        model_key: "deployment",
        model: "gpt-4o",
    }
}

pub fn request(with_system: bool) -> LlmRequest {
    let mut r = LlmRequest::user("gpt-4o", PROMPT);
    if with_system {
        r.messages.insert(0, ChatMessage::system(SYSTEM));
    }
    r
}

pub fn response() -> LlmResponse {
    LlmResponse {
        content: REPLY.into(),
        model: Some("gpt-4o-2024-08-06".into()),
        usage: Some(Usage {
            input: 12,
            output: 3,
            total: 15,
        }),
        finish_reason: Some("stop".into()),
        id: Some("chatcmpl-1".into()),
        cost: None,
    }
}

pub fn server_error() -> LlmError {
    LlmError::new(
        LlmErrorKind::Server,
        format!("HTTP 500: upstream overloaded while answering '{REPLY}'"),
    )
    .with_status(500)
}

/// One row: trace + successful generation.
pub fn record_ok(tracer: &Tracer, token: &str, with_system: bool) {
    let trace = tracer.start_trace(start(token));
    let req = request(with_system);
    let mut gs = GenerationStart::new(GenAiSystem::AzureOpenAi, &req);
    gs.server_address = Some("myresource.openai.azure.com");
    trace.generation(gs).succeed(&response());
    trace.end();
}

/// One row: trace + failed generation (HTTP 500).
pub fn record_err(tracer: &Tracer, token: &str) {
    let trace = tracer.start_trace(start(token));
    let req = request(false);
    trace
        .generation(GenerationStart::new(GenAiSystem::AzureOpenAi, &req))
        .fail(&server_error());
    trace.end();
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    !n.is_empty() && haystack.windows(n.len()).any(|w| w == n)
}
