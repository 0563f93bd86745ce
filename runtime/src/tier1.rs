//! Tier 1 ops telemetry handle used by LLM clients to record external calls
//! (latency, status, content hashes only).

/// Records Tier 1 spans for external calls. Cheap to clone; disabled when the
/// pipeline has no `telemetry:` section.
#[derive(Debug, Clone, Default)]
pub struct Tier1 {
    enabled: bool,
}

impl Tier1 {
    /// A handle that records nothing.
    pub fn disabled() -> Self {
        Self { enabled: false }
    }

    /// Whether anything is recorded.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }
}
