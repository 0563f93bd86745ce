//! Tier 1 telemetry (OTLP to a collector: latency, status, hashes only) and
//! the Tier 1 + Tier 2 matrix.

mod tracing_common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use elspeth_mock::appinsights::AppInsightsMock;
use elspeth_mock::langfuse::LangfuseMock;
use elspeth_mock::otlp::{DecodedSpan, OtlpCollector};
use elspeth_runtime::tracing_settings::tier1_with;
use elspeth_schema::config::{TelemetryConfig, TracingConfig, TracingProvider};
use elspeth_telemetry::appinsights::AzureMonitorSlot;
use elspeth_telemetry::record::TraceId;
use elspeth_telemetry::tier1::{CallScope, RowSpanStart, Tier1, Tier1Options, sha256_hex};
use elspeth_telemetry::{Tracer, TracingRegistry, TransformLabel};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use serde_json::json;
use tracing_common::*;

fn options() -> Tier1Options {
    Tier1Options {
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
        ..Tier1Options::default()
    }
}

fn telemetry(endpoint: &str, extra: serde_json::Value) -> TelemetryConfig {
    let mut options = json!({"endpoint": endpoint, "service_name": "triage-pipeline"});
    if let Some(map) = extra.as_object() {
        for (k, v) in map {
            options[k] = v.clone();
        }
    }
    serde_json::from_value(json!({"exporters": [{"name": "otlp", "options": options}]})).unwrap()
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const REQUEST_BODY: &str = r#"{"messages":[{"role":"user","content":"Classify: hello world"}]}"#;
const RESPONSE_BODY: &str = r#"{"choices":[{"message":{"content":"positive"}}]}"#;

/// One LLM call as an LLM client records it: Tier 1 span + Tier 2 generation.
fn llm_call(tier1: &Tier1, tracer: &Tracer, token: &str) {
    let call = tier1.start_call("llm.chat", "myresource.openai.azure.com");
    record_ok(tracer, token, false);
    call.succeed(200, REQUEST_BODY.as_bytes(), RESPONSE_BODY.as_bytes());
}

fn names(spans: &[DecodedSpan]) -> Vec<String> {
    let mut n: Vec<String> = spans.iter().map(|s| s.span.name.clone()).collect();
    n.sort();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_spans_carry_status_latency_and_hashes_only() {
    let collector = OtlpCollector::spawn().await.unwrap();
    collector.require_header("x-api-key", "collector-secret");
    let config = telemetry(
        &collector.url(),
        json!({"headers": {"x-api-key": "${COLLECTOR_KEY}"}}),
    );
    let tier1 = tier1_with(
        &config,
        &env(&[("COLLECTOR_KEY", "collector-secret")]),
        options(),
    );
    assert!(tier1.is_enabled());

    let run = tier1.start_run("triage", "run-1", None);
    let row_trace = TraceId::random();
    let row = tier1.start_row(RowSpanStart {
        run: run.link(),
        pipeline: "triage",
        run_id: "run-1",
        index: 0,
        token_id: "row-0",
        trace_id: row_trace,
        shard: None,
    });
    let scope = CallScope {
        row: row.link(),
        transform: Arc::from("transforms[0] (azure_llm)"),
    };
    scope
        .scope(async {
            tier1
                .start_call("llm.chat", "myresource.openai.azure.com")
                .succeed(200, REQUEST_BODY.as_bytes(), RESPONSE_BODY.as_bytes());
            tier1.start_call("llm.chat", "openrouter.ai").fail(
                Some(429),
                "429",
                REQUEST_BODY.as_bytes(),
                Some(b"{\"error\":\"slow down\"}"),
            );
        })
        .await;
    // Outside the row's scope: a root of its own, no transform.
    drop(tier1.start_call("llm.batch.poll", "myresource.openai.azure.com")); // cancelled
    row.end();
    run.end();
    let summaries = tier1.shutdown(Duration::from_secs(5)).await;
    assert_eq!(summaries.len(), 1);
    assert_eq!(
        (summaries[0].sent, summaries[0].dropped, summaries[0].failed),
        (5, 0, 0),
        "{summaries:?}"
    );

    let spans = collector.spans();
    assert_eq!(
        names(&spans),
        vec![
            "llm.batch.poll",
            "llm.chat",
            "llm.chat",
            "pipeline.row",
            "pipeline.run"
        ]
    );
    for s in &spans {
        assert_eq!(s.resource_str("service.name"), Some("triage-pipeline"));
        // The OTel SDK's own resource attributes (dropped before).
        assert_eq!(s.resource_str("telemetry.sdk.name"), Some("opentelemetry"));
        assert_eq!(s.resource_str("telemetry.sdk.language"), Some("rust"));
        assert!(
            s.resource_str("telemetry.sdk.version")
                .is_some_and(|v| !v.is_empty())
        );
        assert_eq!(s.scope.name, "elspeth.tier1");
    }
    let ok = spans
        .iter()
        .find(|s| {
            s.str_attr("server.address") == Some("myresource.openai.azure.com")
                && s.span.name == "llm.chat"
        })
        .unwrap();
    assert_eq!(ok.span.kind, SpanKind::Client as i32);
    assert_eq!(ok.int_attr("http.response.status_code"), Some(200));
    assert_eq!(
        ok.str_attr("elspeth.request.sha256"),
        Some(sha256_hex(REQUEST_BODY.as_bytes()).as_str())
    );
    assert_eq!(
        ok.str_attr("elspeth.response.sha256"),
        Some(sha256_hex(RESPONSE_BODY.as_bytes()).as_str())
    );
    assert_eq!(
        ok.int_attr("http.request.body.size"),
        Some(REQUEST_BODY.len() as i64)
    );
    assert_eq!(
        ok.int_attr("http.response.body.size"),
        Some(RESPONSE_BODY.len() as i64)
    );
    assert!(
        ok.span.end_time_unix_nano >= ok.span.start_time_unix_nano,
        "latency is the span's duration"
    );
    assert_ne!(
        ok.span.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    let failed = spans
        .iter()
        .find(|s| s.str_attr("server.address") == Some("openrouter.ai"))
        .unwrap();
    assert_eq!(failed.str_attr("error.type"), Some("429"));
    assert_eq!(failed.int_attr("http.response.status_code"), Some(429));
    assert_eq!(
        failed.span.status.as_ref().unwrap().code,
        StatusCode::Error as i32
    );
    let cancelled = spans
        .iter()
        .find(|s| s.span.name == "llm.batch.poll")
        .unwrap();
    assert_eq!(cancelled.str_attr("error.type"), Some("cancelled"));
    let row = spans
        .iter()
        .find(|s| s.span.name == "pipeline.row")
        .unwrap();
    assert_eq!(row.str_attr("elspeth.token_id"), Some("row-0"));
    assert_eq!(row.str_attr("elspeth.run_id"), Some("run-1"));
    assert_eq!(row.str_attr("elspeth.pipeline"), Some("triage"));
    assert_eq!(row.int_attr("elspeth.row.index"), Some(0));
    // The row is its own trace, with the id given (its Tier 2 trace's id),
    // a root linked to the run span.
    let run = spans
        .iter()
        .find(|s| s.span.name == "pipeline.run")
        .unwrap();
    assert_eq!(run.str_attr("elspeth.run_id"), Some("run-1"));
    assert_eq!(row.span.trace_id, row_trace.0.to_vec());
    assert_ne!(row.span.trace_id, run.span.trace_id);
    assert!(row.span.parent_span_id.is_empty());
    assert_eq!(row.span.links.len(), 1);
    assert_eq!(row.span.links[0].trace_id, run.span.trace_id);
    assert_eq!(row.span.links[0].span_id, run.span.span_id);
    // The calls made in the row's scope are its children and name the
    // transform; the one outside is a root without it.
    for call in spans.iter().filter(|s| s.span.name == "llm.chat") {
        assert_eq!(call.span.trace_id, row.span.trace_id);
        assert_eq!(call.span.parent_span_id, row.span.span_id);
        assert_eq!(
            call.str_attr("elspeth.transform"),
            Some("transforms[0] (azure_llm)")
        );
    }
    assert!(cancelled.span.parent_span_id.is_empty());
    assert_ne!(cancelled.span.trace_id, row.span.trace_id);
    assert_eq!(cancelled.str_attr("elspeth.transform"), None);

    // Hashes only: no byte of the bodies, prompt or reply reached the collector.
    for r in collector.requests() {
        let bytes = r.all_bytes();
        for needle in [PROMPT, REPLY, "slow down"] {
            assert!(
                !contains(&bytes, needle),
                "{needle:?} reached the collector"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granularity_limits_what_is_recorded() {
    for (granularity, expected) in [
        ("lifecycle", vec!["pipeline.run"]),
        ("rows", vec!["pipeline.row", "pipeline.run"]),
        ("full", vec!["llm.chat", "pipeline.row", "pipeline.run"]),
    ] {
        let collector = OtlpCollector::spawn().await.unwrap();
        let mut config = telemetry(&collector.url(), json!({}));
        config.granularity = serde_json::from_value(json!(granularity)).unwrap();
        let tier1 = tier1_with(&config, &env(&[]), options());
        let run = tier1.start_run(granularity, "run-1", None);
        let row = tier1.start_row(RowSpanStart {
            run: run.link(),
            pipeline: "p",
            run_id: "run-1",
            index: 0,
            token_id: "row-0",
            trace_id: TraceId::random(),
            shard: None,
        });
        let call = tier1.start_call("llm.chat", "h");
        assert_eq!(call.is_recording(), granularity == "full");
        call.succeed(200, b"{}", b"{}");
        row.end();
        run.end();
        tier1.shutdown(Duration::from_secs(5)).await;
        assert_eq!(names(&collector.spans()), expected, "{granularity}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_down_or_misconfigured_never_hurts() {
    // Down: shutdown returns within its deadline, nothing is lost silently.
    let config = telemetry(&format!("http://127.0.0.1:{}", dead_port()), json!({}));
    let tier1 = tier1_with(&config, &env(&[]), options());
    for i in 0..50 {
        tier1
            .start_call("llm.chat", "h")
            .succeed(200, format!("{i}").as_bytes(), b"{}");
    }
    let summaries = tokio::time::timeout(
        Duration::from_secs(5),
        tier1.shutdown(Duration::from_millis(500)),
    )
    .await
    .expect("shutdown returns within its deadline");
    let s = &summaries[0];
    assert_eq!(s.sent, 0);
    assert_eq!(s.failed + s.dropped, 50, "{s:?}");

    // Misconfigured: one warning, disabled, recording is a no-op.
    let logs = logs();
    let config = telemetry("${UNSET_COLLECTOR_ENDPOINT}", json!({}));
    let tier1 = tier1_with(&config, &env(&[]), options());
    assert!(!tier1.is_enabled());
    assert!(!tier1.start_call("llm.chat", "h").is_recording());
    assert!(
        !logs
            .lines_with(&["WARN", "UNSET_COLLECTOR_ENDPOINT"])
            .is_empty()
    );
    // Disabled section.
    let mut config = telemetry("http://127.0.0.1:1", json!({}));
    config.enabled = false;
    assert!(!tier1_with(&config, &env(&[]), options()).is_enabled());
}

fn registry(tier1: &Tier1, env_pairs: &[(&str, &str)]) -> Registry {
    Registry::new(
        env(env_pairs),
        TracingRegistry::new()
            .with_azure_slot(Arc::new(AzureMonitorSlot::new()))
            .with_export_config(fast_config())
            .with_tier1(tier1),
    )
}

fn label(plugin: &str) -> TransformLabel {
    TransformLabel {
        index: 0,
        plugin: plugin.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier1_plus_langfuse_both_export_without_recursion() {
    let logs = logs();
    let collector = OtlpCollector::spawn().await.unwrap();
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    let tier1 = tier1_with(
        &telemetry(&collector.url(), json!({})),
        &env(&[]),
        options(),
    );
    let reg = registry(&tier1, &[]);
    let c: TracingConfig = serde_json::from_value(
        json!({"provider": "langfuse", "public_key": PK, "secret_key": SK, "host": lf.url()}),
    )
    .unwrap();
    let tracer = reg
        .tracer_for(
            &label("t1_langfuse_plugin"),
            Some(&c),
            &[TracingProvider::Langfuse],
        )
        .unwrap();
    for i in 0..10 {
        llm_call(&tier1, &tracer, &format!("tl-{i}"));
    }
    reg.shutdown(Duration::from_secs(5)).await;
    tier1.shutdown(Duration::from_secs(5)).await;
    assert_eq!(lf.span_count(), 20);
    let spans = collector.spans();
    assert_eq!(
        spans.len(),
        10,
        "one Tier 1 span per LLM call, none for exporting: {:?}",
        names(&spans)
    );
    assert!(spans.iter().all(|s| s.span.name == "llm.chat"));
    assert!(
        logs.lines_with(&[
            "Existing OpenTelemetry tracer detected",
            "t1_langfuse_plugin"
        ])
        .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier1_plus_azure_ai_both_export_and_warn_once() {
    let logs = logs();
    let collector = OtlpCollector::spawn().await.unwrap();
    let ai = AppInsightsMock::spawn(IKEY).await.unwrap();
    let tier1 = tier1_with(
        &telemetry(&collector.url(), json!({})),
        &env(&[]),
        options(),
    );
    let reg = registry(&tier1, &[("CS", &ai.connection_string())]);
    let c: TracingConfig =
        serde_json::from_value(json!({"provider": "azure_ai", "connection_string": "${CS}"}))
            .unwrap();
    let accepted = [TracingProvider::AzureAi];
    let t0 = reg
        .tracer_for(&label("t1_azure_plugin"), Some(&c), &accepted)
        .unwrap();
    let t1 = reg
        .tracer_for(&label("t1_azure_plugin"), Some(&c), &accepted)
        .unwrap();
    for i in 0..5 {
        llm_call(&tier1, &t0, &format!("ta-{i}"));
        llm_call(&tier1, &t1, &format!("tb-{i}"));
    }
    reg.shutdown(Duration::from_secs(5)).await;
    tier1.shutdown(Duration::from_secs(5)).await;
    assert_eq!(ai.envelopes().len(), 20);
    assert_eq!(collector.spans().len(), 10);
    let warnings = logs.lines_with(&[
        "WARN",
        "Existing OpenTelemetry tracer detected",
        "t1_azure_plugin",
    ]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    // Neither tier touched OpenTelemetry's global tracer provider.
    use opentelemetry::trace::{Span, Tracer as _};
    let span = opentelemetry::global::tracer("probe").start("probe");
    assert!(
        !span.is_recording(),
        "the global provider is still the no-op one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_ai_without_tier1_does_not_warn() {
    let logs = logs();
    let ai = AppInsightsMock::spawn(IKEY).await.unwrap();
    let reg = registry(&Tier1::disabled(), &[("CS", &ai.connection_string())]);
    let c: TracingConfig =
        serde_json::from_value(json!({"provider": "azure_ai", "connection_string": "${CS}"}))
            .unwrap();
    let t = reg
        .tracer_for(
            &label("no_t1_azure_plugin"),
            Some(&c),
            &[TracingProvider::AzureAi],
        )
        .unwrap();
    record_ok(&t, "x", false);
    reg.shutdown(Duration::from_secs(5)).await;
    assert_eq!(ai.envelopes().len(), 2);
    assert!(
        logs.lines_with(&[
            "Existing OpenTelemetry tracer detected",
            "no_t1_azure_plugin"
        ])
        .is_empty()
    );
}

#[tokio::test]
async fn dropping_tier1_without_shutdown_does_not_block_the_runtime() {
    // Current-thread runtime: a blocking shutdown on this thread would stall
    // the export it waits for (the export runs on this runtime), and the
    // span would never arrive.
    let collector = OtlpCollector::spawn().await.unwrap();
    let tier1 = tier1_with(
        &telemetry(&collector.url(), json!({})),
        &env(&[]),
        options(),
    );
    tier1.start_call("llm.chat", "h").succeed(200, b"{}", b"{}");
    drop(tier1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while collector.spans().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(collector.spans().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_served_from_the_store_is_an_llm_chat_span_marked_cache_hit() {
    let collector = OtlpCollector::spawn().await.unwrap();
    let tier1 = tier1_with(
        &telemetry(&collector.url(), json!({})),
        &env(&[]),
        options(),
    );
    tier1.record_cache_hit("transforms[0] (azure_llm)");
    tier1
        .start_call("llm.chat", "myresource.openai.azure.com")
        .succeed(200, REQUEST_BODY.as_bytes(), RESPONSE_BODY.as_bytes());
    tier1.shutdown(Duration::from_secs(5)).await;
    let spans = collector.spans();
    let flag = |s: &DecodedSpan| match s.attr("elspeth.cache_hit") {
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::BoolValue(b)) => Some(*b),
        _ => None,
    };
    let hit = spans
        .iter()
        .find(|s| flag(s) == Some(true))
        .expect("a cache-hit span");
    assert_eq!(hit.span.name, "llm.chat");
    assert_eq!(
        hit.str_attr("elspeth.transform"),
        Some("transforms[0] (azure_llm)")
    );
    assert_eq!(hit.str_attr("server.address"), None, "no request was sent");
    let paid = spans
        .iter()
        .find(|s| s.str_attr("server.address").is_some())
        .unwrap();
    assert_eq!(flag(paid), Some(false));
}
