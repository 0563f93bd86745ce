//! From the pipeline's tracing and telemetry config to the telemetry
//! crate's resolved settings: the one place where `tracing:` blocks and the
//! `telemetry:` section meet the run's environment.
//!
//! `elspeth-telemetry` reads no YAML and resolves no `${VAR}`. Here each
//! transform's [`TracingConfig`] becomes a [`TransformTracing`] and the
//! [`TelemetryConfig`] a [`Tier1Settings`], every `${VAR}` resolved against
//! the run's [`Env`]. A reference that does not resolve is a
//! [`SettingsError`] naming the field (`tracing.public_key: ...`,
//! `telemetry.exporters[0].options.endpoint: ...`) with the schema's
//! [`EnvError`], whose message already says how to fix it; the telemetry
//! crate turns it into the usual one warning and an untraced transform (or
//! a skipped exporter).

use std::time::Duration;

use elspeth_schema::config::{
    AzureAiTracingConfig, Env, LangfuseTracingConfig, MISSING_CONNECTION_STRING,
    MISSING_PUBLIC_KEY, MISSING_SECRET_KEY, OtlpExporterOptions, TelemetryConfig,
    TelemetryExporter, TracingConfig,
};
use elspeth_schema::interpolate::EnvError;
use elspeth_telemetry::langfuse::LangfuseSettings;
use elspeth_telemetry::tier1::{Tier1, Tier1Error, Tier1Options};
use elspeth_telemetry::{
    AzureAiExport, ExporterSettings, Granularity, LangfuseExport, OtlpExporterSettings,
    ProviderNotAccepted, Tier1Settings, Tracer, TracerOptions, TracingProvider, TracingRegistry,
    TransformLabel, TransformTracing, UnresolvedSettings,
};

/// A tracing or telemetry setting that could not be resolved. Never
/// contains a secret (the env error names variables, not values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A `${VAR}` reference did not resolve.
    #[error("{field}: {source}")]
    Env {
        /// The field, e.g. `tracing.public_key` or
        /// `telemetry.exporters[0].options.headers.x-api-key`.
        field: String,
        /// What is wrong with the reference, and the fix.
        #[source]
        source: EnvError,
    },
    /// A required key is missing (the validator reports it too; a config
    /// built in code can still lack it).
    #[error("{0}")]
    Missing(&'static str),
}

/// The telemetry crate's twin of a schema provider.
pub fn provider(p: elspeth_schema::config::TracingProvider) -> TracingProvider {
    use elspeth_schema::config::TracingProvider as P;
    match p {
        P::None => TracingProvider::None,
        P::AzureAi => TracingProvider::AzureAi,
        P::Langfuse => TracingProvider::Langfuse,
    }
}

fn providers(ps: &[elspeth_schema::config::TracingProvider]) -> Vec<TracingProvider> {
    ps.iter().copied().map(provider).collect()
}

/// The telemetry crate's twin of a schema granularity.
pub fn granularity(g: elspeth_schema::config::Granularity) -> Granularity {
    use elspeth_schema::config::Granularity as G;
    match g {
        G::Lifecycle => Granularity::Lifecycle,
        G::Rows => Granularity::Rows,
        G::Full => Granularity::Full,
    }
}

fn env_field<T>(field: &str, r: Result<T, EnvError>) -> Result<T, SettingsError> {
    r.map_err(|source| SettingsError::Env {
        field: field.to_string(),
        source,
    })
}

/// The tracer options of `config` (provider, content recording, sampling):
/// known without resolving anything.
pub fn tracer_options(config: &TracingConfig) -> TracerOptions {
    let (content_recording, sample_rate, trace_failures) = match config {
        TracingConfig::None => (true, 1.0, true),
        TracingConfig::AzureAi(c) => (c.enable_content_recording, 1.0, true),
        TracingConfig::Langfuse(c) => (c.enable_content_recording, c.sample_rate, c.trace_failures),
    };
    TracerOptions {
        provider: provider(config.provider()),
        content_recording,
        sample_rate,
        trace_failures,
    }
}

/// Resolves one transform's tracing block; `None` for provider `none`.
pub fn transform_tracing(config: &TracingConfig, env: &dyn Env) -> Option<TransformTracing> {
    let exporter = match config {
        TracingConfig::None => return None,
        TracingConfig::Langfuse(c) => langfuse(c, env).map(ExporterSettings::Langfuse),
        TracingConfig::AzureAi(c) => azure_ai(c, env).map(ExporterSettings::AzureAi),
    };
    Some(TransformTracing {
        options: tracer_options(config),
        exporter: exporter.map_err(UnresolvedSettings::new),
    })
}

fn langfuse(c: &LangfuseTracingConfig, env: &dyn Env) -> Result<LangfuseExport, SettingsError> {
    let public_key = match &c.public_key {
        Some(k) => env_field("tracing.public_key", k.resolve(env))?,
        None => return Err(SettingsError::Missing(MISSING_PUBLIC_KEY)),
    };
    let secret_key = match &c.secret_key {
        Some(k) => env_field("tracing.secret_key", k.resolve(env))?,
        None => return Err(SettingsError::Missing(MISSING_SECRET_KEY)),
    };
    let host = env_field("tracing.host", c.host.resolve(env))?;
    let mut settings = LangfuseSettings::new(host, public_key, secret_key);
    settings.environment = c.environment.clone();
    settings.release = c.release.clone();
    settings.tags = c.tags.clone();
    Ok(LangfuseExport {
        settings,
        max_queue: c.max_queue,
        flush_interval: Duration::from_millis(c.flush_interval_ms),
    })
}

fn azure_ai(c: &AzureAiTracingConfig, env: &dyn Env) -> Result<AzureAiExport, SettingsError> {
    let Some(raw) = &c.connection_string else {
        return Err(SettingsError::Missing(MISSING_CONNECTION_STRING));
    };
    Ok(AzureAiExport {
        connection_string: env_field("tracing.connection_string", raw.resolve(env))?,
        live_metrics: c.enable_live_metrics,
    })
}

/// Refuses a provider the transform does not accept (`accepted`, in the
/// schema's terms), with the registry's message.
pub fn check_accepted(
    transform: &TransformLabel,
    config: Option<&TracingConfig>,
    accepted: &[elspeth_schema::config::TracingProvider],
) -> Result<(), ProviderNotAccepted> {
    match config {
        Some(c) => {
            ProviderNotAccepted::check(transform, provider(c.provider()), &providers(accepted))
        }
        None => Ok(()),
    }
}

/// Sets up the tracer of one transform from its tracing block (`None`:
/// untraced), resolving `${VAR}`s against `env`.
///
/// A provider the transform does not accept is an error. An incomplete
/// block logs one warning per missing key ("Tracing configuration error;
/// running untraced") and gives a disabled tracer; an unresolvable
/// reference or an exporter that cannot start logs one warning in the
/// registry and gives a disabled tracer too.
pub fn tracer_for(
    registry: &TracingRegistry,
    transform: &TransformLabel,
    config: Option<&TracingConfig>,
    accepted: &[elspeth_schema::config::TracingProvider],
    env: &dyn Env,
) -> Result<Tracer, ProviderNotAccepted> {
    let Some(config) = config else {
        return Ok(Tracer::disabled());
    };
    check_accepted(transform, Some(config), accepted)?;
    let errors = config.completeness_errors();
    if !errors.is_empty() {
        for error in errors {
            tracing::warn!(transform = %transform, %error, "Tracing configuration error; running untraced");
        }
        return Ok(Tracer::disabled());
    }
    registry.tracer_for(
        transform,
        transform_tracing(config, env),
        &providers(accepted),
    )
}

/// Resolves the `telemetry:` section; `None` when it is disabled.
pub fn tier1_settings(config: &TelemetryConfig, env: &dyn Env) -> Option<Tier1Settings> {
    if !config.enabled {
        return None;
    }
    Some(Tier1Settings {
        granularity: granularity(config.granularity),
        exporters: config
            .exporters
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let TelemetryExporter::Otlp(o) = e;
                otlp(i, o, env).map_err(UnresolvedSettings::new)
            })
            .collect(),
    })
}

fn otlp(
    index: usize,
    o: &OtlpExporterOptions,
    env: &dyn Env,
) -> Result<OtlpExporterSettings, SettingsError> {
    let endpoint = env_field(
        &format!("telemetry.exporters[{index}].options.endpoint"),
        o.endpoint.resolve(env),
    )?;
    let mut headers = Vec::with_capacity(o.headers.len());
    for (name, value) in &o.headers {
        let value = env_field(
            &format!("telemetry.exporters[{index}].options.headers.{name}"),
            value.resolve(env),
        )?;
        headers.push((name.clone(), value));
    }
    Ok(OtlpExporterSettings {
        endpoint,
        headers,
        service_name: o.service_name.clone(),
    })
}

/// Tier 1 telemetry from the `telemetry:` section with the default
/// tuning. Problems log one warning and give a disabled handle; a disabled
/// section gives a disabled handle. Call it from inside the Tokio runtime.
pub fn tier1(config: &TelemetryConfig, env: &dyn Env) -> Tier1 {
    tier1_with(config, env, Tier1Options::default())
}

/// [`tier1`] with explicit tuning.
pub fn tier1_with(config: &TelemetryConfig, env: &dyn Env, options: Tier1Options) -> Tier1 {
    match tier1_settings(config, env) {
        Some(settings) => Tier1::from_settings_with(settings, options),
        None => Tier1::disabled(),
    }
}

/// Like [`tier1_with`] but returns the problem instead of logging it.
pub fn try_tier1(
    config: &TelemetryConfig,
    env: &dyn Env,
    options: Tier1Options,
) -> Result<Tier1, Tier1Error> {
    match tier1_settings(config, env) {
        Some(settings) => Tier1::try_from_settings(settings, options),
        None => Ok(Tier1::disabled()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn tracing(v: serde_json::Value) -> TracingConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn langfuse_block_resolves_every_reference() {
        let c = tracing(json!({
            "provider": "langfuse", "public_key": "${PK}", "secret_key": "${SK}",
            "host": "${HOST:-http://127.0.0.1:3000}", "sample_rate": 0.5,
            "enable_content_recording": false, "environment": "staging",
            "tags": ["a"], "max_queue": 7, "flush_interval_ms": 20
        }));
        let t = transform_tracing(&c, &env(&[("PK", "pk-lf-1"), ("SK", "sk-lf-1")])).unwrap();
        assert_eq!(t.options.provider, TracingProvider::Langfuse);
        assert!(!t.options.content_recording);
        assert_eq!(t.options.sample_rate, 0.5);
        let Ok(ExporterSettings::Langfuse(l)) = t.exporter else {
            panic!("{:?}", t.exporter);
        };
        assert_eq!(l.settings.host, "http://127.0.0.1:3000");
        assert_eq!(l.settings.public_key, "pk-lf-1");
        assert_eq!(l.settings.secret_key.expose_secret(), "sk-lf-1");
        assert_eq!(l.settings.environment.as_deref(), Some("staging"));
        assert_eq!(l.settings.tags, ["a"]);
        assert_eq!(
            (l.max_queue, l.flush_interval),
            (7, Duration::from_millis(20))
        );
    }

    #[test]
    fn an_unset_variable_names_the_field_and_the_fix() {
        let c = tracing(
            json!({"provider": "langfuse", "public_key": "${NOPE_PK}", "secret_key": "sk"}),
        );
        let t = transform_tracing(&c, &env(&[])).unwrap();
        let e = t.exporter.unwrap_err().to_string();
        assert_eq!(
            e,
            "tracing.public_key: environment variable `NOPE_PK` is not set (set it (`export NOPE_PK=...`) or give a default: `${NOPE_PK:-default}`)"
        );
        let c = tracing(json!({"provider": "azure_ai", "connection_string": "${NOPE_CS}"}));
        let e = transform_tracing(&c, &env(&[]))
            .unwrap()
            .exporter
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("tracing.connection_string: environment variable `NOPE_CS`"),
            "{e}"
        );
    }

    #[test]
    fn none_and_missing_keys() {
        assert!(transform_tracing(&TracingConfig::None, &env(&[])).is_none());
        let c = TracingConfig::AzureAi(AzureAiTracingConfig::default());
        let e = transform_tracing(&c, &env(&[]))
            .unwrap()
            .exporter
            .unwrap_err();
        assert_eq!(e.to_string(), MISSING_CONNECTION_STRING);
    }

    #[test]
    fn accepted_providers_are_mapped() {
        use elspeth_schema::config::TracingProvider as P;
        let label = TransformLabel {
            index: 1,
            plugin: "custom".into(),
        };
        let c = tracing(json!({"provider": "azure_ai", "connection_string": "x"}));
        let e = check_accepted(&label, Some(&c), &[P::Langfuse]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "transforms[1] (custom) does not support tracing provider `azure_ai`; it accepts: langfuse"
        );
        assert!(check_accepted(&label, Some(&c), &[P::AzureAi]).is_ok());
        assert!(check_accepted(&label, Some(&TracingConfig::None), &[]).is_ok());
        assert!(check_accepted(&label, None, &[]).is_ok());
    }

    #[test]
    fn telemetry_section_resolves_endpoint_and_headers() {
        let c: TelemetryConfig = serde_json::from_value(json!({
            "granularity": "rows",
            "exporters": [
                {"name": "otlp", "options": {"endpoint": "${EP}", "headers": {"x-api-key": "${KEY}"}}},
                {"name": "otlp", "options": {"endpoint": "http://c:4318", "headers": {"x-api-key": "${UNSET_KEY}"}}}
            ]
        }))
        .unwrap();
        let s = tier1_settings(&c, &env(&[("EP", "http://a:4318"), ("KEY", "k")])).unwrap();
        assert_eq!(s.granularity, Granularity::Rows);
        let first = s.exporters[0].as_ref().unwrap();
        assert_eq!(first.endpoint, "http://a:4318");
        assert_eq!(first.headers[0].0, "x-api-key");
        assert_eq!(first.headers[0].1.expose_secret(), "k");
        assert_eq!(first.service_name, "elspeth");
        let second = s.exporters[1].as_ref().unwrap_err().to_string();
        assert!(
            second.starts_with(
                "telemetry.exporters[1].options.headers.x-api-key: environment variable `UNSET_KEY` is not set"
            ),
            "{second}"
        );
        let off: TelemetryConfig = serde_json::from_value(json!({"enabled": false})).unwrap();
        assert!(tier1_settings(&off, &env(&[])).is_none());
    }
}
