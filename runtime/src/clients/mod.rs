//! HTTP clients of the LLM backends: Azure OpenAI chat, the Azure OpenAI
//! Batch API and OpenRouter.
//!
//! All share one `reqwest` client per backend ([`http::shared_client`]) on
//! rustls with `ring`, retry 429 / 5xx / timeouts with exponential backoff
//! and jitter honouring `Retry-After` ([`RetryPolicy`]), apply a per-call
//! timeout, and bound the calls in flight. Error messages never contain the
//! API key (anything a server echoes back is scrubbed).

pub mod azure;
pub mod azure_batch;
mod chat;
pub mod http;
pub mod openrouter;
pub mod retry;
mod send;

use std::time::Duration;

pub use azure::{AzureChatClient, AzureTarget};
pub use azure_batch::{AzureBatchClient, BatchJob, BatchStatus};
pub use openrouter::{OpenRouterClient, OpenRouterTarget};
pub use retry::RetryPolicy;

/// Why an LLM client could not be built. Never contains the API key.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint does not parse as a URL.
    #[error(
        "endpoint `{endpoint}` is not a valid URL ({reason}); expected e.g. https://my-resource.openai.azure.com"
    )]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// The URL parser's complaint.
        reason: String,
    },
    /// The endpoint is not an http(s) URL with a host.
    #[error(
        "endpoint `{endpoint}` must be an http(s) URL, e.g. https://my-resource.openai.azure.com"
    )]
    NotHttp {
        /// The endpoint as given.
        endpoint: String,
    },
    /// The URL cannot have paths appended.
    #[error("{field} `{value}` cannot be a base URL")]
    NotABase {
        /// The option (`endpoint`, `base_url`).
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// A header option is not a valid HTTP header value.
    #[error("{name} `{value}` is not a valid HTTP header value")]
    InvalidHeader {
        /// The option (`http_referer`, `app_title`).
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] http::ClientBuildError),
}

/// Timeout, retries, concurrency and Tier 1 telemetry of a client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Timeout of one HTTP attempt (sending and reading the whole answer).
    pub timeout: Duration,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// Most calls in flight at once through this client.
    pub max_in_flight: usize,
    /// Tier 1 telemetry (one span per HTTP attempt; disabled by default).
    pub tier1: crate::tier1::Tier1,
    /// Counts the retried attempts (the transform's meter).
    pub usage: std::sync::Arc<crate::usage::UsageMeter>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            max_in_flight: 10,
            tier1: crate::tier1::Tier1::disabled(),
            usage: Default::default(),
        }
    }
}
