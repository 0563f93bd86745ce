//! OpenRouter chat completions: `POST {base_url}/chat/completions` with a
//! Bearer key and the optional `HTTP-Referer` / `X-Title` attribution headers.

use std::sync::Arc;

use crate::llm::{LlmError, LlmRequest, LlmResponse};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use super::azure::parse_endpoint;
use super::chat::{acquire_slot, classify_chat, encode_chat};
use super::http::Backend;
use super::send::Sender;
use super::{ClientError, ClientSettings};

/// Service name used in messages.
pub(crate) const SERVICE: &str = "OpenRouter";

/// A resolved OpenRouter target.
pub struct OpenRouterTarget {
    /// API base URL, e.g. `https://openrouter.ai/api/v1`.
    pub base_url: String,
    /// Model id, e.g. `openai/gpt-4o-mini`.
    pub model: String,
    /// The Bearer key.
    pub api_key: SecretString,
    /// `HTTP-Referer` header.
    pub http_referer: Option<String>,
    /// `X-Title` header.
    pub app_title: Option<String>,
}

impl std::fmt::Debug for OpenRouterTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenRouterTarget")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &"<redacted>")
            .field("http_referer", &self.http_referer)
            .field("app_title", &self.app_title)
            .finish()
    }
}

/// Calls OpenRouter's chat endpoint for one model, with retries and a bound
/// on calls in flight. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OpenRouterClient {
    sender: Sender,
    url: reqwest::Url,
    host: String,
    model: String,
    referer: Option<http::HeaderValue>,
    title: Option<http::HeaderValue>,
    limiter: Arc<Semaphore>,
}

impl OpenRouterClient {
    /// A client for `target`. Fails when the base URL is not an http(s) URL
    /// or a header value is not valid.
    pub fn new(target: OpenRouterTarget, settings: &ClientSettings) -> Result<Self, ClientError> {
        let base = parse_endpoint(&target.base_url)?;
        let mut url = base.clone();
        url.path_segments_mut()
            .map_err(|_| ClientError::NotABase {
                field: "base_url",
                value: target.base_url.clone(),
            })?
            .pop_if_empty()
            .extend(["chat", "completions"]);
        let header = |name: &'static str,
                      v: Option<String>|
         -> Result<Option<http::HeaderValue>, ClientError> {
            v.map(|v| {
                http::HeaderValue::from_str(&v)
                    .map_err(|_| ClientError::InvalidHeader { name, value: v })
            })
            .transpose()
        };
        Ok(Self {
            sender: Sender::new(
                Backend::OpenRouter,
                SERVICE,
                target.api_key,
                &base,
                settings,
            )?,
            host: base.host_str().unwrap_or_default().to_string(),
            url,
            model: target.model,
            referer: header("http_referer", target.http_referer)?,
            title: header("app_title", target.app_title)?,
            limiter: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
        })
    }

    /// The chat-completions URL.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The base URL's host (`server.address`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Makes one chat call, retrying transient failures. The request's
    /// `model` is sent as is (falls back to the configured model when empty).
    pub async fn chat(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let _permit = acquire_slot(&self.limiter).await?;
        let model = if request.model.is_empty() {
            &self.model
        } else {
            &request.model
        };
        let body = encode_chat(request, Some(model))?;
        self.sender
            .execute(
                "llm.chat",
                &body,
                || {
                    let mut rb = self
                        .sender
                        .http
                        .post(self.url.clone())
                        .bearer_auth(self.sender.key.expose_secret())
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(body.clone());
                    if let Some(v) = &self.referer {
                        rb = rb.header("HTTP-Referer", v.clone());
                    }
                    if let Some(v) = &self.title {
                        rb = rb.header("X-Title", v.clone());
                    }
                    rb
                },
                |answer| classify_chat(SERVICE, answer.status, &answer.body),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_chat_url() {
        let t = OpenRouterTarget {
            base_url: "https://openrouter.ai/api/v1/".into(),
            model: "openai/gpt-4o-mini".into(),
            api_key: SecretString::from("sk-or-secret"),
            http_referer: Some("https://example.org".into()),
            app_title: Some("elspeth".into()),
        };
        assert!(!format!("{t:?}").contains("sk-or"));
        let c = OpenRouterClient::new(t, &ClientSettings::default()).unwrap();
        assert_eq!(c.url(), "https://openrouter.ai/api/v1/chat/completions");
        assert_eq!(c.host(), "openrouter.ai");
    }

    #[test]
    fn rejects_header_values_with_newlines() {
        let t = OpenRouterTarget {
            base_url: "https://openrouter.ai/api/v1".into(),
            model: "m".into(),
            api_key: SecretString::from("k"),
            http_referer: None,
            app_title: Some("bad\nvalue".into()),
        };
        let e = OpenRouterClient::new(t, &ClientSettings::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "app_title `bad\nvalue` is not a valid HTTP header value"
        );
    }
}
