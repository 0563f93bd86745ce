//! The shared HTTP stack: one `reqwest` client per LLM backend, on rustls
//! with the `ring` crypto provider.

use std::sync::{Once, OnceLock};
use std::time::Duration;

/// Which LLM backend a shared client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Azure OpenAI (chat and Batch API).
    AzureOpenAi,
    /// OpenRouter.
    OpenRouter,
}

static CRYPTO: Once = Once::new();

/// Installs rustls' `ring` provider as the process default, once.
///
/// reqwest is built with `rustls-no-provider`, so a provider must be installed
/// before the first client is built. If another one was installed first
/// (by the application), that one is kept.
pub fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Err means another thread installed one in between: fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

/// Builds a new client with elspeth's settings (rustls + ring, connection
/// pooling, `User-Agent: elspeth/<version>`). Prefer [`shared_client`].
pub fn build_client() -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("elspeth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(512)
        .tcp_nodelay(true)
        .build()
}

/// The process-wide client for `backend` (built on first use; every
/// transform talking to that backend shares its connection pool).
pub fn shared_client(backend: Backend) -> Result<reqwest::Client, String> {
    static AZURE: OnceLock<reqwest::Client> = OnceLock::new();
    static OPENROUTER: OnceLock<reqwest::Client> = OnceLock::new();
    let cell = match backend {
        Backend::AzureOpenAi => &AZURE,
        Backend::OpenRouter => &OPENROUTER,
    };
    if let Some(client) = cell.get() {
        return Ok(client.clone());
    }
    let client = build_client()
        .map_err(|e| format!("could not build the HTTP client (TLS setup failed): {e}"))?;
    Ok(cell.get_or_init(|| client).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_client_builds_with_ring() {
        assert!(shared_client(Backend::AzureOpenAi).is_ok());
        assert!(shared_client(Backend::OpenRouter).is_ok());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
