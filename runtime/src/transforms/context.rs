//! What building a transform needs (environment, usage meter, backoff
//! timings) and how its connection settings are resolved at start.

use std::sync::Arc;
use std::time::Duration;

use elspeth_schema::config::{
    AzureConnection, CallOptions, Env, EnvString, OpenRouterConnection, ProcessEnv, SecretRef,
};
use elspeth_telemetry::TransformLabel;
use secrecy::SecretString;

use crate::clients::{AzureTarget, ClientSettings, OpenRouterTarget, RetryPolicy};
use crate::tier1::Tier1;
use crate::transform::StartError;
use crate::usage::UsageMeter;

/// Shared services for the built-in transforms.
///
/// ```
/// use elspeth_runtime::transforms::BuildContext;
/// let ctx = BuildContext::default(); // process environment, fresh meter
/// assert_eq!(ctx.meter.snapshot().calls, 0);
/// ```
#[derive(Clone)]
pub struct BuildContext {
    /// Where `${VAR}` references in endpoints and keys are resolved.
    pub env: Arc<dyn Env + Send + Sync>,
    /// Counts tokens and cost of every call.
    pub meter: Arc<UsageMeter>,
    /// Backoff before the first retry (doubled per retry).
    pub backoff_base: Duration,
    /// Longest backoff between retries.
    pub backoff_max: Duration,
}

impl Default for BuildContext {
    fn default() -> Self {
        Self::new(Arc::new(ProcessEnv))
    }
}

impl std::fmt::Debug for BuildContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildContext")
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .finish_non_exhaustive()
    }
}

impl BuildContext {
    /// A context resolving references against `env`, with a fresh meter and
    /// the default backoff (0.5 s doubling up to 30 s).
    pub fn new(env: Arc<dyn Env + Send + Sync>) -> Self {
        let policy = RetryPolicy::default();
        Self {
            env,
            meter: Arc::new(UsageMeter::new()),
            backoff_base: policy.base_delay,
            backoff_max: policy.max_delay,
        }
    }

    /// Client settings from a transform's call options, recording Tier 1
    /// spans through `tier1`.
    pub fn client_settings(&self, call: &CallOptions, tier1: &Tier1) -> ClientSettings {
        ClientSettings {
            timeout: Duration::from_secs_f64(call.timeout_s.clamp(0.001, 86_400.0)),
            retry: RetryPolicy::new(call.max_retries)
                .with_backoff(self.backoff_base, self.backoff_max),
            max_in_flight: call.pool_size.max(1) as usize,
            tier1: tier1.clone(),
        }
    }

    pub(crate) fn resolve(
        &self,
        label: &TransformLabel,
        field: &str,
        value: &EnvString,
    ) -> Result<String, StartError> {
        value
            .resolve(self.env.as_ref())
            .map_err(|e| StartError::Other {
                transform: label.clone(),
                message: format!("{field}: {e}"),
            })
    }

    pub(crate) fn resolve_secret(
        &self,
        label: &TransformLabel,
        field: &str,
        value: &SecretRef,
    ) -> Result<SecretString, StartError> {
        value
            .resolve(self.env.as_ref())
            .map_err(|e| StartError::Other {
                transform: label.clone(),
                message: format!("{field}: {e}"),
            })
    }

    /// The Azure target of `conn`, references resolved.
    pub(crate) fn azure_target(
        &self,
        label: &TransformLabel,
        conn: &AzureConnection,
    ) -> Result<AzureTarget, StartError> {
        Ok(AzureTarget {
            endpoint: self.resolve(label, "endpoint", &conn.endpoint)?,
            deployment: conn.deployment_name.clone(),
            api_version: conn.api_version.clone(),
            api_key: self.resolve_secret(label, "api_key", &conn.api_key)?,
        })
    }

    /// The OpenRouter target of `conn`, references resolved.
    pub(crate) fn openrouter_target(
        &self,
        label: &TransformLabel,
        conn: &OpenRouterConnection,
    ) -> Result<OpenRouterTarget, StartError> {
        Ok(OpenRouterTarget {
            base_url: self.resolve(label, "base_url", &conn.base_url)?,
            model: conn.model.clone(),
            api_key: self.resolve_secret(label, "api_key", &conn.api_key)?,
            http_referer: conn.http_referer.clone(),
            app_title: conn.app_title.clone(),
        })
    }
}

/// A client error at start, as a [`StartError`].
pub(crate) fn start_error(label: &TransformLabel, message: String) -> StartError {
    StartError::Other {
        transform: label.clone(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn resolution_errors_name_the_field_and_variable_only() {
        let env: HashMap<String, String> = [(
            "AZURE_OPENAI_ENDPOINT".to_string(),
            "http://127.0.0.1:1".to_string(),
        )]
        .into();
        let ctx = BuildContext::new(Arc::new(env));
        let label = TransformLabel {
            index: 2,
            plugin: "azure_llm".into(),
        };
        let conn = AzureConnection {
            deployment_name: "gpt-4o".into(),
            endpoint: EnvString::new("${AZURE_OPENAI_ENDPOINT}"),
            api_key: SecretRef::new("${AZURE_OPENAI_KEY}"),
            api_version: "2024-10-21".into(),
        };
        let Err(e) = ctx.azure_target(&label, &conn) else {
            panic!("should fail")
        };
        assert_eq!(
            e.to_string(),
            "transforms[2] (azure_llm): api_key: environment variable `AZURE_OPENAI_KEY` is not set (set it (`export AZURE_OPENAI_KEY=...`) or give a default: `${AZURE_OPENAI_KEY:-default}`)"
        );
    }

    #[test]
    fn settings_follow_call_options() {
        let ctx = BuildContext::default();
        let s = ctx.client_settings(
            &CallOptions {
                timeout_s: 2.5,
                max_retries: 7,
                pool_size: 33,
                ..Default::default()
            },
            &Tier1::disabled(),
        );
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert_eq!(s.retry.max_retries, 7);
        assert_eq!(s.max_in_flight, 33);
    }
}
