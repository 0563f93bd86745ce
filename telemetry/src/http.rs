//! HTTP plumbing shared by the exporters.

pub use elspeth_core::http::install_crypto_provider;
use elspeth_core::http::{ClientBuildError, ClientOptions};

/// A reqwest client for tracing backends: elspeth's one client builder with
/// the exporters' preset ([`ClientOptions::for_exporters`]). Request
/// timeouts are applied per request by the export machinery.
pub(crate) fn client() -> Result<reqwest::Client, ClientBuildError> {
    ClientOptions::for_exporters().build()
}

/// Runs CPU-heavy work (encoding and compressing a batch) without stalling
/// the other tasks of a multi-threaded runtime: through `block_in_place`,
/// which hands the worker's place to another thread for the duration.
/// `brief` work (well under a millisecond) runs inline instead when the
/// runtime has another worker to take over the queued tasks meanwhile: for
/// such work the handoff costs more than it saves (`elspeth run`'s tracing
/// CPU per row against the mocks: 10.6 and 13.5 µs with it, 8.5 and 9.3 µs
/// inline, two interleaved runs of 21 and 31 pairs). With a single worker
/// nothing else could run while it works: the `record_cost` bench, on a
/// one-worker runtime shared with the mock, took 0.44–0.56 µs per call with
/// the handoff and 0.57–0.91 µs inline. Inline on a current-thread runtime
/// (where `block_in_place` is not available) and outside a runtime.
pub(crate) fn cpu_bound<T>(brief: bool, f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            if brief && h.metrics().num_workers() > 1 {
                f()
            } else {
                tokio::task::block_in_place(f)
            }
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
