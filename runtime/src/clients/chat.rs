//! The OpenAI-compatible chat-completions wire format shared by Azure
//! OpenAI, OpenRouter and Azure Batch lines.

use crate::llm::{
    ChatMessage, Cost, LlmError, LlmErrorKind, LlmRequest, LlmResponse, ResponseFormatRequest,
    Usage,
};
use serde::{Deserialize, Serialize};

use super::send::{Verdict, classify_status, error_detail, truncate};

/// The JSON body of a chat-completions request.
#[derive(Debug, Serialize)]
pub(crate) struct ChatBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<&'a str>,
    pub messages: &'a [ChatMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormatWire<'a>>,
}

/// `{"type": "json_object"}` or `{"type": "json_schema", "json_schema":
/// {"name", "schema", "strict"}}` (the OpenAI shape, which Azure OpenAI and
/// OpenRouter share).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ResponseFormatWire<'a> {
    JsonObject,
    JsonSchema { json_schema: JsonSchemaWire<'a> },
}

/// The `json_schema` of a structured-outputs request.
#[derive(Debug, Serialize)]
pub(crate) struct JsonSchemaWire<'a> {
    pub name: &'a str,
    pub schema: &'a serde_json::Value,
    pub strict: bool,
}

impl<'a> From<&'a ResponseFormatRequest> for ResponseFormatWire<'a> {
    fn from(format: &'a ResponseFormatRequest) -> Self {
        match format {
            ResponseFormatRequest::JsonObject => Self::JsonObject,
            ResponseFormatRequest::JsonSchema(s) => Self::JsonSchema {
                json_schema: JsonSchemaWire {
                    name: &s.name,
                    schema: &s.schema,
                    strict: s.strict,
                },
            },
        }
    }
}

/// Waits for a free slot of a client's concurrency limit.
pub(crate) async fn acquire_slot(
    limiter: &tokio::sync::Semaphore,
) -> Result<tokio::sync::SemaphorePermit<'_>, LlmError> {
    limiter
        .acquire()
        .await
        .map_err(|_| LlmError::new(LlmErrorKind::Cancelled, "client closed"))
}

/// The JSON body of a chat call, encoded once (retries re-send the bytes).
pub(crate) fn encode_chat(
    request: &LlmRequest,
    model: Option<&str>,
) -> Result<bytes::Bytes, LlmError> {
    serde_json::to_vec(&ChatBody::new(request, model))
        .map(bytes::Bytes::from)
        .map_err(|e| {
            LlmError::new(
                LlmErrorKind::Client,
                format!("could not encode the request: {e}"),
            )
        })
}

impl<'a> ChatBody<'a> {
    /// The body for `request`; `model` is sent when the endpoint needs it
    /// (OpenRouter, Batch API lines), not to Azure's per-deployment URL.
    pub(super) fn new(request: &'a LlmRequest, model: Option<&'a str>) -> Self {
        Self {
            model,
            messages: &request.messages,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            response_format: request
                .response_format
                .as_ref()
                .map(ResponseFormatWire::from),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    cost: Option<f64>,
    #[serde(default)]
    prompt_tokens_details: Option<TokenDetails>,
    #[serde(default)]
    completion_tokens_details: Option<TokenDetails>,
}

/// `prompt_tokens_details` / `completion_tokens_details`.
#[derive(Debug, Deserialize)]
struct TokenDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

/// Decides what a chat-completions answer means: a reply, a retryable
/// failure or a permanent one.
pub(crate) fn classify_chat(
    service: &str,
    status: http::StatusCode,
    body: &[u8],
) -> Verdict<LlmResponse> {
    if !status.is_success() {
        return classify_status(service, status, body);
    }
    match parse_completion(service, body) {
        Ok(response) => Verdict::Done(response),
        Err(Embedded(code)) => {
            // An error object inside a 200 (OpenRouter does this when the
            // upstream provider fails): treat it like that HTTP status.
            let status = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::BAD_GATEWAY);
            match classify_status::<LlmResponse>(service, status, body) {
                Verdict::Retry(mut e) | Verdict::Fail(mut e) if e.http_status.is_some() => {
                    e.http_status = Some(200);
                    e.message =
                        e.message
                            .replacen("answered HTTP", "answered HTTP 200 with error", 1);
                    if matches!(
                        e.kind,
                        LlmErrorKind::RateLimited | LlmErrorKind::Server | LlmErrorKind::Timeout
                    ) {
                        Verdict::Retry(e)
                    } else {
                        Verdict::Fail(e)
                    }
                }
                other => other,
            }
        }
        Err(Parse(e)) => Verdict::Fail(e),
    }
}

enum ParseFailure {
    /// A 200 whose body is an `{"error": ...}` object with this code.
    Embedded(u16),
    /// Anything else.
    Parse(LlmError),
}
use ParseFailure::{Embedded, Parse};

fn parse_completion(service: &str, body: &[u8]) -> Result<LlmResponse, ParseFailure> {
    let malformed = |detail: String| {
        Parse(LlmError::new(
            LlmErrorKind::MalformedResponse,
            format!("{service} sent a reply that is not a chat completion: {detail}"),
        ))
    };
    let completion: Completion = serde_json::from_slice(body).map_err(|e| {
        let preview = truncate(String::from_utf8_lossy(body).trim(), 80);
        malformed(format!("{e} (body starts with {preview:?})"))
    })?;
    if completion.choices.is_none() && completion.error.is_some() {
        let code = completion
            .error
            .as_ref()
            .and_then(|e| e.get("code"))
            .and_then(|c| {
                c.as_u64()
                    .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
            })
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (400..600).contains(c))
            .unwrap_or(502);
        return Err(Embedded(code));
    }
    let choice = completion
        .choices
        .and_then(|c| c.into_iter().next())
        .ok_or_else(|| malformed("no `choices`".into()))?;
    let finish_reason = choice.finish_reason;
    if finish_reason.as_deref() == Some("content_filter") {
        return Err(Parse(LlmError::new(
            LlmErrorKind::ContentFilter,
            format!("{service}'s content filter blocked the reply (finish_reason: content_filter)"),
        )));
    }
    let message = choice
        .message
        .ok_or_else(|| malformed("no `message` in the first choice".into()))?;
    let content = match (message.content, message.refusal) {
        (Some(c), _) => c,
        (None, Some(refusal)) => {
            return Err(Parse(LlmError::new(
                LlmErrorKind::ContentFilter,
                format!("the model refused: {}", truncate(&refusal, 200)),
            )));
        }
        (None, None) => return Err(malformed("the first choice has no `content`".into())),
    };
    let cost = completion
        .usage
        .as_ref()
        .and_then(|u| u.cost)
        .filter(|c| c.is_finite() && *c >= 0.0)
        .map(Cost::reported);
    let usage = completion.usage.map(|u| {
        let input = u.prompt_tokens.unwrap_or(0);
        let output = u.completion_tokens.unwrap_or(0);
        Usage {
            input,
            output,
            total: u.total_tokens.unwrap_or(input + output),
            cached_input: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            reasoning: u
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    });
    Ok(LlmResponse {
        content,
        model: completion.model,
        usage,
        finish_reason,
        id: completion.id,
        cost,
    })
}

/// Parses a batch output line's `response.body` (already a JSON value).
pub(crate) fn response_from_value(
    service: &str,
    status: u16,
    body: &serde_json::Value,
) -> Result<LlmResponse, LlmError> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    match classify_chat(service, status, &bytes) {
        Verdict::Done(r) => Ok(r),
        Verdict::Retry(e) | Verdict::Fail(e) => Err(e),
    }
}

/// `(message, code)` of an error object, for batch error lines.
pub(crate) fn describe_error(value: &serde_json::Value) -> (Option<String>, Option<String>) {
    error_detail(&serde_json::to_vec(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn done(v: Verdict<LlmResponse>) -> LlmResponse {
        match v {
            Verdict::Done(r) => r,
            Verdict::Retry(e) => panic!("retry: {e}"),
            Verdict::Fail(e) => panic!("fail: {e}"),
        }
    }

    fn failed(v: Verdict<LlmResponse>) -> (bool, LlmError) {
        match v {
            Verdict::Done(r) => panic!("done: {r:?}"),
            Verdict::Retry(e) => (true, e),
            Verdict::Fail(e) => (false, e),
        }
    }

    #[test]
    fn body_serializes_like_the_api() {
        let mut req = LlmRequest::user("gpt-4o", "hi");
        req.messages.insert(0, ChatMessage::system("be brief"));
        req.temperature = Some(0.2);
        req.response_format = Some(ResponseFormatRequest::JsonObject);
        let v = serde_json::to_value(ChatBody::new(&req, None)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
                "temperature": 0.2,
                "response_format": {"type": "json_object"}
            })
        );
        let schema =
            serde_json::json!({"type": "object", "properties": {"category": {"type": "string"}}});
        req.response_format = Some(ResponseFormatRequest::JsonSchema(
            crate::llm::JsonSchemaRequest {
                name: "ticket".into(),
                schema: std::sync::Arc::new(schema.clone()),
                strict: true,
            },
        ));
        let v = serde_json::to_value(ChatBody::new(&req, Some("gpt-4o"))).unwrap();
        assert_eq!(
            v["response_format"],
            serde_json::json!({"type": "json_schema", "json_schema": {"name": "ticket", "schema": schema, "strict": true}})
        );
        assert_eq!(v["model"], "gpt-4o");
        let v =
            serde_json::to_value(ChatBody::new(&LlmRequest::user("m", "x"), Some("m"))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})
        );
    }

    #[test]
    fn parses_a_completion_with_usage_and_cost() {
        let body = br#"{"id":"gen-1","model":"openai/gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"billing"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"cost":0.00042}}"#;
        let r = done(classify_chat("OpenRouter", StatusCode::OK, body));
        assert_eq!(r.content, "billing");
        assert_eq!(r.id.as_deref(), Some("gen-1"));
        assert_eq!(r.model.as_deref(), Some("openai/gpt-4o-mini"));
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            r.usage,
            Some(Usage {
                input: 12,
                output: 3,
                total: 15,
                ..Default::default()
            })
        );
        assert_eq!(r.cost, Some(Cost::reported(0.00042)));
    }

    #[test]
    fn content_filter_finish_reason_is_an_error() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"content_filter"}]}"#;
        let (retry, e) = failed(classify_chat("Azure OpenAI", StatusCode::OK, body));
        assert!(!retry);
        assert_eq!(e.kind, LlmErrorKind::ContentFilter);
    }

    #[test]
    fn malformed_bodies() {
        let (retry, e) = failed(classify_chat("Azure OpenAI", StatusCode::OK, b"<html>oops"));
        assert!(!retry);
        assert_eq!(e.kind, LlmErrorKind::MalformedResponse);
        assert!(
            e.message
                .starts_with("Azure OpenAI sent a reply that is not a chat completion"),
            "{}",
            e.message
        );
        let (_, e) = failed(classify_chat("A", StatusCode::OK, br#"{"choices":[]}"#));
        assert_eq!(e.kind, LlmErrorKind::MalformedResponse);
        let (_, e) = failed(classify_chat(
            "A",
            StatusCode::OK,
            br#"{"choices":[{"message":{"role":"assistant"}}]}"#,
        ));
        assert_eq!(e.kind, LlmErrorKind::MalformedResponse);
    }

    #[test]
    fn embedded_errors_follow_their_code() {
        let body = br#"{"error":{"code":429,"message":"Rate limit exceeded upstream"}}"#;
        let (retry, e) = failed(classify_chat("OpenRouter", StatusCode::OK, body));
        assert!(retry);
        assert_eq!(e.kind, LlmErrorKind::RateLimited);
        assert_eq!(
            e.message,
            "OpenRouter answered HTTP 200 with error 429: Rate limit exceeded upstream"
        );
        let body = br#"{"error":{"code":400,"message":"bad"}}"#;
        let (retry, e) = failed(classify_chat("OpenRouter", StatusCode::OK, body));
        assert!(!retry);
        assert_eq!(e.kind, LlmErrorKind::Client);
    }
}
