//! The generated pipeline both benches validate: 1,000 transforms cycling
//! through the six plugins and the three tracing providers.

use std::fmt::Write as _;
use std::path::PathBuf;

use elspeth_schema::config::TransformConfig;

const PLUGINS: &[&str] = &TransformConfig::PLUGINS;

/// A valid pipeline with `n` transforms.
pub(crate) fn pipeline(n: usize) -> String {
    let mut y = String::with_capacity(n * 700);
    y.push_str("# yaml-language-server: $schema=../schema/pipeline.schema.json\n");
    y.push_str("name: bench-pipeline\nsource: { plugin: jsonl, path: data/tickets.jsonl }\n");
    y.push_str("telemetry:\n  enabled: true\n  exporters:\n    - { name: otlp, options: { endpoint: \"http://localhost:4318\" } }\n");
    y.push_str("transforms:\n");
    for i in 0..n {
        let plugin = PLUGINS[i % PLUGINS.len()];
        let _ = writeln!(y, "  - plugin: {plugin}\n    options:");
        if plugin.starts_with("azure") {
            y.push_str("      deployment_name: gpt-4o-mini\n      endpoint: ${AZURE_OPENAI_ENDPOINT}\n      api_key: ${AZURE_OPENAI_KEY}\n      api_version: \"2024-10-21\"\n");
        } else {
            y.push_str("      model: openai/gpt-4o-mini\n      api_key: ${OPENROUTER_API_KEY}\n");
        }
        if plugin.contains("multi_query") {
            y.push_str("      prompt_template: \"Rate {{ subject }} for {{ criterion.name }} ({{ criterion.scale }}) as {{ team.name }}\"\n");
            y.push_str("      response_format: json\n      output_fields: [score, reason]\n");
            y.push_str("      queries:\n        criterion:\n          - { name: urgency, vars: { scale: \"1-5\" } }\n          - { name: clarity, vars: { scale: \"1-5\" } }\n        team:\n          - { name: support }\n          - { name: product }\n");
        } else {
            let _ = writeln!(
                y,
                "      prompt_template: \"Classify: {{{{ subject }}}} {{{{ body }}}}\"\n      output_field: category_{i}"
            );
        }
        y.push_str("      temperature: 0.2\n      max_tokens: 100\n      timeout_s: 30\n      max_retries: 3\n");
        if plugin.contains("batch") {
            y.push_str("      batch_size: 100\n");
        }
        match (i / PLUGINS.len()) % 3 {
            0 => {}
            1 => y.push_str("      tracing:\n        provider: azure_ai\n        connection_string: ${APPLICATIONINSIGHTS_CONNECTION_STRING}\n"),
            _ => y.push_str("      tracing:\n        provider: langfuse\n        public_key: ${LANGFUSE_PUBLIC_KEY}\n        secret_key: ${LANGFUSE_SECRET_KEY}\n        host: https://cloud.langfuse.com\n        environment: production\n        tags: [bench]\n        sample_rate: 0.5\n"),
        }
    }
    y.push_str("sink: { plugin: jsonl, path: out/bench.jsonl }\n");
    y
}

/// Writes the 1,000-transform pipeline under `target/` and returns its path.
pub(crate) fn pipeline_file() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).expect("create target/bench-data");
    let path = dir.join("pipeline-1000.yaml");
    std::fs::write(&path, pipeline(1000)).expect("write the bench pipeline");
    // The source exists, so validation also checks every template's fields
    // against its rows (as it does for a user's pipeline).
    std::fs::create_dir_all(dir.join("data")).expect("create target/bench-data/data");
    std::fs::write(
        dir.join("data/tickets.jsonl"),
        "{\"subject\": \"Refund\", \"body\": \"I was charged twice\"}\n",
    )
    .expect("write the bench source");
    path
}
