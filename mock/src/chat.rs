//! The reply engine shared by the Azure OpenAI and OpenRouter mocks:
//! deterministic chat completions derived from the prompt.
//!
//! - A text reply is a ticket category found by keyword (`billing`, `bug`,
//!   `account`, `feature`, else `general`); when the prompt starts with
//!   `Write` it is a one-sentence reply to the ticket instead.
//! - With `response_format: {"type": "json_object"}` the reply is a JSON
//!   object. Its keys are the ones the prompt names after `keys:` or
//!   `fields:` (e.g. `Reply in JSON with keys: score, rationale`), else
//!   `category`, `priority`, `sentiment`, `summary`. Known keys get
//!   meaningful values (`category`, `priority`, `sentiment`, `score` 1–5),
//!   others a short string.
//! - With `response_format: {"type": "json_schema", ...}` (structured
//!   outputs) the reply is an object built from the schema
//!   ([`crate::structured`]); a strict schema that breaks strict mode's
//!   rules is refused with HTTP 400, as the API does.
//! - Trigger words in the prompt script failures per request:
//!   `MOCK_CONTENT_FILTER` (HTTP 400 `content_filter`), `MOCK_FILTERED_REPLY`
//!   (200 with `finish_reason: content_filter`), `MOCK_MALFORMED` (200 with a
//!   body that is not JSON), `MOCK_BAD_JSON` (a json-mode reply that is not
//!   JSON), `MOCK_LINE_FAIL` (a batch line that fails with `server_error`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::response::Response;
use serde_json::{Value, json};

use crate::server::{Fault, FaultPlan, broken_response, status_response};
use crate::structured::{self, FormatError, JsonSchemaFormat};

/// Trigger: answer HTTP 400 with an Azure `content_filter` error.
pub const TRIGGER_CONTENT_FILTER: &str = "MOCK_CONTENT_FILTER";
/// Trigger: answer 200 with `finish_reason: content_filter` and no content.
pub const TRIGGER_FILTERED_REPLY: &str = "MOCK_FILTERED_REPLY";
/// Trigger: answer 200 with a body that is not JSON.
pub const TRIGGER_MALFORMED: &str = "MOCK_MALFORMED";
/// Trigger: a json-mode reply whose content is not JSON.
pub const TRIGGER_BAD_JSON: &str = "MOCK_BAD_JSON";
/// Trigger: a batch line that fails with `server_error` (error file).
pub const TRIGGER_LINE_FAIL: &str = "MOCK_LINE_FAIL";

/// What the engine decided for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 200 with this chat-completion body.
    Completion(Value),
    /// An HTTP error status with a JSON error body.
    Error(u16, Value),
    /// 200 with this raw (non-JSON) body.
    Raw(&'static str),
}

/// A parsed chat request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// All message contents joined (for token counts).
    pub all_text: String,
    /// The last user message.
    pub prompt: String,
    /// `response_format.type == json_object`.
    pub json: bool,
    /// `response_format.type == json_schema`: the schema the reply follows.
    pub json_schema: Option<JsonSchemaFormat>,
    /// `model`, when sent.
    pub model: Option<String>,
    /// The whole body, parsed.
    pub body: Value,
}

/// Why a chat-completions body is refused (HTTP 400); the messages are the
/// API's.
#[derive(Debug, thiserror::Error)]
pub enum ChatRequestError {
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// `messages` is missing or empty.
    #[error("'messages' is a required property")]
    NoMessages,
    /// A message has a role the API does not know.
    #[error("invalid role `{0}`")]
    Role(String),
    /// No message is from the user.
    #[error("no user message")]
    NoUserMessage,
    /// `json_object` mode, but no message says "json".
    #[error(
        "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'."
    )]
    JsonModeWithoutJson,
    /// A `response_format` the API refuses.
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl ChatRequestError {
    /// The OpenAI-style error body to answer with.
    pub fn body(&self) -> Value {
        error_body("invalid_request_error", &self.to_string())
    }
}

impl ChatRequest {
    /// Reads a chat-completions body.
    pub fn parse(body: &[u8]) -> Result<Self, ChatRequestError> {
        let body: Value = serde_json::from_slice(body).map_err(ChatRequestError::Json)?;
        let v = &body;
        let messages = v
            .get("messages")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
            .ok_or(ChatRequestError::NoMessages)?;
        let mut all_text = String::new();
        let mut prompt = None;
        for m in messages {
            let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
            if !matches!(role, "system" | "user" | "assistant" | "developer" | "tool") {
                return Err(ChatRequestError::Role(role.to_string()));
            }
            let content = m.get("content").and_then(Value::as_str).unwrap_or_default();
            all_text.push_str(content);
            all_text.push('\n');
            if role == "user" {
                prompt = Some(content.to_string());
            }
        }
        let prompt = prompt.ok_or(ChatRequestError::NoUserMessage)?;
        let json =
            v.pointer("/response_format/type").and_then(Value::as_str) == Some("json_object");
        if json && !all_text.to_lowercase().contains("json") {
            // The real API refuses json_object mode when no message says "json".
            return Err(ChatRequestError::JsonModeWithoutJson);
        }
        let json_schema = structured::parse(v)?;
        let model = v.get("model").and_then(Value::as_str).map(str::to_string);
        Ok(Self {
            all_text,
            prompt,
            json,
            json_schema,
            model,
            body,
        })
    }
}

/// An OpenAI-style error body.
pub fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "type": "invalid_request_error", "param": null}})
}

/// Azure's content-filter error body (HTTP 400).
pub fn content_filter_body() -> Value {
    json!({"error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
        "type": null, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
            "hate": {"filtered": false, "severity": "safe"},
            "self_harm": {"filtered": false, "severity": "safe"},
            "sexual": {"filtered": false, "severity": "safe"},
            "violence": {"filtered": true, "severity": "high"}}}
    }})
}

/// Rough token count (~4 characters per token, at least 1 for any text).
pub fn tokens(text: &str) -> u64 {
    let chars = text.chars().count() as u64;
    if chars == 0 { 0 } else { chars.div_ceil(4) }
}

/// The ticket category of `text`, by keyword.
pub fn category(text: &str) -> &'static str {
    let t = text.to_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if any(&[
        "refund",
        "invoice",
        "charge",
        "billing",
        "payment",
        "price",
        "subscription",
    ]) {
        "billing"
    } else if any(&[
        "crash",
        "error",
        "bug",
        "broken",
        "exception",
        "fails",
        "not working",
    ]) {
        "bug"
    } else if any(&["password", "login", "log in", "sign in", "account", "2fa"]) {
        "account"
    } else if any(&["feature", "would be nice", "suggest", "add support", "wish"]) {
        "feature"
    } else {
        "general"
    }
}

/// The priority of `text`, by keyword.
pub fn priority(text: &str) -> &'static str {
    let t = text.to_lowercase();
    if [
        "urgent",
        "asap",
        "immediately",
        "outage",
        " down",
        "cannot",
        "can't",
    ]
    .iter()
    .any(|w| t.contains(w))
    {
        "high"
    } else if ["no rush", "whenever", "minor", "when you can"]
        .iter()
        .any(|w| t.contains(w))
    {
        "low"
    } else {
        "medium"
    }
}

/// The sentiment of `text`, by keyword.
pub fn sentiment(text: &str) -> &'static str {
    let t = text.to_lowercase();
    if [
        "angry",
        "terrible",
        "awful",
        "unacceptable",
        "worst",
        "furious",
    ]
    .iter()
    .any(|w| t.contains(w))
    {
        "negative"
    } else if ["thanks", "thank you", "great", "love", "awesome"]
        .iter()
        .any(|w| t.contains(w))
    {
        "positive"
    } else {
        "neutral"
    }
}

/// A stable 1–5 score for `text`.
pub fn score(text: &str) -> u64 {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    h % 5 + 1
}

/// The JSON keys a prompt asks for after `keys:` / `fields:`.
/// A mock summary: the prompt's last 8 words.
pub fn summary(prompt: &str) -> String {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    words[words.len().saturating_sub(8)..].join(" ")
}

fn requested_keys(prompt: &str) -> Option<Vec<String>> {
    let lower = prompt.to_lowercase();
    let at = ["json keys:", "keys:", "fields:"]
        .iter()
        .filter_map(|m| lower.find(m).map(|i| i + m.len()))
        .min()?;
    let rest = &prompt[at..];
    let end = rest.find(['\n', '.']).unwrap_or(rest.len());
    let keys: Vec<String> = rest[..end]
        .split([',', ' '])
        .map(|k| k.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
        .filter(|k| !k.is_empty() && *k != "and")
        .map(str::to_string)
        .collect();
    (!keys.is_empty()).then_some(keys)
}

/// The reply content for a request.
pub fn content(request: &ChatRequest) -> String {
    let prompt = &request.prompt;
    if let Some(format) = &request.json_schema {
        return structured::content(format, prompt);
    }
    if !request.json {
        if prompt.trim_start().to_lowercase().starts_with("write") {
            return format!(
                "Thanks for reaching out about this {} issue; we are on it and will update you shortly.",
                category(prompt)
            );
        }
        return category(prompt).to_string();
    }
    if prompt.contains(TRIGGER_BAD_JSON) {
        return "Sure! The category is billing.".into();
    }
    let keys = requested_keys(prompt).unwrap_or_else(|| {
        ["category", "priority", "sentiment", "summary"]
            .map(String::from)
            .to_vec()
    });
    let mut obj = serde_json::Map::new();
    for key in keys {
        let value = match key.as_str() {
            "category" => json!(category(prompt)),
            "priority" => json!(priority(prompt)),
            "sentiment" => json!(sentiment(prompt)),
            k if k.contains("score") || k == "rating" => json!(score(prompt)),
            "summary" => json!(summary(prompt)),
            other => json!(format!("mock {other}")),
        };
        obj.insert(key, value);
    }
    Value::Object(obj).to_string()
}

/// Decides the answer to one request: a trigger's failure or a completion
/// built by `completion(content, usage)`.
pub fn answer(
    request: &ChatRequest,
    completion: impl FnOnce(Option<String>, Value) -> Value,
) -> Outcome {
    let prompt = &request.prompt;
    if prompt.contains(TRIGGER_CONTENT_FILTER) {
        return Outcome::Error(400, content_filter_body());
    }
    if prompt.contains(TRIGGER_MALFORMED) {
        return Outcome::Raw("<html><body>502 Bad Gateway</body></html>");
    }
    let (text, finish) = if prompt.contains(TRIGGER_FILTERED_REPLY) {
        (None, "content_filter")
    } else {
        (Some(content(request)), "stop")
    };
    let input = tokens(&request.all_text);
    let output = text.as_deref().map(tokens).unwrap_or(0);
    let usage = json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output});
    let mut body = completion(text, usage);
    if let Some(choice) = body.pointer_mut("/choices/0") {
        choice["finish_reason"] = json!(finish);
    }
    Outcome::Completion(body)
}

/// Latency of the normal answers of a mock LLM endpoint, as served.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencyStats {
    /// Normal answers served.
    pub answers: u64,
    /// Mean time from the request's arrival to its answer.
    pub mean: Duration,
}

/// Applies a [`FaultPlan`] to LLM requests with an accurate latency.
///
/// Tokio's timers fire up to a millisecond or more late (millisecond ticks,
/// rounded up, plus wake-up time), so a plain `sleep(20 ms)` answers after
/// ~21 ms. The pacer learns that oversleep (a moving average) and starts
/// each sleep that much earlier, so answers come, on average, after the
/// configured latency; [`Pacer::stats`] reports what was actually served.
#[derive(Debug, Default)]
pub struct Pacer {
    oversleep_ns: AtomicU64,
    answers: AtomicU64,
    total_ns: AtomicU64,
}

impl Pacer {
    /// The next fault of `plan` for a request that arrived at `arrival`:
    /// `Some(response)` to answer with instead, `None` to answer normally
    /// (after the plan's latency, plus a scripted delay).
    pub async fn apply(&self, plan: &FaultPlan, arrival: Instant) -> Option<Response> {
        let wait = match plan.next() {
            Fault::None => plan.latency(),
            Fault::Delay(d) => d + plan.latency(),
            Fault::Status { code, retry_after } => return Some(status_response(code, retry_after)),
            Fault::DropConnection => return Some(broken_response()),
        };
        if !wait.is_zero() {
            let target = arrival + wait;
            let early = target
                .checked_sub(Duration::from_nanos(
                    self.oversleep_ns.load(Ordering::Relaxed),
                ))
                .unwrap_or(target);
            tokio::time::sleep_until(early.into()).await;
            let late = Instant::now().saturating_duration_since(early).as_nanos() as u64;
            // Moving average (1/8 weight), updated without a lock.
            let _ = self
                .oversleep_ns
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                    Some(old - old / 8 + late / 8)
                });
        }
        self.answers.fetch_add(1, Ordering::Relaxed);
        self.total_ns
            .fetch_add(arrival.elapsed().as_nanos() as u64, Ordering::Relaxed);
        None
    }

    /// What was served so far.
    pub fn stats(&self) -> LatencyStats {
        let answers = self.answers.load(Ordering::Relaxed);
        let total = self.total_ns.load(Ordering::Relaxed);
        LatencyStats {
            answers,
            mean: Duration::from_nanos(total.checked_div(answers).unwrap_or(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(prompt: &str, json: bool) -> ChatRequest {
        ChatRequest {
            all_text: prompt.into(),
            prompt: prompt.into(),
            json,
            json_schema: None,
            model: None,
            body: Value::Null,
        }
    }

    #[tokio::test]
    async fn pacer_serves_the_configured_latency_on_average() {
        let pacer = Pacer::default();
        let plan = FaultPlan::new();
        plan.set_latency(Duration::from_millis(5));
        for _ in 0..40 {
            assert!(pacer.apply(&plan, Instant::now()).await.is_none());
        }
        let stats = pacer.stats();
        assert_eq!(stats.answers, 40);
        assert!(stats.mean >= Duration::from_micros(4500), "{stats:?}");
        assert!(stats.mean <= Duration::from_micros(7000), "{stats:?}");
        plan.push(Fault::status(429));
        assert!(pacer.apply(&plan, Instant::now()).await.is_some());
        assert_eq!(pacer.stats().answers, 40, "faulted answers are not counted");
    }

    #[test]
    fn classification_is_deterministic() {
        assert_eq!(content(&req("Classify: I want a refund", false)), "billing");
        assert_eq!(
            content(&req("Classify: app crashes on start", false)),
            "bug"
        );
        assert_eq!(content(&req("hello", false)), "general");
        assert_eq!(
            content(&req("Write a reply to: refund", false)),
            "Thanks for reaching out about this billing issue; we are on it and will update you shortly."
        );
        assert_eq!(priority("site is down, urgent"), "high");
    }

    #[test]
    fn json_keys_follow_the_prompt() {
        let v: Value = serde_json::from_str(&content(&req(
            "Rate it. Reply in JSON with keys: score, rationale.",
            true,
        )))
        .unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["score", "rationale"]);
        assert!((1..=5).contains(&v["score"].as_u64().unwrap()));
        let v: Value =
            serde_json::from_str(&content(&req("Triage as JSON: refund asap", true))).unwrap();
        assert_eq!(v["category"], "billing");
        assert_eq!(v["priority"], "high");
    }

    #[test]
    fn parse_checks_the_body() {
        assert!(ChatRequest::parse(b"{").is_err());
        assert!(ChatRequest::parse(br#"{"messages":[]}"#).is_err());
        let e = ChatRequest::parse(br#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"#).unwrap_err().body();
        assert_eq!(e["error"]["code"], "invalid_request_error");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("must contain the word 'json'")
        );
        let r = ChatRequest::parse(br#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"p"}]}"#).unwrap();
        assert_eq!(
            (r.prompt.as_str(), r.model.as_deref(), r.json),
            ("p", Some("m"), false)
        );
    }
}
