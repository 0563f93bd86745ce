//! The retry loop shared by every client: send, classify the answer, back
//! off and retry on 429 / 5xx / timeouts / broken connections.

use std::time::Duration;

use crate::llm::{LlmError, LlmErrorKind};
use bytes::Bytes;
use http::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use super::ClientSettings;
use super::http::{Backend, ClientBuildError, shared_client};
use super::retry::{RetryPolicy, retry_after};
use crate::tier1::Tier1;

/// One HTTP answer, body read in full.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    /// The server's retry hint (`retry-after-ms` / `Retry-After`).
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

/// What to do with an answer.
pub(crate) enum Verdict<T> {
    /// Success: return this.
    Done(T),
    /// A transient failure: retry if attempts remain.
    Retry(LlmError),
    /// A permanent failure: give up.
    Fail(LlmError),
}

/// Sends requests to one service with retries. Never puts the key in a
/// message: every message passes through [`Sender::redact`].
#[derive(Clone)]
pub(crate) struct Sender {
    pub http: reqwest::Client,
    pub policy: RetryPolicy,
    pub timeout: Duration,
    /// Service name for messages, e.g. `Azure OpenAI`.
    pub service: &'static str,
    /// The key, to scrub from any text a server echoes back.
    pub key: SecretString,
    /// Tier 1 telemetry: one span per HTTP attempt.
    pub tier1: Tier1,
    /// Target host (`server.address` of the Tier 1 spans).
    pub host: String,
    /// Counts retried attempts.
    pub usage: std::sync::Arc<crate::usage::UsageMeter>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("service", &self.service)
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// The sender of one backend's client: the shared HTTP client of
    /// `backend`, the retry policy, timeout and Tier 1 handle of `settings`,
    /// and `base`'s host for the Tier 1 spans.
    pub(super) fn new(
        backend: Backend,
        service: &'static str,
        key: SecretString,
        base: &reqwest::Url,
        settings: &ClientSettings,
    ) -> Result<Self, ClientBuildError> {
        Ok(Self {
            http: shared_client(backend)?,
            policy: settings.retry.clone(),
            timeout: settings.timeout,
            service,
            key,
            tier1: settings.tier1.clone(),
            host: base.host_str().unwrap_or_default().to_string(),
            usage: settings.usage.clone(),
        })
    }

    /// Sends what `build` makes until `classify` says done or fail, or the
    /// retries run out. Each attempt is one Tier 1 span named `call`;
    /// `body` is the request body (hashed there, never exported).
    pub(super) async fn execute<T>(
        &self,
        call: &'static str,
        body: &[u8],
        build: impl Fn() -> reqwest::RequestBuilder,
        classify: impl Fn(&Answer) -> Verdict<T>,
    ) -> Result<T, LlmError> {
        self.execute_with(true, call, body, build, classify).await
    }

    /// Like [`execute`](Self::execute); when `idempotent` is false, a
    /// timeout or a connection broken after the request was sent is not
    /// retried (the server may have acted on it), only failures to connect
    /// and the statuses `classify` marks as retryable.
    pub(super) async fn execute_with<T>(
        &self,
        idempotent: bool,
        call: &'static str,
        body: &[u8],
        build: impl Fn() -> reqwest::RequestBuilder,
        classify: impl Fn(&Answer) -> Verdict<T>,
    ) -> Result<T, LlmError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            // Built up front so the span can carry the request's method and URL.
            let request = build().build();
            let span = match &request {
                Ok(r) => self
                    .tier1
                    .start_http_call(call, r.method().as_str(), r.url()),
                Err(_) => self.tier1.start_call(call, &self.host),
            };
            let sent = tokio::time::timeout(self.timeout, async {
                let response = self.http.execute(request?).await?;
                let status = response.status();
                let retry_after = if status.is_success() {
                    None
                } else {
                    retry_after(response.headers())
                };
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>(Answer {
                    status,
                    retry_after,
                    body,
                })
            })
            .await;
            let (error, hint) = match sent {
                Err(_) if !idempotent => {
                    span.fail(None, LlmErrorKind::Timeout.as_str(), body, None);
                    return Err(self.finish(
                        LlmError::new(
                            LlmErrorKind::Timeout,
                            format!(
                                "{} did not answer within {} s (timeout_s); not retried because the request may have been acted on",
                                self.service,
                                trim_float(self.timeout.as_secs_f64())
                            ),
                        ),
                        attempt,
                    ));
                }
                Err(_) => {
                    span.fail(None, LlmErrorKind::Timeout.as_str(), body, None);
                    (
                        LlmError::new(
                            LlmErrorKind::Timeout,
                            format!(
                                "{} did not answer within {} s (timeout_s)",
                                self.service,
                                trim_float(self.timeout.as_secs_f64())
                            ),
                        ),
                        None,
                    )
                }
                Ok(Err(e)) => {
                    let error = self.transport_error(&e);
                    span.fail(None, error.kind.as_str(), body, None);
                    if e.is_builder() || (!idempotent && !e.is_connect()) {
                        return Err(self.finish(error, attempt));
                    }
                    (error, None)
                }
                Ok(Ok(answer)) => {
                    let status = answer.status.as_u16();
                    match classify(&answer) {
                        Verdict::Done(value) => {
                            span.succeed(status, body, &answer.body);
                            return Ok(value);
                        }
                        Verdict::Fail(error) => {
                            span.fail(Some(status), &error.error_type(), body, Some(&answer.body));
                            return Err(self.finish(error, attempt));
                        }
                        Verdict::Retry(error) => {
                            span.fail(Some(status), &error.error_type(), body, Some(&answer.body));
                            (error, answer.retry_after)
                        }
                    }
                }
            };
            if attempt > self.policy.max_retries {
                return Err(self.finish(error, attempt));
            }
            let wait = self.policy.delay(attempt, hint);
            self.usage.record_retry();
            tracing::debug!(
                service = self.service,
                attempt,
                error = %self.redact(&error.message),
                wait_ms = wait.as_millis() as u64,
                "retrying LLM backend call"
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> LlmError {
        let kind = if e.is_timeout() {
            LlmErrorKind::Timeout
        } else {
            LlmErrorKind::Transport
        };
        let mut detail = String::new();
        let mut source: Option<&dyn std::error::Error> = Some(e);
        // The chain without URLs: reqwest's own Display names the URL.
        while let Some(s) = source {
            let text = s.to_string();
            if !text.contains("://") && !detail.contains(&text) {
                if !detail.is_empty() {
                    detail.push_str(": ");
                }
                detail.push_str(&text);
            }
            source = s.source();
        }
        if detail.is_empty() {
            detail = if e.is_connect() {
                "connection failed".into()
            } else {
                "request failed".into()
            };
        }
        LlmError::new(
            kind,
            format!("{} could not be reached: {detail}", self.service),
        )
    }

    fn finish(&self, mut error: LlmError, attempts: u32) -> LlmError {
        error.attempts = attempts;
        error.message = self.redact(&error.message);
        if attempts > 1 {
            error.message = format!("{} (after {attempts} attempts)", error.message);
        }
        error
    }

    /// `text` with every occurrence of the key replaced by `<redacted>`.
    pub(super) fn redact(&self, text: &str) -> String {
        let key = self.key.expose_secret();
        if key.len() >= 4 && text.contains(key) {
            text.replace(key, "<redacted>")
        } else {
            text.to_string()
        }
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The usual decision for a non-2xx status: 429 / 408 / 5xx are retried;
/// 401 / 403 are auth errors; a `content_filter` code is a content-filter
/// error; other 4xx are client errors.
pub(crate) fn classify_status<T>(service: &str, status: StatusCode, body: &[u8]) -> Verdict<T> {
    let code = status.as_u16();
    let (message, error_code) = error_detail(body);
    let text = match &message {
        Some(m) => format!("{service} answered HTTP {code}: {m}"),
        None => format!("{service} answered HTTP {code}"),
    };
    let error = |kind| LlmError::new(kind, text.clone()).with_status(code);
    if is_content_filter(error_code.as_deref(), body) && matches!(code, 400 | 403 | 422) {
        return Verdict::Fail(error(LlmErrorKind::ContentFilter));
    }
    match code {
        429 => Verdict::Retry(error(LlmErrorKind::RateLimited)),
        408 => Verdict::Retry(error(LlmErrorKind::Timeout)),
        500..=599 => Verdict::Retry(error(LlmErrorKind::Server)),
        401 | 403 => Verdict::Fail(
            LlmError::new(LlmErrorKind::Auth, format!("{text} (check the API key)"))
                .with_status(code),
        ),
        _ => Verdict::Fail(error(LlmErrorKind::Client)),
    }
}

/// `(error.message, error.code)` from an OpenAI-style error body.
pub(crate) fn error_detail(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        return ((!text.is_empty()).then(|| truncate(text, 300)), None);
    };
    let err = v.get("error").unwrap_or(&v);
    let message = err
        .get("message")
        .and_then(|m| m.as_str())
        .map(|m| truncate(m, 300));
    let code = err.get("code").and_then(|c| match c {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    (message, code)
}

fn is_content_filter(code: Option<&str>, body: &[u8]) -> bool {
    if matches!(
        code,
        Some("content_filter") | Some("ResponsibleAIPolicyViolation")
    ) {
        return true;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    // Azure puts the detail in `innererror.code`; OpenRouter's moderation
    // answers 403 with `metadata.reasons` / `metadata.flagged_input`.
    v.pointer("/error/innererror/code").and_then(|c| c.as_str())
        == Some("ResponsibleAIPolicyViolation")
        || v.pointer("/error/metadata/reasons").is_some()
        || v.pointer("/error/metadata/flagged_input").is_some()
}

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind<T>(v: Verdict<T>) -> (bool, LlmError) {
        match v {
            Verdict::Retry(e) => (true, e),
            Verdict::Fail(e) => (false, e),
            Verdict::Done(_) => panic!("not an error"),
        }
    }

    #[test]
    fn statuses_are_classified() {
        let body = br#"{"error":{"code":"429","message":"slow down"}}"#;
        let (retry, e) = kind::<()>(classify_status(
            "Azure OpenAI",
            StatusCode::TOO_MANY_REQUESTS,
            body,
        ));
        assert!(retry);
        assert_eq!(e.kind, LlmErrorKind::RateLimited);
        assert_eq!(e.message, "Azure OpenAI answered HTTP 429: slow down");
        assert_eq!(e.http_status, Some(429));
        let (retry, e) = kind::<()>(classify_status(
            "X",
            StatusCode::BAD_GATEWAY,
            b"upstream died",
        ));
        assert!(retry);
        assert_eq!(e.kind, LlmErrorKind::Server);
        assert_eq!(e.message, "X answered HTTP 502: upstream died");
        let (retry, e) = kind::<()>(classify_status("X", StatusCode::UNAUTHORIZED, b"{}"));
        assert!(!retry);
        assert_eq!(e.kind, LlmErrorKind::Auth);
        let (retry, e) = kind::<()>(classify_status("X", StatusCode::NOT_FOUND, b""));
        assert!(!retry);
        assert_eq!(e.kind, LlmErrorKind::Client);
        assert_eq!(e.message, "X answered HTTP 404");
    }

    #[test]
    fn azure_content_filter_400() {
        let body = br#"{"error":{"message":"The response was filtered","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#;
        let (retry, e) = kind::<()>(classify_status(
            "Azure OpenAI",
            StatusCode::BAD_REQUEST,
            body,
        ));
        assert!(!retry);
        assert_eq!(e.kind, LlmErrorKind::ContentFilter);
        let inner_only = br#"{"error":{"message":"m","code":"BadRequest","innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#;
        let (_, e) = kind::<()>(classify_status("A", StatusCode::BAD_REQUEST, inner_only));
        assert_eq!(e.kind, LlmErrorKind::ContentFilter);
        let openrouter = br#"{"error":{"code":403,"message":"Input flagged","metadata":{"reasons":["violence"],"flagged_input":"x"}}}"#;
        let (retry, e) = kind::<()>(classify_status(
            "OpenRouter",
            StatusCode::FORBIDDEN,
            openrouter,
        ));
        assert!(!retry);
        assert_eq!(e.kind, LlmErrorKind::ContentFilter);
        assert_eq!(e.message, "OpenRouter answered HTTP 403: Input flagged");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 2), "hi");
    }
}
