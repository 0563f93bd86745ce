//! Helpers of the tests that trace from pipeline config: the telemetry
//! crate's test helpers, plus a registry that sets tracers up the way the
//! runtime does (each `tracing:` block resolved by `tracing_settings`
//! against the test's environment).
#![allow(dead_code)]

#[path = "../../../telemetry/tests/common/mod.rs"]
mod telemetry_common;

use std::collections::HashMap;
use std::ops::Deref;

use elspeth_runtime::tracing_settings;
use elspeth_schema::config::{TracingConfig, TracingProvider};
use elspeth_telemetry::{ProviderNotAccepted, Tracer, TracingRegistry, TransformLabel};
pub(crate) use telemetry_common::*;

/// A [`TracingRegistry`] and the environment `${VAR}`s resolve against.
pub(crate) struct Registry {
    inner: TracingRegistry,
    env: HashMap<String, String>,
}

impl Registry {
    /// `inner`, resolving against `env`.
    pub(crate) fn new(env: HashMap<String, String>, inner: TracingRegistry) -> Self {
        Self { inner, env }
    }

    /// The tracer of one transform, as the runtime sets it up.
    pub(crate) fn tracer_for(
        &self,
        transform: &TransformLabel,
        config: Option<&TracingConfig>,
        accepted: &[TracingProvider],
    ) -> Result<Tracer, ProviderNotAccepted> {
        tracing_settings::tracer_for(&self.inner, transform, config, accepted, &self.env)
    }
}

impl Deref for Registry {
    type Target = TracingRegistry;

    fn deref(&self) -> &TracingRegistry {
        &self.inner
    }
}

/// The environment of `pairs`.
pub(crate) fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
