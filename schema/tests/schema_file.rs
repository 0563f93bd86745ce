//! The committed `schema/pipeline.schema.json` is exactly what the config
//! types generate, and it is a valid draft-07 schema.

use elspeth_schema::schema_gen::{DRAFT_07, pipeline_schema, pipeline_schema_json};

#[test]
fn committed_schema_matches_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/pipeline.schema.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == pipeline_schema_json(),
        "schema/pipeline.schema.json is out of date with the config types.\n\
         Regenerate it with: cargo run -- schema --out schema/pipeline.schema.json"
    );
}

#[test]
fn schema_is_valid_draft07() {
    let schema = pipeline_schema();
    assert_eq!(schema["$schema"], DRAFT_07);
    assert!(jsonschema::draft7::meta::is_valid(&schema));
    jsonschema::draft7::new(&schema).expect("compiles as draft-07");
}

#[test]
fn per_provider_required_fields_are_in_the_schema() {
    let schema = pipeline_schema();
    let branches = schema["definitions"]["TracingConfig"]["oneOf"]
        .as_array()
        .unwrap();
    let required = |provider: &str| -> Vec<String> {
        let b = branches
            .iter()
            .find(|b| b["properties"]["provider"]["const"] == provider)
            .unwrap();
        b["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(required("azure_ai"), ["provider", "connection_string"]);
    assert_eq!(
        required("langfuse"),
        ["provider", "public_key", "secret_key"]
    );
    let validator = jsonschema::draft7::new(&schema).unwrap();
    let pipeline = |tracing: serde_json::Value| {
        serde_json::json!({
            "name": "p",
            "source": {"plugin": "jsonl", "path": "in.jsonl"},
            "transforms": [{"plugin": "openrouter_llm", "options": {
                "model": "m", "api_key": "${K}", "prompt_template": "{{ x }}",
                "tracing": tracing}}],
            "sink": {"plugin": "jsonl", "path": "out.jsonl"}
        })
    };
    assert!(validator.is_valid(&pipeline(serde_json::json!({}))));
    assert!(validator.is_valid(&pipeline(serde_json::json!({"provider": "none"}))));
    assert!(!validator.is_valid(&pipeline(serde_json::json!({"provider": "azure_ai"}))));
    assert!(!validator.is_valid(&pipeline(
        serde_json::json!({"provider": "langfuse", "public_key": "${A}"})
    )));
    assert!(validator.is_valid(&pipeline(
        serde_json::json!({"provider": "langfuse", "public_key": "${A}", "secret_key": "${B}"})
    )));
    assert!(!validator.is_valid(&pipeline(serde_json::json!({"provider": "langfus"}))));
    assert!(!validator.is_valid(&pipeline(
        serde_json::json!({"provider": "none", "host": "x"})
    )));
}
