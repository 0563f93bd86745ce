//! Why an exporter could not be started (the transform then runs untraced,
//! after one warning). Messages never contain a secret.

use crate::appinsights::AppInsightsError;
use crate::langfuse::{LangfuseError, LangfuseSettingsError};
use crate::settings::UnresolvedSettings;

/// Why a Tier 2 exporter could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// A setting could not be resolved by the runtime.
    #[error(transparent)]
    Unresolved(#[from] UnresolvedSettings),
    /// The registry's shared HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] elspeth_core::http::ClientBuildError),
    /// The Langfuse exporter could not be started.
    #[error(transparent)]
    Langfuse(#[from] LangfuseError),
    /// The Application Insights exporter could not be started.
    #[error(transparent)]
    AppInsights(#[from] AppInsightsError),
}

impl From<LangfuseSettingsError> for ExporterError {
    fn from(e: LangfuseSettingsError) -> Self {
        Self::Langfuse(e.into())
    }
}
