//! Shared helpers of the runtime's integration tests: the mock backends, a
//! started transform with an in-memory trace sink, temp folders.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use elspeth_mock::MockServer;
use elspeth_mock::azure::AzureMock;
use elspeth_mock::openrouter::{API_PREFIX, OpenRouterMock};
use elspeth_runtime::plan::TransformSpec;
use elspeth_runtime::usage::UsageMeter;
use elspeth_runtime::{
    BatchContext, BatchRow, DynTransform, Row, RowContext, RowError, StartContext,
};
use elspeth_schema::config::TransformConfig;
use elspeth_telemetry::record::SpanRecord;
use elspeth_telemetry::{InMemorySink, Tracer, TransformLabel};
use serde_json::{Value, json};

pub(crate) const AZURE_KEY: &str = "test-azure-key-0123456789";
pub(crate) const OPENROUTER_KEY: &str = "sk-or-test-0123456789";

/// Both LLM mocks, running.
pub(crate) struct Mocks {
    pub azure: AzureMock,
    pub openrouter: OpenRouterMock,
    pub azure_server: MockServer,
    pub openrouter_server: MockServer,
}

impl Mocks {
    pub(crate) async fn start() -> Self {
        let azure = AzureMock::new(AZURE_KEY);
        let openrouter = OpenRouterMock::new(OPENROUTER_KEY);
        let azure_server = azure.start(0).await.unwrap();
        let openrouter_server = openrouter.start(0).await.unwrap();
        Self {
            azure,
            openrouter,
            azure_server,
            openrouter_server,
        }
    }

    /// The variables the test configs reference.
    pub(crate) fn env(&self) -> HashMap<String, String> {
        [
            ("AZURE_OPENAI_ENDPOINT", self.azure_server.url()),
            ("AZURE_OPENAI_KEY", AZURE_KEY.to_string()),
            (
                "OPENROUTER_BASE_URL",
                format!("{}{API_PREFIX}", self.openrouter_server.url()),
            ),
            ("OPENROUTER_API_KEY", OPENROUTER_KEY.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// The Langfuse tracing block used by traced tests (the fixed registry
/// records into memory whatever the provider).
pub(crate) fn langfuse() -> Value {
    json!({"provider": "langfuse", "public_key": "${LANGFUSE_PUBLIC_KEY:-pk-lf-test}",
           "secret_key": "${LANGFUSE_SECRET_KEY:-sk-lf-test}"})
}

/// Connection options of `plugin` pointing at the mocks.
pub(crate) fn connection(plugin: &str) -> Value {
    if plugin.starts_with("azure") {
        json!({"deployment_name": "gpt-4o", "endpoint": "${AZURE_OPENAI_ENDPOINT}", "api_key": "${AZURE_OPENAI_KEY}"})
    } else {
        json!({"model": "openai/gpt-4o-mini", "api_key": "${OPENROUTER_API_KEY}", "base_url": "${OPENROUTER_BASE_URL}",
               "http_referer": "https://example.org/elspeth", "app_title": "elspeth tests"})
    }
}

/// A pipeline transform (YAML shape) of `plugin` against the mocks that
/// classifies `{{ text }}` into `<plugin>_out`, traced by `tracing`.
pub(crate) fn traced_classifier(plugin: &str, tracing: Value) -> Value {
    let mut o = connection(plugin);
    o["prompt_template"] = json!("Classify: {{ text }}");
    o["output_field"] = json!(format!("{plugin}_out"));
    o["tracing"] = tracing;
    json!({"plugin": plugin, "options": o})
}

/// A transform config: connection + `options` for `plugin`.
pub(crate) fn config(plugin: &str, options: Value) -> TransformConfig {
    let mut all = connection(plugin);
    for (k, v) in options.as_object().cloned().unwrap_or_default() {
        all[k] = v;
    }
    serde_json::from_value(json!({"plugin": plugin, "options": all}))
        .unwrap_or_else(|e| panic!("bad test config: {e}"))
}

/// A started transform with its tracer and trace sink.
pub(crate) struct Harness {
    pub transform: Box<dyn DynTransform>,
    pub tracer: Tracer,
    pub sink: InMemorySink,
    pub meter: Arc<UsageMeter>,
}

impl Harness {
    pub(crate) async fn start(
        config: &TransformConfig,
        env: HashMap<String, String>,
        checkpoint_dir: Option<PathBuf>,
    ) -> Self {
        Self::try_start(config, env, checkpoint_dir)
            .await
            .unwrap_or_else(|e| panic!("on_start failed: {e}"))
    }

    pub(crate) async fn try_start(
        config: &TransformConfig,
        env: HashMap<String, String>,
        checkpoint_dir: Option<PathBuf>,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        // Unresolvable references are found by the plan, before any start.
        let mut transform = TransformSpec::resolve(config, 0, &env)?.build();
        let meter = Arc::new(UsageMeter::new());
        let (registry, sink) = elspeth_test_support::memory_tracing();
        let mut start = StartContext::new(
            TransformLabel {
                index: 0,
                plugin: config.plugin().into(),
            },
            registry,
        );
        start.env = Arc::new(env);
        start.usage = meter.clone();
        start.backoff_base = Duration::from_millis(5);
        start.backoff_max = Duration::from_millis(20);
        start.checkpoint_dir = checkpoint_dir;
        let tracer = transform.on_start(&start).await?;
        Ok(Self {
            transform,
            tracer,
            sink,
            meter,
        })
    }

    pub(crate) async fn process(&self, index: u64, row: Value) -> Result<Row, RowError> {
        let token = format!("row-{index}");
        self.transform
            .process(
                row.as_object().cloned().unwrap(),
                RowContext::new(&token, index, &self.tracer),
            )
            .await
    }

    pub(crate) async fn process_batch(&self, rows: Vec<Value>) -> Vec<Result<Row, RowError>> {
        let rows = rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| BatchRow {
                row: r.as_object().cloned().unwrap(),
                token_id: format!("row-{i}"),
                index: i as u64,
            })
            .collect();
        self.transform
            .process_batch(rows, BatchContext::new(&self.tracer))
            .await
    }

    pub(crate) fn spans(&self) -> Vec<SpanRecord> {
        self.sink.spans()
    }
}

/// A fresh folder under the system temp dir.
pub(crate) fn tmpdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "elspeth-test-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The row as a JSON value.
pub(crate) fn value(row: Row) -> Value {
    Value::Object(row)
}

/// `(key, value)` pairs of trace metadata, as JSON.
pub(crate) fn meta(pairs: &[elspeth_telemetry::record::MetaEntry]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_json()))
            .collect(),
    )
}
