//! Conformance of the Application Insights exporter: the envelopes the mock
//! receives are RemoteDependency items shaped like Microsoft's exporter
//! makes them (as captured from Azure Monitor's OpenTelemetry exporter),
//! with the GenAI fields — and,
//! better than Microsoft's, `error.type` and the HTTP status of a failed
//! call survive (`resultCode`, properties).

mod common;

use std::time::Duration;

use common::*;
use elspeth_core::call::{GenAiSystem, LlmError, LlmErrorKind};
use elspeth_mock::appinsights::AppInsightsMock;
use elspeth_telemetry::GenerationStart;
use elspeth_telemetry::SpanSink;
use elspeth_telemetry::TracingProvider;
use elspeth_telemetry::appinsights::{AppInsightsSettings, ConnectionString, appinsights_exporter};
use serde_json::Value;

fn settings(cs: &str, live: bool) -> AppInsightsSettings {
    AppInsightsSettings {
        connection: ConnectionString::parse(cs).unwrap(),
        live_metrics: live,
    }
}

fn is_duration(s: &str) -> bool {
    // d.hh:mm:ss.fraction (TimeSpan "c" format)
    let Some((days, rest)) = s.split_once('.') else {
        return false;
    };
    let parts: Vec<&str> = rest.split(':').collect();
    days.chars().all(|c| c.is_ascii_digit())
        && parts.len() == 3
        && parts[0].len() == 2
        && parts[1].len() == 2
        && parts[2]
            .split_once('.')
            .is_some_and(|(s, f)| s.len() == 2 && f.len() >= 3)
}

fn find<'a>(envelopes: &'a [Value], name: &str, token: &str) -> &'a Value {
    envelopes
        .iter()
        .find(|e| {
            e["data"]["baseData"]["name"] == name
                && e["data"]["baseData"]["properties"]["elspeth.token_id"] == token
        })
        .unwrap_or_else(|| panic!("no envelope {name} for {token}: {envelopes:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_are_genai_remote_dependencies() {
    let ai = AppInsightsMock::spawn(IKEY).await.unwrap();
    let exporter =
        appinsights_exporter(settings(&ai.connection_string(), false), fast_config()).unwrap();
    let tracer = tracer(exporter.clone(), TracingProvider::AzureAi, true);
    record_ok(&tracer, "tok-1", false);
    record_err(&tracer, "tok-2");
    // A failure without an HTTP answer (timeout).
    let trace = tracer.start_trace(start("tok-3"));
    let req = request(false);
    trace
        .generation(GenerationStart::new(GenAiSystem::OpenRouter, &req))
        .fail(&LlmError::new(
            LlmErrorKind::Timeout,
            "no answer within 30 s",
        ));
    trace.end();
    let summary = exporter.flush(Duration::from_secs(10)).await;
    assert_eq!(
        (
            summary.sent,
            summary.dropped,
            summary.failed,
            summary.pending
        ),
        (6, 0, 0, 0)
    );

    for r in ai.requests() {
        assert_eq!(r.path, "/v2/track");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
    }
    let envelopes = ai.envelopes();
    assert_eq!(envelopes.len(), 6, "{envelopes:#?}");
    for e in &envelopes {
        assert_eq!(e["name"], "Microsoft.ApplicationInsights.RemoteDependency");
        assert_eq!(e["iKey"], IKEY);
        assert_eq!(e["data"]["baseType"], "RemoteDependencyData");
        let b = &e["data"]["baseData"];
        assert_eq!(b["ver"], 2);
        assert!(
            is_duration(b["duration"].as_str().unwrap()),
            "{}",
            b["duration"]
        );
        assert_eq!(b["id"].as_str().unwrap().len(), 16);
        assert_eq!(e["tags"]["ai.operation.id"].as_str().unwrap().len(), 32);
        assert_eq!(e["tags"]["ai.cloud.role"], "elspeth");
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
        // Resource attributes live in tags, not in every item's properties.
        assert!(b["properties"].get("service.name").is_none(), "{b}");
    }

    // The successful GenAI call.
    let ok = find(&envelopes, "chat gpt-4o", "tok-1");
    let root = find(&envelopes, "elspeth.azure_llm", "tok-1");
    let b = &ok["data"]["baseData"];
    assert_eq!(b["type"], "GenAI | az.ai.openai");
    assert_eq!(b["target"], "az.ai.openai");
    assert_eq!(b["resultCode"], "0");
    assert_eq!(b["success"], true);
    let p = &b["properties"];
    for (k, v) in [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.system", "az.ai.openai"),
        ("gen_ai.provider.name", "azure.ai.openai"),
        ("gen_ai.request.model", "gpt-4o"),
        ("gen_ai.response.model", "gpt-4o-2024-08-06"),
        ("gen_ai.response.id", "chatcmpl-1"),
        ("gen_ai.usage.input_tokens", "12"),
        ("gen_ai.usage.output_tokens", "3"),
        ("server.address", "myresource.openai.azure.com"),
        ("elspeth.plugin", "azure_llm"),
        ("elspeth.deployment", "gpt-4o"),
    ] {
        assert_eq!(p[k], v, "{k} in {p}");
    }
    assert!(
        p["gen_ai.response.finish_reasons"]
            .as_str()
            .unwrap()
            .contains("stop")
    );
    assert!(
        p["gen_ai.input.messages"]
            .as_str()
            .unwrap()
            .contains(PROMPT)
    );
    assert!(
        p["gen_ai.output.messages"]
            .as_str()
            .unwrap()
            .contains(REPLY)
    );
    assert!(
        p["elspeth.latency_ms"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .is_ok()
    );
    assert_eq!(ok["tags"]["ai.operation.name"], "chat gpt-4o");
    assert_eq!(
        ok["tags"]["ai.operation.id"],
        root["tags"]["ai.operation.id"]
    );
    assert_eq!(
        ok["tags"]["ai.operation.parentId"],
        root["data"]["baseData"]["id"]
    );
    // The row's root span: an INTERNAL span, InProc like Microsoft's.
    let rb = &root["data"]["baseData"];
    assert_eq!(rb["type"], "InProc");
    assert!(root["tags"].get("ai.operation.parentId").is_none());
    assert!(rb["properties"].get("gen_ai.system").is_none());

    // The HTTP 500: resultCode and error.type survive (Microsoft drops both).
    let failed = &find(&envelopes, "chat gpt-4o", "tok-2")["data"]["baseData"];
    assert_eq!(failed["success"], false);
    assert_eq!(failed["resultCode"], "500");
    assert_eq!(failed["type"], "GenAI | az.ai.openai");
    assert_eq!(failed["properties"]["error.type"], "500");
    assert_eq!(failed["properties"]["http.response.status_code"], "500");
    assert!(failed["properties"].get("gen_ai.output.messages").is_none());

    // The timeout: no HTTP status, resultCode is the error class.
    let timeout = &find(&envelopes, "chat gpt-4o", "tok-3")["data"]["baseData"];
    assert_eq!(timeout["success"], false);
    assert_eq!(timeout["resultCode"], "timeout");
    assert_eq!(timeout["type"], "GenAI | openrouter");
    assert_eq!(timeout["target"], "openrouter");
    assert_eq!(timeout["properties"]["error.type"], "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_success_retries_only_refused_items() {
    let ai = AppInsightsMock::spawn(IKEY).await.unwrap();
    // Item 1 throttled (retried), item 2 refused for good.
    ai.push_partial(vec![(1, 429), (2, 400)]);
    let exporter =
        appinsights_exporter(settings(&ai.connection_string(), false), fast_config()).unwrap();
    let tracer = tracer(exporter.clone(), TracingProvider::AzureAi, false);
    record_ok(&tracer, "tok-1", false);
    record_ok(&tracer, "tok-2", false);
    let summary = exporter.flush(Duration::from_secs(10)).await;
    assert_eq!((summary.sent, summary.failed, summary.pending), (3, 1, 0));
    let requests = ai.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].status, 206);
    let retried: Vec<Value> = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(retried.len(), 1, "only the throttled item is sent again");
    assert_eq!(ai.envelopes().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_metrics_ping_the_live_endpoint() {
    let ai = AppInsightsMock::spawn(IKEY).await.unwrap();
    let exporter =
        appinsights_exporter(settings(&ai.connection_string(), true), fast_config()).unwrap();
    let tracer = tracer(exporter.clone(), TracingProvider::AzureAi, true);
    record_ok(&tracer, "tok-1", false);
    exporter.flush(Duration::from_secs(5)).await;
    // QuickPulse pings every 5 s; wait for the first one (bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while ai.live_requests().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = ai.live_requests();
    assert!(!live.is_empty(), "no live metrics ping");
    assert_eq!(live[0].path, "/QuickPulseService.svc/ping");
    assert!(
        live[0]
            .query
            .as_deref()
            .unwrap_or_default()
            .contains("ikey=")
    );
    exporter.shutdown(Duration::from_secs(2)).await;
}
