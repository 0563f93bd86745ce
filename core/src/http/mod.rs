//! The HTTP toolbox shared by the LLM clients (`elspeth-runtime`) and the
//! tracing exporters (`elspeth-telemetry`): one retry policy, one
//! `Retry-After` parser, one rustls provider install, one TLS setup and one
//! client builder.

mod retry;

use std::sync::{Arc, Once, OnceLock};
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
    /// What failed.
    #[source]
    pub source: ClientBuildCause,
}

/// Why a client could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientBuildCause {
    /// The platform's certificate verifier could not be set up (no usable
    /// trust store).
    #[error("the TLS certificate verifier could not be set up: {0}")]
    Tls(Arc<rustls::Error>),
    /// reqwest refused the settings.
    #[error("{0}")]
    Reqwest(Arc<reqwest::Error>),
}

/// The TLS settings of every elspeth client, built once per process.
///
/// Loading the platform's trust store (every certificate of the OS bundle,
/// parsed) costs milliseconds of CPU; built by each reqwest client on its
/// own it was paid once per client (LLM backends, each tracing exporter,
/// Tier 1). The same verifier and session cache now serve them all. What
/// it holds is what reqwest builds by default: the `ring` provider's
/// protocol versions, the platform verifier, SNI on, ALPN `h2` then
/// `http/1.1`.
fn tls_config() -> Result<rustls::ClientConfig, ClientBuildCause> {
    static TLS: OnceLock<Result<rustls::ClientConfig, ClientBuildCause>> = OnceLock::new();
    TLS.get_or_init(|| {
        install_crypto_provider();
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
            .map_err(|e| ClientBuildCause::Tls(Arc::new(e)))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientBuildCause::Tls(Arc::new(e)))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    })
    .clone()
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

    /// Builds the client on the process's one TLS setup (see
    /// [`install_crypto_provider`]; the trust store is loaded once).
    pub fn build(&self) -> Result<reqwest::Client, ClientBuildError> {
        let error = |source| ClientBuildError {
            context: self.error_context,
            source,
        };
        let tls = tls_config().map_err(error)?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("elspeth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .tcp_nodelay(self.tcp_nodelay);
        if let Some(n) = self.pool_max_idle_per_host {
            builder = builder.pool_max_idle_per_host(n);
        }
        builder
            .build()
            .map_err(|e| error(ClientBuildCause::Reqwest(Arc::new(e))))
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
