//! The six built-in LLM transforms and the registry that builds them from
//! the `transforms:` list.
//!
//! | plugin | backend | per row |
//! |---|---|---|
//! | `azure_llm` | Azure OpenAI chat | one call |
//! | `azure_multi_query_llm` | Azure OpenAI chat | one call per query of the matrix |
//! | `openrouter_llm` | OpenRouter | one call |
//! | `openrouter_multi_query_llm` | OpenRouter | one call per query of the matrix |
//! | `azure_batch_llm` | Azure OpenAI Batch API | one line of a job of `batch_size` rows |
//! | `openrouter_batch_llm` | OpenRouter | one call, rows in chunks of `batch_size` |
//!
//! Each is written with `#[llm_transform(tracing)]`: the attribute adds the
//! traced lifecycle; the files here hold only the calls.
//!
//! Common behaviour ([`prompt`]): `prompt_template` is a strict Handlebars
//! template over the row's fields (a missing field fails the row with kind
//! `template`, no call is made); `response_format: json` asks for a JSON
//! object (adding "Reply with a JSON object." to the system prompt when no
//! message mentions JSON, as the APIs require) and puts its keys (or only
//! `output_fields`) into the row; text replies go to `output_field`.
//! Multi-query replies are prefixed `<query>_`. A failed call (after
//! retries), a content-filter answer or an unparsable reply fails the row,
//! never the run.

pub mod azure_batch;
pub mod azure_llm;
pub mod azure_multi_query;
mod chat_core;
pub mod checkpoint;
mod context;
pub mod matrix;
pub mod openrouter_batch;
pub mod openrouter_llm;
pub mod openrouter_multi_query;
pub mod prompt;

use elspeth_schema::config::TransformConfig;
use elspeth_telemetry::TransformLabel;

pub use azure_batch::AzureBatchLlm;
pub use azure_llm::AzureLlm;
pub use azure_multi_query::AzureMultiQueryLlm;
pub use context::BuildContext;
pub use openrouter_batch::OpenRouterBatchLlm;
pub use openrouter_llm::OpenRouterLlm;
pub use openrouter_multi_query::OpenRouterMultiQueryLlm;

use crate::store::Fingerprint;
use crate::transform::DynTransform;

/// A transform's config cannot be built (bad template, bad query matrix...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{transform}: {message}")]
pub struct BuildError {
    /// The transform.
    pub transform: TransformLabel,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A built transform, ready for `on_start`.
pub struct Built {
    /// The transform.
    pub transform: Box<dyn DynTransform>,
    /// Rows the runner hands over per chunk when the transform works per
    /// row but in chunks (`openrouter_batch_llm`); `None` otherwise.
    pub chunk_rows: Option<usize>,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built")
            .field("plugin", &self.transform.plugin())
            .field("chunk_rows", &self.chunk_rows)
            .finish()
    }
}

/// Builds transform number `index` of a pipeline from its config. No I/O:
/// connections are resolved and clients created in `on_start`.
///
/// ```
/// use elspeth_runtime::transforms::{build, BuildContext};
/// use elspeth_schema::config::TransformConfig;
/// let cfg: TransformConfig = serde_json::from_value(serde_json::json!({
///     "plugin": "openrouter_llm",
///     "options": {"model": "openai/gpt-4o-mini", "api_key": "${OPENROUTER_API_KEY}",
///                 "prompt_template": "Classify: {{ text }}"}
/// })).unwrap();
/// let built = build(&cfg, 0, &BuildContext::default()).unwrap();
/// assert_eq!(built.transform.plugin(), "openrouter_llm");
/// assert_eq!(built.transform.concurrency(), 10);
/// ```
pub fn build(
    config: &TransformConfig,
    index: usize,
    ctx: &BuildContext,
) -> Result<Built, BuildError> {
    let error = |message: String| BuildError {
        transform: TransformLabel {
            index,
            plugin: config.plugin().to_string(),
        },
        message,
    };
    let per_row = |t: Box<dyn DynTransform>| Built {
        transform: t,
        chunk_rows: None,
    };
    Ok(match config {
        TransformConfig::AzureLlm(o) => {
            per_row(Box::new(AzureLlm::new(o.clone(), ctx).map_err(error)?))
        }
        TransformConfig::AzureMultiQueryLlm(o) => per_row(Box::new(
            AzureMultiQueryLlm::new(o.clone(), ctx).map_err(error)?,
        )),
        TransformConfig::OpenrouterLlm(o) => {
            per_row(Box::new(OpenRouterLlm::new(o.clone(), ctx).map_err(error)?))
        }
        TransformConfig::OpenrouterMultiQueryLlm(o) => per_row(Box::new(
            OpenRouterMultiQueryLlm::new(o.clone(), ctx).map_err(error)?,
        )),
        TransformConfig::AzureBatchLlm(o) => {
            per_row(Box::new(AzureBatchLlm::new(o.clone(), ctx).map_err(error)?))
        }
        TransformConfig::OpenrouterBatchLlm(o) => {
            let t = OpenRouterBatchLlm::new(o.clone(), ctx).map_err(error)?;
            let chunk = t.chunk_rows();
            Built {
                transform: Box::new(t),
                chunk_rows: Some(chunk),
            }
        }
    })
}

/// Option keys that change how a transform runs or merges, never what it
/// asks: left out of its [`fingerprint`], so that tuning them keeps the
/// stored results. Keys are left out because a fingerprint never covers a
/// secret.
const NOT_FINGERPRINTED: [&str; 9] = [
    "tracing",
    "api_key",
    "pool_size",
    "timeout_s",
    "max_retries",
    "poll_interval_s",
    "batch_size",
    "output_field",
    "output_fields",
];

/// The fingerprint of what transform `config` calls: its plugin and options
/// (templates, system prompt, model or deployment, API version, sampling,
/// response format, queries), with `endpoint` / `base_url` resolved through
/// `env`. Everything in [`NOT_FINGERPRINTED`] is left out. On a loopback
/// host the port is left out too: local stand-ins such as `--with-mocks`
/// start on a new port each time, and their results should still be reused.
pub fn fingerprint(config: &TransformConfig, env: &dyn elspeth_schema::config::Env) -> Fingerprint {
    let mut value = serde_json::to_value(config).unwrap_or_default();
    strip(&mut value, env);
    Fingerprint::of_parts(&[("transform", &value.to_string())])
}

fn strip(value: &mut serde_json::Value, env: &dyn elspeth_schema::config::Env) {
    match value {
        serde_json::Value::Object(map) => {
            for key in NOT_FINGERPRINTED {
                map.remove(key);
            }
            for (key, v) in map.iter_mut() {
                if let ("endpoint" | "base_url", serde_json::Value::String(raw)) =
                    (key.as_str(), &*v)
                {
                    let resolved = elspeth_schema::config::EnvString::new(raw.clone())
                        .resolve(env)
                        .unwrap_or_else(|_| raw.clone());
                    *v = serde_json::Value::String(without_loopback_port(&resolved));
                } else {
                    strip(v, env);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| strip(v, env)),
        _ => {}
    }
}

/// `http://127.0.0.1:41234/x` → `http://127.0.0.1/x`; other URLs unchanged.
fn without_loopback_port(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => return url.to_string(),
    };
    if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        format!("{scheme}://{host}{path}")
    } else {
        url.to_string()
    }
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;
    use elspeth_schema::config::ProcessEnv;

    fn azure(options: serde_json::Value) -> TransformConfig {
        let mut o = serde_json::json!({
            "deployment_name": "gpt-4o", "endpoint": "https://res.openai.azure.com",
            "api_key": "${AZURE_OPENAI_KEY}", "prompt_template": "Classify: {{ text }}"
        });
        o.as_object_mut()
            .unwrap()
            .extend(options.as_object().unwrap().clone());
        serde_json::from_value(serde_json::json!({"plugin": "azure_llm", "options": o})).unwrap()
    }

    #[test]
    fn what_is_asked_changes_it_and_how_it_runs_does_not() {
        let base = fingerprint(&azure(serde_json::json!({})), &ProcessEnv);
        for same in [
            serde_json::json!({"pool_size": 3}),
            serde_json::json!({"api_key": "${OTHER_KEY}"}),
            serde_json::json!({"max_retries": 9}),
        ] {
            assert_eq!(
                fingerprint(&azure(same.clone()), &ProcessEnv),
                base,
                "{same}"
            );
        }
        for different in [
            serde_json::json!({"deployment_name": "gpt-4.1"}),
            serde_json::json!({"endpoint": "https://other.openai.azure.com"}),
            serde_json::json!({"api_version": "2025-01-01-preview"}),
            serde_json::json!({"temperature": 0.5}),
        ] {
            assert_ne!(
                fingerprint(&azure(different.clone()), &ProcessEnv),
                base,
                "{different}"
            );
        }
    }

    #[test]
    fn only_a_loopback_port_is_dropped() {
        assert_eq!(
            without_loopback_port("http://127.0.0.1:41234/openai"),
            "http://127.0.0.1/openai"
        );
        assert_eq!(
            without_loopback_port("http://localhost:8"),
            "http://localhost"
        );
        assert_eq!(
            without_loopback_port("https://res.openai.azure.com:443/x"),
            "https://res.openai.azure.com:443/x"
        );
        assert_eq!(without_loopback_port("not a url"), "not a url");
    }
}
