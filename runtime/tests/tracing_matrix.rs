//! The multi-plugin matrix (two transforms, each provider pair: who shares
//! an exporter, who wins Application Insights), from pipeline config
//! through `tracing_settings` and `TracingRegistry` (each test with
//! its own Application Insights slot; `tracing_matrix_global.rs` covers the
//! process-wide one), and graceful degradation of broken configs.

mod tracing_common;

use std::sync::Arc;
use std::time::Duration;

use elspeth_mock::appinsights::AppInsightsMock;
use elspeth_mock::langfuse::LangfuseMock;
use elspeth_schema::config::{TracingConfig, TracingProvider};
use elspeth_telemetry::appinsights::AzureMonitorSlot;
use elspeth_telemetry::{Tracer, TracingRegistry, TransformLabel};
use serde_json::json;
use tracing_common::*;

const OTHER_IKEY: &str = "11111111-2222-3333-4444-555555555555";
const ALL: [TracingProvider; 2] = [TracingProvider::AzureAi, TracingProvider::Langfuse];

fn registry(env: &[(&str, &str)]) -> Registry {
    Registry::new(
        env_of(env),
        TracingRegistry::new()
            .with_azure_slot(Arc::new(AzureMonitorSlot::new()))
            .with_export_config(fast_config()),
    )
}

fn config(v: serde_json::Value) -> TracingConfig {
    serde_json::from_value(v).unwrap()
}

fn label(index: usize, plugin: &str) -> TransformLabel {
    TransformLabel {
        index,
        plugin: plugin.into(),
    }
}

fn tracer_for(reg: &Registry, l: &TransformLabel, c: &TracingConfig) -> Tracer {
    reg.tracer_for(l, Some(c), &ALL).unwrap()
}

fn tokens(envelopes: &[serde_json::Value]) -> Vec<String> {
    let mut t: Vec<String> = envelopes
        .iter()
        .filter_map(|e| {
            e["data"]["baseData"]["properties"]["elspeth.token_id"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    t.sort();
    t.dedup();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_ai_plus_azure_ai_first_one_wins() {
    let logs = logs();
    let a = AppInsightsMock::spawn(IKEY).await.unwrap();
    let b = AppInsightsMock::spawn(OTHER_IKEY).await.unwrap();
    let reg = registry(&[
        ("CS_A", &a.connection_string()),
        ("CS_B", &b.connection_string()),
    ]);
    let ta = label(0, "azure_llm");
    let tb = label(1, "openrouter_llm");
    let tracer_a = tracer_for(
        &reg,
        &ta,
        &config(json!({"provider": "azure_ai", "connection_string": "${CS_A}"})),
    );
    let tracer_b = tracer_for(
        &reg,
        &tb,
        &config(json!({"provider": "azure_ai", "connection_string": "${CS_B}"})),
    );
    assert!(tracer_a.is_enabled() && tracer_b.is_enabled());
    record_ok(&tracer_a, "row-a", false);
    record_ok(&tracer_b, "row-b", false);
    let summaries = reg.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        summaries.len(),
        1,
        "one process-wide exporter: {summaries:?}"
    );
    assert_eq!(summaries[0].sent, 4);
    assert_eq!(
        tokens(&a.envelopes()),
        vec!["row-a", "row-b"],
        "the first connection string wins"
    );
    assert!(b.requests().is_empty(), "the second resource gets nothing");
    let warnings = logs.lines_with(&[
        "WARN",
        "first connection string wins",
        "transforms[0] (azure_llm)",
        "transforms[1] (openrouter_llm)",
    ]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        !logs.text().contains(IKEY) && !logs.text().contains(OTHER_IKEY),
        "no key in any log line"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_ai_twice_with_the_same_connection_string_shares_silently() {
    let logs = logs();
    let a = AppInsightsMock::spawn(IKEY).await.unwrap();
    let reg = registry(&[("CS_SAME", &a.connection_string())]);
    let c = config(json!({"provider": "azure_ai", "connection_string": "${CS_SAME}"}));
    let t0 = tracer_for(&reg, &label(0, "azure_llm_same"), &c);
    let t1 = tracer_for(&reg, &label(1, "azure_llm_same"), &c);
    record_ok(&t0, "s0", false);
    record_ok(&t1, "s1", false);
    let summaries = reg.shutdown(Duration::from_secs(5)).await;
    assert_eq!(summaries.len(), 1);
    assert_eq!(tokens(&a.envelopes()), vec!["s0", "s1"]);
    assert!(
        logs.lines_with(&["first connection string wins", "azure_llm_same"])
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_ai_plus_langfuse_both_work() {
    let a = AppInsightsMock::spawn(IKEY).await.unwrap();
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    let reg = registry(&[
        ("CS", &a.connection_string()),
        ("LF_PK", PK),
        ("LF_SK", SK),
        ("LF_HOST", &lf.url()),
    ]);
    let ta = tracer_for(
        &reg,
        &label(0, "azure_llm"),
        &config(json!({"provider": "azure_ai", "connection_string": "${CS}"})),
    );
    let tb = tracer_for(
        &reg,
        &label(1, "openrouter_llm"),
        &config(
            json!({"provider": "langfuse", "public_key": "${LF_PK}", "secret_key": "${LF_SK}", "host": "${LF_HOST}"}),
        ),
    );
    record_ok(&ta, "to-azure", false);
    record_ok(&tb, "to-langfuse", false);
    let summaries = reg.shutdown(Duration::from_secs(5)).await;
    assert_eq!(summaries.len(), 2);
    assert!(
        summaries.iter().all(|s| s.sent == 2 && s.failed == 0),
        "{summaries:?}"
    );
    assert_eq!(tokens(&a.envelopes()), vec!["to-azure"]);
    let lf_tokens: Vec<String> = lf
        .spans()
        .iter()
        .filter_map(|s| {
            s.str_attr("langfuse.trace.metadata.token_id")
                .map(str::to_string)
        })
        .collect();
    assert_eq!(lf_tokens, vec!["\"to-langfuse\"", "\"to-langfuse\""]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langfuse_plus_langfuse_on_two_hosts_both_work_and_identical_ones_share() {
    let h1 = LangfuseMock::spawn(PK, SK).await.unwrap();
    let h2 = LangfuseMock::spawn("pk-lf-other", "sk-lf-other")
        .await
        .unwrap();
    let reg = registry(&[("SK1", SK), ("SK2", "sk-lf-other")]);
    let c1 = config(
        json!({"provider": "langfuse", "public_key": PK, "secret_key": "${SK1}", "host": h1.url()}),
    );
    let c2 = config(
        json!({"provider": "langfuse", "public_key": "pk-lf-other", "secret_key": "${SK2}", "host": h2.url()}),
    );
    let t0 = tracer_for(&reg, &label(0, "azure_llm"), &c1);
    let t1 = tracer_for(&reg, &label(1, "azure_llm"), &c2);
    let t2 = tracer_for(&reg, &label(2, "azure_llm"), &c1); // same as t0: shares its exporter
    record_ok(&t0, "h1-a", false);
    record_ok(&t1, "h2-a", false);
    record_ok(&t2, "h1-b", false);
    let summaries = reg.shutdown(Duration::from_secs(5)).await;
    assert_eq!(summaries.len(), 2, "{summaries:?}");
    let count = |m: &LangfuseMock, token: &str| {
        m.spans()
            .iter()
            .filter(|s| {
                s.str_attr("langfuse.trace.metadata.token_id") == Some(&format!("\"{token}\""))
            })
            .count()
    };
    assert_eq!(
        (count(&h1, "h1-a"), count(&h1, "h1-b"), count(&h1, "h2-a")),
        (2, 2, 0)
    );
    assert_eq!((count(&h2, "h2-a"), count(&h2, "h1-a")), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_plus_azure_ai_only_b_traces() {
    let a = AppInsightsMock::spawn(IKEY).await.unwrap();
    let reg = registry(&[("CS", &a.connection_string())]);
    let none = reg
        .tracer_for(&label(0, "azure_llm"), Some(&config(json!({}))), &ALL)
        .unwrap();
    let absent = reg.tracer_for(&label(0, "azure_llm"), None, &ALL).unwrap();
    let b = tracer_for(
        &reg,
        &label(1, "azure_llm"),
        &config(json!({"provider": "azure_ai", "connection_string": "${CS}"})),
    );
    assert!(!none.is_enabled() && !absent.is_enabled() && b.is_enabled());
    record_ok(&none, "from-a", false);
    record_ok(&b, "from-b", false);
    reg.shutdown(Duration::from_secs(5)).await;
    assert_eq!(tokens(&a.envelopes()), vec!["from-b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_configs_degrade_to_one_warning_and_no_tracing() {
    let logs = logs();
    let secret_cs = format!("InstrumentationKey={IKEY}-oops;IngestionEndpoint=http://127.0.0.1:9/");
    let reg = registry(&[("BROKEN_CS", &secret_cs), ("LF_SK", SK)]);
    let cases = [
        (
            json!({"provider": "langfuse", "public_key": "${NOT_SET_PK_VAR}", "secret_key": "${LF_SK}"}),
            "NOT_SET_PK_VAR",
        ),
        (
            json!({"provider": "langfuse", "public_key": PK}),
            "langfuse tracing requires secret_key. Use ${LANGFUSE_SECRET_KEY} in YAML.",
        ),
        (
            json!({"provider": "azure_ai"}),
            "azure_ai tracing requires connection_string. Use ${APPLICATIONINSIGHTS_CONNECTION_STRING} in YAML.",
        ),
        (
            json!({"provider": "azure_ai", "connection_string": "${BROKEN_CS}"}),
            "InstrumentationKey in the connection string is not a GUID",
        ),
        (
            json!({"provider": "langfuse", "public_key": PK, "secret_key": "${LF_SK}", "host": "ftp://x"}),
            "must start with http:// or https://",
        ),
    ];
    for (i, (c, expected)) in cases.into_iter().enumerate() {
        let l = label(10 + i, "degrade_plugin");
        let t = reg.tracer_for(&l, Some(&config(c)), &ALL).unwrap();
        assert!(!t.is_enabled(), "case {i}");
        record_ok(&t, "nothing", false); // recording on a disabled tracer is a no-op
        let lines = logs.lines_with(&["WARN", &format!("transforms[{}] (degrade_plugin)", 10 + i)]);
        assert!(
            lines.iter().any(|l| l.contains(expected)),
            "case {i}: {lines:?}"
        );
    }
    assert!(
        !logs.text().contains(IKEY),
        "the connection string's key never reaches a log"
    );
    assert!(
        !logs.text().contains(SK),
        "the secret key never reaches a log"
    );
    // A provider the transform does not accept is an error, not a warning.
    let err = reg
        .tracer_for(
            &label(20, "custom"),
            Some(&config(
                json!({"provider": "azure_ai", "connection_string": "${BROKEN_CS}"}),
            )),
            &[TracingProvider::Langfuse],
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not support tracing provider `azure_ai`"),
        "{err}"
    );
}

#[tokio::test]
async fn no_runtime_problem_on_current_thread_runtime() {
    // A current-thread runtime works too (encoding runs inline).
    let lf = LangfuseMock::spawn(PK, SK).await.unwrap();
    let reg = registry(&[]);
    let t = tracer_for(
        &reg,
        &label(0, "azure_llm"),
        &config(
            json!({"provider": "langfuse", "public_key": PK, "secret_key": SK, "host": lf.url()}),
        ),
    );
    record_ok(&t, "ct", false);
    let s = reg.shutdown(Duration::from_secs(5)).await;
    assert_eq!(s[0].sent, 2);
}
