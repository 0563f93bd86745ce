//! Azure OpenAI chat completions:
//! `POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`
//! with the `api-key` header.

use std::sync::Arc;

use crate::llm::{LlmError, LlmRequest, LlmResponse};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use super::chat::{acquire_slot, classify_chat, encode_chat};
use super::http::Backend;
use super::send::Sender;
use super::{ClientError, ClientSettings};

/// Service name used in messages.
pub(crate) const SERVICE: &str = "Azure OpenAI";

/// A resolved Azure OpenAI deployment: where to send calls and with which key.
pub struct AzureTarget {
    /// Resource endpoint, e.g. `https://my-resource.openai.azure.com`.
    pub endpoint: String,
    /// Deployment name.
    pub deployment: String,
    /// REST API version, e.g. `2024-10-21`.
    pub api_version: String,
    /// The `api-key`.
    pub api_key: SecretString,
}

impl std::fmt::Debug for AzureTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureTarget")
            .field("endpoint", &self.endpoint)
            .field("deployment", &self.deployment)
            .field("api_version", &self.api_version)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// Calls one Azure OpenAI chat deployment, with retries and a bound on
/// calls in flight. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AzureChatClient {
    sender: Sender,
    url: reqwest::Url,
    host: String,
    limiter: Arc<Semaphore>,
}

impl AzureChatClient {
    /// A client for `target`. Fails when the endpoint is not an http(s) URL.
    pub fn new(target: AzureTarget, settings: &ClientSettings) -> Result<Self, ClientError> {
        let base = parse_endpoint(&target.endpoint)?;
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|_| ClientError::NotABase {
                field: "endpoint",
                value: target.endpoint.clone(),
            })?
            .pop_if_empty()
            .extend([
                "openai",
                "deployments",
                &target.deployment,
                "chat",
                "completions",
            ]);
        url.query_pairs_mut()
            .append_pair("api-version", &target.api_version);
        Ok(Self {
            sender: Sender::new(
                Backend::AzureOpenAi,
                SERVICE,
                target.api_key,
                &base,
                settings,
            )?,
            host: base.host_str().unwrap_or_default().to_string(),
            url,
            limiter: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
        })
    }

    /// The chat-completions URL (no secret in it).
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The endpoint's host (`server.address`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Makes one chat call, retrying transient failures.
    pub async fn chat(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let _permit = acquire_slot(&self.limiter).await?;
        let body = encode_chat(request, None)?;
        self.sender
            .execute(
                "llm.chat",
                &body,
                || {
                    self.sender
                        .http
                        .post(self.url.clone())
                        .header("api-key", self.sender.key.expose_secret())
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(body.clone())
                },
                |answer| classify_chat(SERVICE, answer.status, &answer.body),
            )
            .await
    }
}

/// Parses an endpoint, accepting only `http` / `https`.
pub(crate) fn parse_endpoint(endpoint: &str) -> Result<reqwest::Url, ClientError> {
    let url = reqwest::Url::parse(endpoint.trim()).map_err(|e| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ClientError::NotHttp {
            endpoint: endpoint.to_string(),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::RetryPolicy;

    fn target(endpoint: &str) -> AzureTarget {
        AzureTarget {
            endpoint: endpoint.into(),
            deployment: "gpt-4o".into(),
            api_version: "2024-10-21".into(),
            api_key: SecretString::from("k3y-value"),
        }
    }

    #[test]
    fn builds_the_deployment_url() {
        let c = AzureChatClient::new(
            target("https://res.openai.azure.com/"),
            &ClientSettings::default(),
        )
        .unwrap();
        assert_eq!(
            c.url(),
            "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(c.host(), "res.openai.azure.com");
        let c = AzureChatClient::new(target("http://127.0.0.1:9000"), &ClientSettings::default())
            .unwrap();
        assert_eq!(
            c.url(),
            "http://127.0.0.1:9000/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
    }

    #[test]
    fn rejects_bad_endpoints_without_leaking_the_key() {
        let e = AzureChatClient::new(target("res.openai.azure.com"), &ClientSettings::default())
            .unwrap_err();
        assert!(e.to_string().contains("is not a valid URL"), "{e}");
        let e = AzureChatClient::new(target("ftp://x"), &ClientSettings::default()).unwrap_err();
        assert!(e.to_string().contains("must be an http(s) URL"), "{e}");
        assert!(!format!("{:?}", target("x")).contains("k3y"));
    }

    /// A one-shot HTTP server per connection: the `n`-th connection gets
    /// `answers[n]` (the last one repeated), then is closed.
    async fn serve(answers: Vec<String>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let answer = answers[n.min(answers.len() - 1)].clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let read = socket.read(&mut chunk).await.unwrap_or(0);
                        if read == 0 {
                            break;
                        }
                        request.extend_from_slice(&chunk[..read]);
                        let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        (url, count)
    }

    fn answer(status: &str, header: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\n{header}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    /// A server's absurd retry hint (`Retry-After: 1e20` and friends) used
    /// to panic in `Duration::from_secs_f64`; now it is read as a long wait
    /// and capped by the policy, and the retry succeeds.
    #[tokio::test]
    async fn a_huge_retry_after_neither_panics_nor_waits_long() {
        let ok = answer(
            "200 OK",
            "",
            r#"{"id":"chatcmpl-1","model":"gpt-4o","choices":[{"message":{"role":"assistant","content":"positive"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#,
        );
        let limited = r#"{"error":{"code":"429","message":"slow down"}}"#;
        for hint in [
            "Retry-After: 1e20",
            "retry-after-ms: 1e20",
            "Retry-After: 18446744073709551616",
            "Retry-After: 1e308",
            "Retry-After: inf",
            "Retry-After: NaN",
            "Retry-After: -5",
            "Retry-After: Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            let (url, count) = serve(vec![
                answer("429 Too Many Requests", &format!("{hint}\r\n"), limited),
                ok.clone(),
            ])
            .await;
            let settings = ClientSettings {
                retry: RetryPolicy {
                    max_retry_after: std::time::Duration::from_millis(50),
                    ..RetryPolicy::new(1)
                }
                .with_backoff(
                    std::time::Duration::from_millis(5),
                    std::time::Duration::from_millis(10),
                ),
                ..ClientSettings::default()
            };
            let client = AzureChatClient::new(target(&url), &settings).unwrap();
            let started = std::time::Instant::now();
            let reply = client
                .chat(&LlmRequest::user("gpt-4o", "hi"))
                .await
                .unwrap_or_else(|e| panic!("{hint}: {e}"));
            assert_eq!(reply.content, "positive", "{hint}");
            assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2, "{hint}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{hint}: waited {:?}",
                started.elapsed()
            );
        }
    }
}
