//! Environment layering: variables set in code over the process environment
//! (`elspeth run --with-mocks` points `${VAR}` references at local mocks
//! this way, without touching the process environment).

use std::collections::BTreeMap;
use std::sync::Arc;

use elspeth_schema::config::{Env, ProcessEnv};

/// Looks variables up in `overlay` first, then in `base`.
///
/// ```
/// use elspeth_runtime::env::OverlayEnv;
/// use elspeth_schema::config::Env;
/// let env = OverlayEnv::over_process([("AZURE_OPENAI_ENDPOINT", "http://127.0.0.1:8080")]);
/// assert_eq!(env.var("AZURE_OPENAI_ENDPOINT").as_deref(), Some("http://127.0.0.1:8080"));
/// ```
#[derive(Clone)]
pub struct OverlayEnv {
    overlay: BTreeMap<String, String>,
    base: Arc<dyn Env + Send + Sync>,
}

impl OverlayEnv {
    /// `overlay` over `base`.
    pub fn new<K: Into<String>, V: Into<String>>(
        overlay: impl IntoIterator<Item = (K, V)>,
        base: Arc<dyn Env + Send + Sync>,
    ) -> Self {
        Self {
            overlay: overlay
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            base,
        }
    }

    /// `overlay` over the process environment.
    pub fn over_process<K: Into<String>, V: Into<String>>(
        overlay: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self::new(overlay, Arc::new(ProcessEnv))
    }

    /// The names set by the overlay.
    pub fn overlay_names(&self) -> impl Iterator<Item = &str> {
        self.overlay.keys().map(String::as_str)
    }
}

impl std::fmt::Debug for OverlayEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: names only.
        f.debug_struct("OverlayEnv")
            .field("overlay", &self.overlay.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Env for OverlayEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.overlay
            .get(name)
            .cloned()
            .or_else(|| self.base.var(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_wins_and_falls_back() {
        let base: BTreeMap<String, String> = [
            ("A".to_string(), "base".to_string()),
            ("B".to_string(), "b".to_string()),
        ]
        .into();
        let env = OverlayEnv::new([("A", "s3cret-value")], Arc::new(base));
        assert_eq!(env.var("A").as_deref(), Some("s3cret-value"));
        assert_eq!(env.var("B").as_deref(), Some("b"));
        assert_eq!(env.var("C"), None);
        let dbg = format!("{env:?}");
        assert!(dbg.contains("\"A\"") && !dbg.contains("s3cret"), "{dbg}");
    }
}
