//! HTTP plumbing shared by the exporters.

use std::time::Duration;

/// Installs rustls' `ring` crypto provider as the process default, if no
/// provider is installed yet. reqwest is built with `rustls-no-provider`, so
/// a client cannot be built before this runs. Idempotent and cheap.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A reqwest client for tracing backends: rustls (ring), HTTP/1.1 and 2,
/// 5 s connect timeout, `elspeth/<version>` user agent. Request timeouts are
/// applied per request by the export machinery.
pub(crate) fn client() -> Result<reqwest::Client, String> {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("elspeth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("could not build the HTTP client for tracing: {e}"))
}

/// Runs CPU-heavy work (encoding and compressing a batch) without stalling
/// the other tasks of a multi-threaded runtime; inline on a current-thread
/// runtime (where `block_in_place` is not available).
pub(crate) fn cpu_bound<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A random UUID (v4 layout) for `service.instance.id`.
pub(crate) fn instance_id() -> String {
    let mut b = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
