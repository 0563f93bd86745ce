//! Helpers shared by the telemetry integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use elspeth_core::call::{
    ChatMessage, GenAiSystem, LlmError, LlmErrorKind, LlmRequest, LlmResponse, Usage,
};
use elspeth_telemetry::export::{ExportConfig, RetryPolicy};
use elspeth_telemetry::{
    GenerationStart, SpanSink, TraceStart, Tracer, TracerOptions, TracingProvider,
};

pub(crate) const PK: &str = "pk-lf-test-0001";
pub(crate) const SK: &str = "sk-lf-secret-0001";
pub(crate) const IKEY: &str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

pub(crate) const PROMPT: &str = "Classify: hello world";
pub(crate) const SYSTEM: &str = "You are a sentiment classifier.";
pub(crate) const REPLY: &str = "positive";

/// Export settings for tests: small backoff so retries finish fast.
pub(crate) fn fast_config() -> ExportConfig {
    ExportConfig {
        interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            max_retry_after: Duration::from_millis(200),
            ..RetryPolicy::exporter()
        },
        ..ExportConfig::default()
    }
}

pub(crate) fn tracer(sink: Arc<dyn SpanSink>, provider: TracingProvider, content: bool) -> Tracer {
    Tracer::new(
        sink,
        TracerOptions {
            provider,
            content_recording: content,
            sample_rate: 1.0,
            trace_failures: true,
        },
    )
}

pub(crate) fn start(token: &str) -> TraceStart<'_> {
    TraceStart {
        plugin: "azure_llm",
        token_id: token,
        model_key: "deployment",
        model: "gpt-4o",
        row: None,
    }
}

pub(crate) fn request(with_system: bool) -> LlmRequest {
    let mut r = LlmRequest::user("gpt-4o", PROMPT);
    if with_system {
        r.messages.insert(0, ChatMessage::system(SYSTEM));
    }
    r
}

pub(crate) fn response() -> LlmResponse {
    LlmResponse {
        content: REPLY.into(),
        model: Some("gpt-4o-2024-08-06".into()),
        usage: Some(Usage {
            input: 12,
            output: 3,
            total: 15,
            ..Default::default()
        }),
        finish_reason: Some("stop".into()),
        id: Some("chatcmpl-1".into()),
        cost: None,
    }
}

pub(crate) fn server_error() -> LlmError {
    LlmError::new(
        LlmErrorKind::Server,
        format!("HTTP 500: upstream overloaded while answering '{REPLY}'"),
    )
    .with_status(500)
}

/// One row: trace + successful generation.
pub(crate) fn record_ok(tracer: &Tracer, token: &str, with_system: bool) {
    let trace = tracer.start_trace(start(token));
    let req = request(with_system);
    let mut gs = GenerationStart::new(GenAiSystem::AzureOpenAi, &req);
    gs.server_address = Some("myresource.openai.azure.com");
    trace.generation(gs).succeed(&response());
    trace.end();
}

/// One row: trace + failed generation (HTTP 500).
pub(crate) fn record_err(tracer: &Tracer, token: &str) {
    let trace = tracer.start_trace(start(token));
    let req = request(false);
    trace
        .generation(GenerationStart::new(GenAiSystem::AzureOpenAi, &req))
        .fail(&server_error());
    trace.end();
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    !n.is_empty() && haystack.windows(n.len()).any(|w| w == n)
}

/// Log lines of every test in this binary (a global subscriber writing to
/// memory). Filter by something unique to your test (a host, a label).
pub(crate) fn logs() -> LogBuffer {
    use std::sync::OnceLock;
    static BUFFER: OnceLock<LogBuffer> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = LogBuffer(Arc::new(std::sync::Mutex::new(Vec::new())));
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .finish();
            let _ = tracing::subscriber::set_global_default(subscriber);
            buffer
        })
        .clone()
}

/// Captured log output.
#[derive(Clone)]
pub(crate) struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Lines containing every one of `needles`.
    pub(crate) fn lines_with(&self, needles: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_string)
            .collect()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A port nothing listens on.
pub(crate) fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A miniature pipeline: `rows` rows, 8 in flight, each "calls the LLM"
/// (yields) and records a trace + generation, then writes its output row.
/// Returns the rows written, and the most spans the sink had pending.
pub(crate) async fn run_rows(
    tracer: &Tracer,
    sink: Arc<dyn SpanSink>,
    rows: usize,
    prefix: &str,
) -> (Vec<String>, u64) {
    let written = Arc::new(std::sync::Mutex::new(Vec::with_capacity(rows)));
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (tracer, sink, written, peak, next) = (
            tracer.clone(),
            sink.clone(),
            written.clone(),
            peak.clone(),
            next.clone(),
        );
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= rows {
                    break;
                }
                tokio::task::yield_now().await; // the LLM call
                let token = format!("{prefix}-{i}");
                record_ok(&tracer, &token, false);
                written.lock().unwrap().push(token);
                peak.fetch_max(sink.summary().pending, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = std::mem::take(&mut *written.lock().unwrap());
    (rows, peak.load(std::sync::atomic::Ordering::Relaxed))
}
