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
}
