//! Why an exporter could not be started (the transform then runs untraced,
//! after one warning). Messages never contain a secret.

use crate::appinsights::AppInsightsError;
use crate::export::NoRuntime;
use crate::langfuse::LangfuseSettingsError;
use crate::settings::UnresolvedSettings;

/// Why a Tier 2 exporter could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// A setting could not be resolved by the runtime.
    #[error(transparent)]
    Unresolved(#[from] UnresolvedSettings),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] elspeth_core::http::ClientBuildError),
    /// No Tokio runtime to run the export worker on.
    #[error(transparent)]
    NoRuntime(#[from] NoRuntime),
    /// The Langfuse settings are unusable.
    #[error(transparent)]
    Langfuse(#[from] LangfuseSettingsError),
    /// The Application Insights settings are unusable.
    #[error(transparent)]
    AppInsights(#[from] AppInsightsError),
}
