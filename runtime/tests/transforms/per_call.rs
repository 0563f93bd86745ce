//! The five per-call transforms (`azure_llm`, `openrouter_llm`,
//! `openrouter_batch_llm` and the two multi-query ones), each through the
//! same scenarios: happy path, JSON replies, 429 then success, 500s
//! exhausted, malformed replies, timeouts, content filter.

use std::time::Duration;

use elspeth_mock::chat::{
    TRIGGER_BAD_JSON, TRIGGER_CONTENT_FILTER, TRIGGER_FILTERED_REPLY, TRIGGER_MALFORMED,
};
use elspeth_mock::structured::{NOT_IN_ENUM, TRIGGER_SCHEMA_MISMATCH};
use elspeth_mock::{Fault, FaultPlan};
use serde_json::{Value, json};

use crate::common::{AZURE_KEY, Harness, Mocks, OPENROUTER_KEY, config, value};

const PLUGINS: [&str; 5] = [
    "azure_llm",
    "openrouter_llm",
    "openrouter_batch_llm",
    "azure_multi_query_llm",
    "openrouter_multi_query_llm",
];

fn is_multi(plugin: &str) -> bool {
    plugin.contains("multi_query")
}

/// Options for `plugin`: a prompt over `text` (and a two-query matrix for
/// the multi-query plugins), plus `extra`.
fn options(plugin: &str, extra: Value) -> Value {
    let mut o = if is_multi(plugin) {
        json!({"prompt_template": "Rate {{ text }} for {{ criterion.name }}",
               "queries": {"criterion": [{"name": "accuracy"}, {"name": "clarity"}]}})
    } else {
        json!({"prompt_template": "Classify: {{ text }}"})
    };
    o["max_retries"] = json!(2);
    o["timeout_s"] = json!(5);
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        o[k] = v;
    }
    o
}

fn faults<'a>(mocks: &'a Mocks, plugin: &str) -> &'a FaultPlan {
    if plugin.starts_with("azure") {
        mocks.azure.chat_faults()
    } else {
        mocks.openrouter.faults()
    }
}

fn requests(mocks: &Mocks, plugin: &str) -> u64 {
    if plugin.starts_with("azure") {
        mocks.azure.chat_requests()
    } else {
        mocks.openrouter.requests()
    }
}

async fn harness(mocks: &Mocks, plugin: &str, extra: Value) -> Harness {
    Harness::start(&config(plugin, options(plugin, extra)), mocks.env(), None).await
}

/// The output keys of `plugin` for reply field `field`.
fn keys(plugin: &str, field: &str) -> Vec<String> {
    if is_multi(plugin) {
        vec![format!("accuracy_{field}"), format!("clarity_{field}")]
    } else {
        vec![field.to_string()]
    }
}

#[tokio::test]
async fn happy_path() {
    let mocks = Mocks::start().await;
    for plugin in PLUGINS {
        let h = harness(
            &mocks,
            plugin,
            json!({"system_prompt": "You triage support tickets.", "temperature": 0.2}),
        )
        .await;
        let before = requests(&mocks, plugin);
        let row = h
            .process(
                0,
                json!({"id": 7, "text": "I was charged twice, I want a refund"}),
            )
            .await
            .unwrap();
        let mut expected = json!({"id": 7, "text": "I was charged twice, I want a refund"});
        for k in keys(plugin, "llm_response") {
            expected[k] = json!("billing");
        }
        assert_eq!(value(row), expected, "{plugin}");
        let calls = if is_multi(plugin) { 2 } else { 1 };
        assert_eq!(requests(&mocks, plugin) - before, calls, "{plugin}");
        assert_eq!(h.meter.snapshot().calls, calls, "{plugin}");
        assert!(h.meter.snapshot().tokens_in > 0, "{plugin}");
    }
    // What went over the wire.
    let azure = mocks.azure.chat_bodies();
    let body = azure.last().unwrap();
    assert!(
        body.get("model").is_none(),
        "Azure chat sends the deployment in the URL, not the body"
    );
    assert_eq!(body["temperature"], json!(0.2));
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You triage support tickets."})
    );
    let received = mocks.openrouter.received();
    let last = received.last().unwrap();
    assert_eq!(last.body["model"], "openai/gpt-4o-mini");
    assert_eq!(last.referer.as_deref(), Some("https://example.org/elspeth"));
    assert_eq!(last.title.as_deref(), Some("elspeth tests"));
    // OpenRouter reports cost.
    let h = harness(&mocks, "openrouter_llm", json!({})).await;
    h.process(0, json!({"text": "hello"})).await.unwrap();
    assert!(h.meter.snapshot().cost_usd.is_some_and(|c| c > 0.0));
}

#[tokio::test]
async fn json_replies_become_fields() {
    let mocks = Mocks::start().await;
    for plugin in PLUGINS {
        let h = harness(
            &mocks,
            plugin,
            json!({"response_format": "json", "output_fields": ["category", "priority"],
                   "prompt_template": if is_multi(plugin) { "Triage as JSON ({{ criterion.name }}): {{ text }}" } else { "Triage as JSON: {{ text }}" }}),
        )
        .await;
        let row = value(
            h.process(0, json!({"text": "the app crashes, urgent"}))
                .await
                .unwrap(),
        );
        for k in keys(plugin, "category") {
            assert_eq!(row[&k], "bug", "{plugin} {k}");
        }
        for k in keys(plugin, "priority") {
            assert_eq!(row[&k], "high", "{plugin} {k}");
        }
        assert!(
            row.get("sentiment").is_none() && row.get("llm_response").is_none(),
            "{plugin}: only output_fields are kept: {row}"
        );
        // A reply that is not JSON is a parse error.
        let e = h
            .process(1, json!({"text": format!("{TRIGGER_BAD_JSON} refund")}))
            .await
            .unwrap_err();
        assert_eq!(e.kind, "parse", "{plugin}");
        assert!(
            e.message.contains("the reply is not valid JSON"),
            "{plugin}: {}",
            e.message
        );
    }
    let bodies = mocks.azure.chat_bodies();
    assert_eq!(
        bodies.last().unwrap()["response_format"],
        json!({"type": "json_object"})
    );
}

/// A strict structured-outputs format: category and priority from enums.
fn ticket_format() -> Value {
    json!({"json_schema": {"name": "ticket", "strict": true, "schema": {
        "type": "object",
        "properties": {
            "category": {"type": "string", "enum": ["billing", "bug", "account", "general"]},
            "priority": {"type": "string", "enum": ["low", "medium", "high"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1}
        },
        "required": ["category", "priority", "confidence"],
        "additionalProperties": false
    }}})
}

/// The body of the last request `plugin` sent.
fn last_body(mocks: &Mocks, plugin: &str) -> Value {
    if plugin.starts_with("azure") {
        mocks.azure.chat_bodies().last().cloned().unwrap()
    } else {
        mocks.openrouter.received().last().unwrap().body.clone()
    }
}

#[tokio::test]
async fn json_schema_replies_are_validated_and_become_fields() {
    let mocks = Mocks::start().await;
    let format = ticket_format();
    for plugin in PLUGINS {
        let h = harness(&mocks, plugin, json!({"response_format": format})).await;
        let row = value(
            h.process(0, json!({"text": "the app crashes, urgent"}))
                .await
                .unwrap(),
        );
        for k in keys(plugin, "category") {
            assert_eq!(row[&k], "bug", "{plugin} {k}: {row}");
        }
        for k in keys(plugin, "priority") {
            assert_eq!(row[&k], "high", "{plugin} {k}: {row}");
        }
        for k in keys(plugin, "confidence") {
            let c = row[&k].as_f64().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&c), "{plugin} {k}: {row}");
        }
        // The request carried the schema, in the OpenAI shape.
        let body = last_body(&mocks, plugin);
        assert_eq!(
            body["response_format"],
            json!({"type": "json_schema", "json_schema": {
                "name": "ticket", "schema": format["json_schema"]["schema"], "strict": true}}),
            "{plugin}"
        );
        // A reply that does not match is a row error naming the schema
        // and the first failing JSON path.
        let e = h
            .process(
                1,
                json!({"text": format!("{TRIGGER_SCHEMA_MISMATCH} refund")}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, "schema", "{plugin}: {e}");
        let prefix = if is_multi(plugin) {
            "query `accuracy`: "
        } else {
            ""
        };
        assert_eq!(
            e.message,
            format!(
                "{prefix}the reply does not match the JSON schema `ticket` at /category: \"{NOT_IN_ENUM}\" is not one of \"billing\", \"bug\" or 2 other candidates"
            ),
            "{plugin}"
        );
    }
    // `output_fields` picks properties of the parsed object.
    let h = harness(
        &mocks,
        "azure_llm",
        json!({"response_format": format, "output_fields": ["priority"]}),
    )
    .await;
    let row = value(
        h.process(0, json!({"text": "refund, no rush"}))
            .await
            .unwrap(),
    );
    assert_eq!(row, json!({"text": "refund, no rush", "priority": "low"}));
}

#[tokio::test]
async fn azure_batch_lines_carry_the_schema_and_replies_are_checked() {
    let mocks = Mocks::start().await;
    mocks
        .azure
        .set_batch_timing(elspeth_mock::azure::BatchTiming {
            validating: Duration::from_millis(10),
            in_progress: Duration::from_millis(20),
            finalizing: Duration::from_millis(10),
        });
    let dir = crate::common::tmpdir("batch-json-schema");
    let config = crate::common::config(
        "azure_batch_llm",
        json!({"prompt_template": "Classify: {{ text }}", "batch_size": 10, "poll_interval_s": 0.01,
               "response_format": ticket_format()}),
    );
    let h = Harness::start(&config, mocks.env(), Some(dir.clone())).await;
    let results = h
        .process_batch(vec![
            json!({"text": "I want a refund"}),
            json!({"text": format!("{TRIGGER_SCHEMA_MISMATCH} the app crashes")}),
        ])
        .await;
    let ok = results[0].as_ref().unwrap();
    assert_eq!(
        (ok["category"].as_str(), ok["priority"].as_str()),
        (Some("billing"), Some("medium"))
    );
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(e.kind, "schema", "{e}");
    assert!(
        e.message
            .starts_with("the reply does not match the JSON schema `ticket` at /category: "),
        "{}",
        e.message
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn azure_refuses_json_schema_on_an_old_api_version() {
    let mocks = Mocks::start().await;
    let h = harness(
        &mocks,
        "azure_llm",
        json!({"response_format": ticket_format(), "api_version": "2024-06-01"}),
    )
    .await;
    let e = h.process(0, json!({"text": "refund"})).await.unwrap_err();
    assert_eq!((e.kind.as_str(), e.http_status), ("llm", Some(400)), "{e}");
    assert!(
        e.message
            .contains("json_schema is enabled only for api versions 2024-08-01-preview and later"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn rate_limited_then_success() {
    let mocks = Mocks::start().await;
    for plugin in PLUGINS {
        let h = harness(&mocks, plugin, json!({})).await;
        let before = requests(&mocks, plugin);
        faults(&mocks, plugin).push(Fault::Status {
            code: 429,
            retry_after: Some(0.01),
        });
        let row = h.process(0, json!({"text": "refund"})).await.unwrap();
        for k in keys(plugin, "llm_response") {
            assert_eq!(row[&k], "billing", "{plugin}");
        }
        let calls = if is_multi(plugin) { 3 } else { 2 };
        assert_eq!(
            requests(&mocks, plugin) - before,
            calls,
            "{plugin}: one retry"
        );
    }
}

#[tokio::test]
async fn server_errors_exhausted() {
    let mocks = Mocks::start().await;
    for plugin in PLUGINS {
        let h = harness(&mocks, plugin, json!({"max_retries": 2})).await;
        let before = requests(&mocks, plugin);
        faults(&mocks, plugin).set_default(Some(Fault::status(500)));
        let e = h.process(0, json!({"text": "refund"})).await.unwrap_err();
        faults(&mocks, plugin).clear();
        assert_eq!(e.kind, "llm", "{plugin}");
        assert_eq!(e.http_status, Some(500), "{plugin}");
        let prefix = if is_multi(plugin) {
            "query `accuracy`: "
        } else {
            ""
        };
        let service = if plugin.starts_with("azure") {
            "Azure OpenAI"
        } else {
            "OpenRouter"
        };
        assert_eq!(
            e.message,
            format!("{prefix}{service} answered HTTP 500: mock fault: HTTP 500 (after 3 attempts)"),
            "{plugin}"
        );
        let calls = if is_multi(plugin) { 6 } else { 3 };
        assert_eq!(
            requests(&mocks, plugin) - before,
            calls,
            "{plugin}: 1 + max_retries attempts per call"
        );
        assert_eq!(h.meter.snapshot().failed_calls, calls / 3, "{plugin}");
    }
}

#[tokio::test]
async fn malformed_replies() {
    let mocks = Mocks::start().await;
    for plugin in PLUGINS {
        let h = harness(&mocks, plugin, json!({})).await;
        let before = requests(&mocks, plugin);
        let e = h
            .process(0, json!({"text": format!("{TRIGGER_MALFORMED} please")}))
            .await
            .unwrap_err();
        assert_eq!(e.kind, "parse", "{plugin}");
        assert!(
            e.message
                .contains("sent a reply that is not a chat completion"),
            "{plugin}: {}",
            e.message
        );
        assert!(
            e.message.contains("<html>"),
            "{plugin}: the message shows what came back: {}",
            e.message
        );
        let calls = if is_multi(plugin) { 2 } else { 1 };
        assert_eq!(
            requests(&mocks, plugin) - before,
            calls,
            "{plugin}: a malformed reply is not retried"
        );
    }
}

#[tokio::test]
async fn timeouts() {
    let mocks = Mocks::start().await;
    for plugin in PLUGINS {
        // One slow answer: timed out, retried, then answered.
        let h = harness(&mocks, plugin, json!({"timeout_s": 0.15, "max_retries": 1})).await;
        let before = requests(&mocks, plugin);
        faults(&mocks, plugin).push(Fault::Delay(Duration::from_millis(800)));
        let row = h.process(0, json!({"text": "refund"})).await.unwrap();
        assert_eq!(row[&keys(plugin, "llm_response")[0]], "billing", "{plugin}");
        let calls = if is_multi(plugin) { 3 } else { 2 };
        assert_eq!(requests(&mocks, plugin) - before, calls, "{plugin}");
        // Always slow: the row fails with a timeout.
        faults(&mocks, plugin).set_default(Some(Fault::Delay(Duration::from_millis(800))));
        let e = h.process(1, json!({"text": "refund"})).await.unwrap_err();
        faults(&mocks, plugin).clear();
        assert_eq!(e.kind, "llm", "{plugin}");
        assert_eq!(e.http_status, None, "{plugin}");
        assert!(
            e.message
                .ends_with("did not answer within 0.15 s (timeout_s) (after 2 attempts)"),
            "{plugin}: {}",
            e.message
        );
    }
}

#[tokio::test]
async fn content_filter() {
    let mocks = Mocks::start().await;
    for plugin in PLUGINS {
        let h = harness(&mocks, plugin, json!({})).await;
        let before = requests(&mocks, plugin);
        let e = h
            .process(
                0,
                json!({"text": format!("{TRIGGER_CONTENT_FILTER} violent text")}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, "content_filter", "{plugin}: {}", e.message);
        let status = if plugin.starts_with("azure") {
            400
        } else {
            403
        };
        assert_eq!(e.http_status, Some(status), "{plugin}");
        let calls = if is_multi(plugin) { 2 } else { 1 };
        assert_eq!(
            requests(&mocks, plugin) - before,
            calls,
            "{plugin}: a content-filter answer is not retried"
        );
        // The prompt passed, the reply was filtered.
        let e = h
            .process(1, json!({"text": format!("{TRIGGER_FILTERED_REPLY} text")}))
            .await
            .unwrap_err();
        assert_eq!(e.kind, "content_filter", "{plugin}");
        assert!(
            e.message.contains("finish_reason: content_filter"),
            "{plugin}: {}",
            e.message
        );
    }
}

#[tokio::test]
async fn template_errors_make_no_call() {
    let mocks = Mocks::start().await;
    for plugin in PLUGINS {
        let h = harness(&mocks, plugin, json!({})).await;
        let before = requests(&mocks, plugin);
        let e = h
            .process(0, json!({"body": "no text field"}))
            .await
            .unwrap_err();
        assert_eq!(e.kind, "template", "{plugin}");
        let prefix = if is_multi(plugin) {
            "query `accuracy`: "
        } else {
            ""
        };
        assert_eq!(
            e.message,
            format!(
                "{prefix}prompt_template uses `{{{{ text }}}}` but the row has no field `text`"
            )
        );
        assert_eq!(requests(&mocks, plugin), before, "{plugin}");
    }
}

#[tokio::test]
async fn wrong_key_fails_without_leaking_it() {
    let mocks = Mocks::start().await;
    for plugin in PLUGINS {
        let mut env = mocks.env();
        let wrong = "sk-wrong-key-that-must-not-leak";
        env.insert("AZURE_OPENAI_KEY".into(), wrong.into());
        env.insert("OPENROUTER_API_KEY".into(), wrong.into());
        let h = Harness::start(&config(plugin, options(plugin, json!({}))), env, None).await;
        let e = h.process(0, json!({"text": "refund"})).await.unwrap_err();
        assert_eq!(e.http_status, Some(401), "{plugin}");
        assert!(
            e.message.contains("(check the API key)"),
            "{plugin}: {}",
            e.message
        );
        assert!(!format!("{e:?}").contains(wrong), "{plugin}");
        assert!(
            !format!("{e:?}").contains(AZURE_KEY) && !format!("{e:?}").contains(OPENROUTER_KEY)
        );
    }
}

#[tokio::test]
async fn unresolved_variables_fail_on_start() {
    let mocks = Mocks::start().await;
    for plugin in PLUGINS {
        let mut env = mocks.env();
        env.remove("AZURE_OPENAI_ENDPOINT");
        env.remove("OPENROUTER_API_KEY");
        let Err(e) =
            Harness::try_start(&config(plugin, options(plugin, json!({}))), env, None).await
        else {
            panic!("{plugin} should not start");
        };
        let var = if plugin.starts_with("azure") {
            "endpoint: environment variable `AZURE_OPENAI_ENDPOINT`"
        } else {
            "api_key: environment variable `OPENROUTER_API_KEY`"
        };
        assert!(
            e.to_string()
                .starts_with(&format!("transforms[0] ({plugin}): {var} is not set")),
            "{e}"
        );
    }
}
