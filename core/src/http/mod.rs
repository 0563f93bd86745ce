//! The HTTP toolbox shared by the LLM clients (`elspeth-runtime`) and the
//! tracing exporters (`elspeth-telemetry`): one retry policy, one
//! `Retry-After` parser, one rustls provider install and one client builder.

mod retry;

use std::sync::Once;
use std::time::Duration;

pub use retry::{
    MAX_RETRY_AFTER, RetryPolicy, ServerHint, parse_retry_after, parse_retry_after_ms, retry_hint,
};

static CRYPTO: Once = Once::new();

/// Installs rustls' `ring` provider as the process default, once.
///
/// reqwest is built with `rustls-no-provider`, so a provider must be
/// installed before the first client is built. If another one was installed
/// first (by the application), that one is kept. Idempotent and cheap.
pub fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Err means another thread installed one in between: fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

/// A reqwest client could not be built (in practice: the TLS setup failed).
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct ClientBuildError {
    /// What the client was for, e.g. `could not build the HTTP client for tracing`.
    pub context: &'static str,
    /// reqwest's error.
    #[source]
    pub source: reqwest::Error,
}

/// The settings of an elspeth HTTP client: rustls with `ring`, the
/// `elspeth/<version>` user agent, and the connection timings below.
/// [`for_llm_backends`](Self::for_llm_backends) and
/// [`for_exporters`](Self::for_exporters) are the two presets in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Longest wait for a TCP + TLS connection.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Most idle connections kept per host (`None`: reqwest's default).
    pub pool_max_idle_per_host: Option<usize>,
    /// Disable Nagle's algorithm (small requests go out at once).
    pub tcp_nodelay: bool,
    /// The start of the error message when the client cannot be built.
    pub error_context: &'static str,
}

impl ClientOptions {
    /// LLM backends: 15 s connect timeout, idle connections kept 90 s, up
    /// to 512 per host (hundreds of calls in flight share the pool),
    /// `TCP_NODELAY`.
    pub fn for_llm_backends() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: Some(512),
            tcp_nodelay: true,
            error_context: "could not build the HTTP client (TLS setup failed)",
        }
    }

    /// Tracing backends: 5 s connect timeout, idle connections kept 60 s;
    /// request timeouts are applied per request by the export machinery.
    pub fn for_exporters() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(60),
            pool_max_idle_per_host: None,
            tcp_nodelay: true,
            error_context: "could not build the HTTP client for tracing",
        }
    }

    /// Installs the crypto provider if needed and builds the client.
    pub fn build(&self) -> Result<reqwest::Client, ClientBuildError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("elspeth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .tcp_nodelay(self.tcp_nodelay);
        if let Some(n) = self.pool_max_idle_per_host {
            builder = builder.pool_max_idle_per_host(n);
        }
        builder.build().map_err(|source| ClientBuildError {
            context: self.error_context,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_presets_build_with_ring() {
        assert!(ClientOptions::for_llm_backends().build().is_ok());
        assert!(ClientOptions::for_exporters().build().is_ok());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
