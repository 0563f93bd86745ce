//! The mocks accept what the real services accept, and keep refusing what
//! they refuse: driven with the request shapes of the official exporters.

use base64::Engine;
use elspeth_mock::appinsights::AppInsightsMock;
use elspeth_mock::langfuse::LangfuseMock;
use serde_json::Value;

const PK: &str = "pk-lf-test";
const SK: &str = "sk-lf-test";

fn client() -> reqwest::Client {
    elspeth_core::http::install_crypto_provider();
    reqwest::Client::new()
}

fn basic(pk: &str, sk: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{pk}:{sk}"));
    format!("Basic {token}")
}

/// What Microsoft's Azure Monitor exporter posted, as recorded.
fn exporter_requests() -> Vec<Value> {
    let text = include_str!("fixtures/appinsights_exporter_requests.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["requests"].as_array().unwrap().clone()
}

/// Posts `envelopes` (a JSON array) to an Application Insights track URL.
async fn track(
    client: &reqwest::Client,
    url: String,
    envelopes: &impl serde::Serialize,
) -> reqwest::Response {
    client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(envelopes).unwrap())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn app_insights_accepts_the_exporters_envelopes_on_the_double_slash_path() {
    let mock = AppInsightsMock::spawn("00000000-0000-0000-0000-000000000000")
        .await
        .unwrap();
    let client = client();
    let base = mock.url().trim_end_matches('/').to_string();
    let mut sent = 0;
    // An `IngestionEndpoint` ending in `/` gives `//v2.1/track`; the
    // recorded `/v2.1/track` and the older `/v2/track` stay accepted.
    for (request, path) in
        exporter_requests()
            .iter()
            .zip(["//v2.1/track", "/v2.1/track", "//v2/track"])
    {
        let envelopes = request["envelopes"].as_array().unwrap();
        let answer = track(&client, format!("{base}{path}"), envelopes).await;
        assert_eq!(
            answer.status(),
            200,
            "{path}: {}",
            answer.text().await.unwrap()
        );
        sent += envelopes.len();
        assert_eq!(mock.envelopes().len(), sent, "{path}");
    }
    // A wrong instrumentation key is still refused, on either path.
    let mut wrong = exporter_requests()[0]["envelopes"].clone();
    for e in wrong.as_array_mut().unwrap() {
        e["iKey"] = Value::from("11111111-1111-1111-1111-111111111111");
    }
    let answer = track(&client, format!("{base}//v2.1/track"), &wrong).await;
    assert_ne!(answer.status(), 200);
    assert_eq!(
        mock.envelopes().len(),
        sent,
        "refused envelopes are not kept"
    );
}

/// One span as OTLP/JSON, written by hand from the OTLP encoding rules
/// (lowerCamelCase names, hex ids, 64-bit integers as strings, enums as
/// numbers), the way an OpenTelemetry exporter with `http/json` sends it.
const OTLP_JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"plain-otel"}}]},
  "scopeSpans":[{"scope":{"name":"manual"},"spans":[{
    "traceId":"5b8efff798038103d269b633813fc60c",
    "spanId":"eee19b7ec3c1b174",
    "name":"chat gpt-4o",
    "kind":3,
    "startTimeUnixNano":"1544712660000000000",
    "endTimeUnixNano":1544712661000000000,
    "attributes":[{"key":"gen_ai.usage.input_tokens","value":{"intValue":"12"}}]
  }]}]}]}"#;

async fn post(
    url: &str,
    auth: &str,
    content_type: &str,
    extra: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::StatusCode {
    let mut request = client()
        .post(format!(
            "{}/api/public/otel/v1/traces",
            url.trim_end_matches('/')
        ))
        .header("authorization", auth)
        .header("content-type", content_type);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.body(body).send().await.unwrap().status()
}

#[tokio::test]
async fn langfuse_accepts_otlp_json_and_otlp_without_its_own_headers() {
    let mock = LangfuseMock::spawn(PK, SK).await.unwrap();
    let url = mock.url();
    let auth = basic(PK, SK);

    // OTLP/JSON from a plain OpenTelemetry exporter: no x-langfuse headers.
    let status = post(&url, &auth, "application/json", &[], OTLP_JSON.into()).await;
    assert_eq!(status, 200);
    let spans = mock.spans();
    assert_eq!(spans.len(), 1);
    let span = &spans[0].span;
    assert_eq!(span.name, "chat gpt-4o");
    assert_eq!(
        span.trace_id,
        [
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
            0xc6, 0x0c
        ]
    );
    assert_eq!(
        span.end_time_unix_nano - span.start_time_unix_nano,
        1_000_000_000
    );

    // The same request as protobuf, still without the optional headers.
    let request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_str(OTLP_JSON).unwrap();
    let body = prost::Message::encode_to_vec(&request);
    let status = post(&url, &auth, "application/x-protobuf", &[], body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(mock.span_count(), 2);

    // With the SDK's headers (as the Python SDK sends them) it is accepted too.
    let sdk = [
        ("x-langfuse-sdk-name", "python"),
        ("x-langfuse-sdk-version", "5.0.4"),
        ("x-langfuse-public-key", PK),
    ];
    assert_eq!(
        post(&url, &auth, "application/x-protobuf", &sdk, body.clone()).await,
        200
    );
    assert_eq!(mock.span_count(), 3);

    // What the real route refuses stays refused, and is not stored.
    let wrong = basic(PK, "sk-lf-wrong");
    assert_eq!(
        post(&url, &wrong, "application/json", &[], OTLP_JSON.into()).await,
        401
    );
    let other_key = [("x-langfuse-public-key", "pk-lf-other")];
    assert_eq!(
        post(&url, &auth, "application/x-protobuf", &other_key, body).await,
        401
    );
    assert_eq!(
        post(&url, &auth, "text/plain", &[], OTLP_JSON.into()).await,
        400
    );
    assert_eq!(
        post(&url, &auth, "application/json", &[], b"{not json".to_vec()).await,
        400
    );
    assert_eq!(mock.span_count(), 3);

    // A long-running mock keeps the last requests only; the count still
    // counts every accepted span.
    mock.keep_last(2);
    for _ in 0..3 {
        assert_eq!(
            post(&url, &auth, "application/json", &[], OTLP_JSON.into()).await,
            200
        );
    }
    assert_eq!(mock.requests().len(), 2);
    assert_eq!(mock.export_requests().len(), 2);
    assert_eq!(mock.spans().len(), 2);
    assert_eq!(mock.span_count(), 6);
}

#[tokio::test]
async fn a_long_running_app_insights_or_collector_keeps_the_last_items_and_counts_all() {
    use elspeth_mock::otlp::OtlpCollector;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    let client = client();
    // Application Insights: the exporter's requests, three times over.
    let ai = AppInsightsMock::spawn("00000000-0000-0000-0000-000000000000")
        .await
        .unwrap();
    ai.keep_last(2);
    let base = ai.url().trim_end_matches('/').to_string();
    let mut dependencies = 0;
    for _ in 0..3 {
        for request in exporter_requests() {
            let envelopes = request["envelopes"].as_array().unwrap();
            dependencies += envelopes
                .iter()
                .filter(|e| e["data"]["baseType"] == "RemoteDependencyData")
                .count();
            let answer = track(&client, format!("{base}/v2.1/track"), envelopes).await;
            assert_eq!(answer.status(), 200);
        }
    }
    assert!(dependencies > 2, "the fixture has dependencies");
    assert_eq!(ai.requests().len(), 2);
    assert_eq!(ai.envelopes().len(), 2);
    assert_eq!(ai.dependency_count(), dependencies);

    // The OTLP collector: five requests of two spans each.
    let collector = OtlpCollector::spawn().await.unwrap();
    collector.keep_last(3);
    let span = |i: u8| Span {
        trace_id: vec![i; 16],
        span_id: vec![i; 8],
        name: format!("span {i}"),
        ..Default::default()
    };
    for i in 0..5u8 {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span(2 * i + 1), span(2 * i + 2)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let answer = client
            .post(format!(
                "{}/v1/traces",
                collector.url().trim_end_matches('/')
            ))
            .header("content-type", "application/x-protobuf")
            .body(request.encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    assert_eq!(collector.requests().len(), 3);
    let names: Vec<String> = collector.spans().into_iter().map(|s| s.span.name).collect();
    assert_eq!(
        names,
        ["span 5", "span 6", "span 7", "span 8", "span 9", "span 10"]
    );
    assert_eq!(collector.span_count(), 10);
}
