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
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            max_in_flight: 10,
            tier1: crate::tier1::Tier1::disabled(),
        }
    }
}
