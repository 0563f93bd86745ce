//! Generation of the pipeline JSON Schema (draft-07) from the config types.

use schemars::generate::SchemaSettings;

use crate::config::PipelineConfig;

/// The `$id` of the generated schema.
pub const SCHEMA_ID: &str = "https://elspeth.dev/schema/pipeline.schema.json";

/// Generates the draft-07 JSON Schema of a pipeline file.
///
/// ```
/// let schema = elspeth_schema::schema_gen::pipeline_schema();
/// assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
/// ```
pub fn pipeline_schema() -> serde_json::Value {
    let settings = SchemaSettings::draft07();
    let generator = settings.into_generator();
    let schema = generator.into_root_schema_for::<PipelineConfig>();
    serde_json::to_value(schema).expect("a schema is always JSON")
}

/// The schema as pretty-printed JSON with a trailing newline, as committed in
/// `schema/pipeline.schema.json`.
pub fn pipeline_schema_json() -> String {
    let mut s = serde_json::to_string_pretty(&pipeline_schema()).expect("a schema is always JSON");
    s.push('\n');
    s
}
