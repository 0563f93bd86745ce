//! The shared HTTP stack: one `reqwest` client per LLM backend, built by
//! elspeth's one client builder ([`ClientOptions`], rustls with the `ring`
//! crypto provider) with the LLM backends' preset.

use std::sync::OnceLock;

pub use elspeth_core::http::{ClientBuildError, ClientOptions, install_crypto_provider};

/// Which LLM backend a shared client talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Azure OpenAI (chat and Batch API).
    AzureOpenAi,
    /// OpenRouter.
    OpenRouter,
}

/// Builds a new client with elspeth's settings for LLM backends (rustls +
/// ring, connection pooling, `User-Agent: elspeth/<version>`). Prefer
/// [`shared_client`].
pub fn build_client() -> Result<reqwest::Client, ClientBuildError> {
    ClientOptions::for_llm_backends().build()
}

/// The process-wide client for `backend` (built on first use; every
/// transform talking to that backend shares its connection pool).
pub fn shared_client(backend: Backend) -> Result<reqwest::Client, ClientBuildError> {
    static AZURE: OnceLock<reqwest::Client> = OnceLock::new();
    static OPENROUTER: OnceLock<reqwest::Client> = OnceLock::new();
    let cell = match backend {
        Backend::AzureOpenAi => &AZURE,
        Backend::OpenRouter => &OPENROUTER,
    };
    if let Some(client) = cell.get() {
        return Ok(client.clone());
    }
    let client = build_client()?;
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
