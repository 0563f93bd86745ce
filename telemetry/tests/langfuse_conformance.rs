//! Conformance of the Langfuse exporter: what the mock decodes from the
//! wire must carry every attribute of the Langfuse mapping (as the official
//! Python SDK encodes it in its OTLP requests) and of the OTel GenAI
//! conventions, with the right value AND type.

mod common;

use std::time::Duration;

use common::*;
use elspeth_mock::langfuse::{LangfuseMock, TRACES_PATH};
use elspeth_mock::otlp::DecodedSpan;
use elspeth_telemetry::SpanSink;
use elspeth_telemetry::TracingProvider;
use elspeth_telemetry::langfuse::{LangfuseSettings, langfuse_exporter};
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};

/// An expected attribute value with its OTLP type.
#[derive(Debug)]
enum Want {
    Str(&'static str),
    /// A string holding this JSON (compared parsed).
    Json(serde_json::Value),
    /// A string holding a JSON number.
    JsonNumber,
    Int(i64),
    Bool(bool),
    StrArray(&'static [&'static str]),
}

fn check(span: &DecodedSpan, table: &[(&str, Want)]) {
    for (key, want) in table {
        let got = span.attr(key).unwrap_or_else(|| {
            panic!(
                "span `{}` lacks `{key}`; has {:?}",
                span.span.name,
                span.keys()
            )
        });
        match (want, got) {
            (Want::Str(w), V::StringValue(g)) => assert_eq!(g, w, "{key}"),
            (Want::Json(w), V::StringValue(g)) => {
                let parsed: serde_json::Value = serde_json::from_str(g)
                    .unwrap_or_else(|e| panic!("{key} is not JSON ({e}): {g}"));
                assert_eq!(&parsed, w, "{key}");
            }
            (Want::JsonNumber, V::StringValue(g)) => {
                assert!(g.parse::<f64>().is_ok(), "{key} = {g} is not a JSON number")
            }
            (Want::Int(w), V::IntValue(g)) => assert_eq!(g, w, "{key}"),
            (Want::Bool(w), V::BoolValue(g)) => assert_eq!(g, w, "{key}"),
            (Want::StrArray(w), V::ArrayValue(a)) => {
                let items: Vec<&str> = a
                    .values
                    .iter()
                    .map(|v| match &v.value {
                        Some(V::StringValue(s)) => s.as_str(),
                        other => panic!("{key}: array item {other:?} is not a string"),
                    })
                    .collect();
                assert_eq!(&items, w, "{key}");
            }
            (w, g) => panic!("`{key}`: wanted {w:?}, got {g:?} (wrong type)"),
        }
    }
}

async fn exporter_for(mock_url: String) -> std::sync::Arc<elspeth_telemetry::export::Exporter> {
    let mut settings = LangfuseSettings::new(mock_url, PK, SK.into());
    settings.environment = Some("test".into());
    settings.release = Some("1.2.3".into());
    settings.tags = vec!["a".into(), "b".into()];
    langfuse_exporter(settings, fast_config()).expect("exporter")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoded_spans_carry_the_langfuse_and_genai_attributes() {
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    let exporter = exporter_for(lf.url()).await;
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    record_ok(&tracer, "tok-1", false);
    record_err(&tracer, "tok-2");
    let summary = exporter.flush(Duration::from_secs(10)).await;
    assert_eq!(
        (
            summary.sent,
            summary.dropped,
            summary.failed,
            summary.pending
        ),
        (4, 0, 0, 0)
    );

    // Transport: the OTLP path only, with the SDK's headers.
    let requests = lf.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.path, TRACES_PATH);
        assert_eq!(r.query, None);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert_eq!(r.header("x-langfuse-ingestion-version"), Some("4"));
        assert_eq!(r.header("x-langfuse-sdk-name"), Some("rust"));
        assert_eq!(
            r.header("x-langfuse-sdk-version"),
            Some(env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(r.header("x-langfuse-public-key"), Some(PK));
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{PK}:{SK}"));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Basic {basic}").as_str())
        );
    }

    let spans = lf.spans();
    assert_eq!(spans.len(), 4);
    // Resource and scope.
    for s in &spans {
        assert_eq!(s.resource_str("service.name"), Some("elspeth"));
        assert_eq!(s.resource_str("telemetry.sdk.language"), Some("rust"));
        assert_eq!(s.resource_str("langfuse.environment"), Some("test"));
        assert_eq!(s.resource_str("langfuse.release"), Some("1.2.3"));
        assert!(s.resource_str("service.instance.id").is_some());
        assert_eq!(s.scope.name, "langfuse-sdk");
        assert_eq!(s.scope.version, env!("CARGO_PKG_VERSION"));
        assert!(
            matches!(&s.scope.attributes[0].value.as_ref().unwrap().value, Some(V::StringValue(pk)) if pk == PK)
        );
    }
    let by_name = |name: &str, token: &str| -> &DecodedSpan {
        spans
            .iter()
            .find(|s| {
                s.span.name == name
                    && s.str_attr("langfuse.trace.metadata.token_id")
                        == Some(&format!("\"{token}\""))
            })
            .unwrap_or_else(|| panic!("no {name} for {token}"))
    };

    // Trace-level keys on every span.
    let trace_keys = |token: &'static str| {
        vec![
            ("langfuse.trace.name", Want::Str("elspeth.azure_llm")),
            (
                "langfuse.trace.metadata.token_id",
                Want::Str(if token == "tok-1" {
                    "\"tok-1\""
                } else {
                    "\"tok-2\""
                }),
            ),
            ("langfuse.trace.metadata.plugin", Want::Str("\"azure_llm\"")),
            (
                "langfuse.trace.metadata.deployment",
                Want::Str("\"gpt-4o\""),
            ),
            ("langfuse.trace.tags", Want::StrArray(&["a", "b"])),
            ("langfuse.environment", Want::Str("test")),
            ("langfuse.release", Want::Str("1.2.3")),
        ]
    };

    // The successful generation.
    let generation = by_name("llm_call", "tok-1");
    let root = by_name("elspeth.azure_llm", "tok-1");
    check(generation, &trace_keys("tok-1"));
    check(
        generation,
        &[
            ("langfuse.observation.type", Want::Str("generation")),
            (
                "langfuse.observation.model.name",
                Want::Str("gpt-4o-2024-08-06"),
            ),
            ("langfuse.observation.input", Want::Str(PROMPT)),
            ("langfuse.observation.output", Want::Str(REPLY)),
            (
                "langfuse.observation.usage_details",
                Want::Str(r#"{"input": 12, "output": 3, "total": 15}"#),
            ),
            ("langfuse.observation.metadata.latency_ms", Want::JsonNumber),
            ("gen_ai.operation.name", Want::Str("chat")),
            ("gen_ai.provider.name", Want::Str("azure.ai.openai")),
            ("gen_ai.system", Want::Str("az.ai.openai")),
            ("gen_ai.request.model", Want::Str("gpt-4o")),
            ("gen_ai.response.model", Want::Str("gpt-4o-2024-08-06")),
            ("gen_ai.response.id", Want::Str("chatcmpl-1")),
            ("gen_ai.response.finish_reasons", Want::StrArray(&["stop"])),
            ("gen_ai.usage.input_tokens", Want::Int(12)),
            ("gen_ai.usage.output_tokens", Want::Int(3)),
            ("server.address", Want::Str("myresource.openai.azure.com")),
            (
                "gen_ai.input.messages",
                Want::Json(
                    serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]),
                ),
            ),
            (
                "gen_ai.output.messages",
                Want::Json(
                    serde_json::json!([{"role": "assistant", "parts": [{"type": "text", "content": REPLY}], "finish_reason": "stop"}]),
                ),
            ),
        ],
    );
    for absent in [
        "langfuse.observation.level",
        "langfuse.internal.is_app_root",
        "error.type",
    ] {
        assert!(
            generation.attr(absent).is_none(),
            "{absent} on an ok generation"
        );
    }
    assert_eq!(generation.span.kind, SpanKind::Client as i32);
    assert_eq!(
        generation.span.status.as_ref().unwrap().code,
        StatusCode::Unset as i32
    );
    assert_eq!(generation.trace_id(), root.trace_id());
    assert_eq!(generation.parent_span_id(), root.span_id());
    assert_eq!(generation.span.trace_id.len(), 16);
    assert_eq!(generation.span.span_id.len(), 8);
    assert!(generation.span.end_time_unix_nano >= generation.span.start_time_unix_nano);
    assert!(generation.span.start_time_unix_nano > 1_600_000_000_000_000_000);

    // The root span.
    check(root, &trace_keys("tok-1"));
    check(
        root,
        &[
            ("langfuse.observation.type", Want::Str("span")),
            ("langfuse.internal.is_app_root", Want::Bool(true)),
            (
                "langfuse.observation.metadata.token_id",
                Want::Str("\"tok-1\""),
            ),
            (
                "langfuse.observation.metadata.plugin",
                Want::Str("\"azure_llm\""),
            ),
            (
                "langfuse.observation.metadata.deployment",
                Want::Str("\"gpt-4o\""),
            ),
        ],
    );
    assert_eq!(root.span.kind, SpanKind::Internal as i32);
    assert!(root.span.parent_span_id.is_empty());
    assert!(root.attr("gen_ai.operation.name").is_none());

    // The failed generation.
    let failed = by_name("llm_call", "tok-2");
    let message = format!("HTTP 500: upstream overloaded while answering '{REPLY}'");
    check(failed, &trace_keys("tok-2"));
    check(
        failed,
        &[
            ("langfuse.observation.type", Want::Str("generation")),
            ("langfuse.observation.level", Want::Str("ERROR")),
            ("langfuse.observation.model.name", Want::Str("gpt-4o")),
            ("error.type", Want::Str("500")),
            ("http.response.status_code", Want::Int(500)),
            ("gen_ai.operation.name", Want::Str("chat")),
        ],
    );
    assert_eq!(
        failed.str_attr("langfuse.observation.status_message"),
        Some(message.as_str())
    );
    let status = failed.span.status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, message);
    for absent in [
        "langfuse.observation.output",
        "langfuse.observation.usage_details",
        "gen_ai.output.messages",
    ] {
        assert!(
            failed.attr(absent).is_none(),
            "{absent} on a failed generation"
        );
    }
    // Spans are sent in end order: the generation before its root.
    let pos = |s: &DecodedSpan| {
        spans
            .iter()
            .position(|x| x.span_id() == s.span_id())
            .unwrap()
    };
    assert!(pos(generation) < pos(root));

    // Handy for checking with Langfuse's own converter (tools/langfuse-convert).
    if let Ok(dir) = std::env::var("ELSPETH_LANGFUSE_CAPTURE_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        for (i, body) in lf.accepted_bodies().iter().enumerate() {
            std::fs::write(format!("{dir}/langfuse_request_{i}.bin"), body).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_prompt_input_is_chat_messages_json() {
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    let exporter = exporter_for(lf.url()).await;
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    record_ok(&tracer, "tok-1", true);
    exporter.flush(Duration::from_secs(10)).await;
    let spans = lf.spans();
    let generation = spans.iter().find(|s| s.span.name == "llm_call").unwrap();
    check(
        generation,
        &[
            (
                "langfuse.observation.input",
                Want::Json(serde_json::json!([
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": PROMPT}
                ])),
            ),
            (
                "gen_ai.input.messages",
                Want::Json(serde_json::json!([
                    {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
                    {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
                ])),
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_job_rows_and_cost_details() {
    use elspeth_core::call::GenAiSystem;
    use elspeth_telemetry::RowGeneration;
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    let exporter = exporter_for(lf.url()).await;
    let tracer = tracer(exporter.clone(), TracingProvider::Langfuse, true);
    let mut job = tracer.start_job("azure_batch_llm", "deployment", "gpt-4o", 2);
    job.set_batch_id("batch_abc");
    let req = request(false);
    let mut resp = response();
    resp.cost = Some(elspeth_core::call::Cost::reported(0.0012));
    let now = std::time::SystemTime::now();
    job.record_row(RowGeneration {
        system: GenAiSystem::AzureOpenAi,
        token_id: "tok-9",
        custom_id: "row-0",
        request: &req,
        outcome: Ok(&resp),
        start: now - Duration::from_secs(60),
        end: now,
    });
    job.finish("completed", None);
    exporter.flush(Duration::from_secs(10)).await;
    let spans = lf.spans();
    assert_eq!(spans.len(), 2);
    let row = spans.iter().find(|s| s.span.name == "llm_call").unwrap();
    let root = spans
        .iter()
        .find(|s| s.span.name == "elspeth.azure_batch_llm")
        .unwrap();
    check(
        row,
        &[
            (
                "langfuse.observation.metadata.custom_id",
                Want::Str("\"row-0\""),
            ),
            (
                "langfuse.observation.metadata.token_id",
                Want::Str("\"tok-9\""),
            ),
            (
                "langfuse.observation.cost_details",
                Want::Str(r#"{"total": 0.0012}"#),
            ),
            ("langfuse.trace.metadata.rows", Want::Str("2")),
        ],
    );
    check(
        root,
        &[
            (
                "langfuse.observation.metadata.batch_id",
                Want::Str("\"batch_abc\""),
            ),
            (
                "langfuse.observation.metadata.status",
                Want::Str("\"completed\""),
            ),
            ("langfuse.observation.metadata.rows", Want::Str("2")),
            ("langfuse.internal.is_app_root", Want::Bool(true)),
        ],
    );
    // No key twice on the root (trace metadata and span metadata share `rows`).
    let keys = root.keys();
    let mut dedup = keys.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(keys.len(), dedup.len(), "{keys:?}");
    let row_duration = row.span.end_time_unix_nano - row.span.start_time_unix_nano;
    assert_eq!(row_duration, 60_000_000_000);
}
