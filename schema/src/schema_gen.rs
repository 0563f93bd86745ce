//! Generation of the pipeline JSON Schema (draft-07) from the config types.
//!
//! The schema is what editors (yaml-language-server) and the validator use,
//! so it is post-processed for both:
//! - `oneOf` lists of string constants (unit enums with doc comments)
//!   become a plain `enum`, with the variants' docs folded into the
//!   description;
//! - non-standard `format`s that schemars emits for Rust number types
//!   (`double`, `uint32`, ...) are dropped;
//! - the tag of an internally or adjacently tagged enum (`plugin`, `name`)
//!   and its `options` get a description from their branch (schemars
//!   leaves them bare, so editors would show nothing on hover);
//! - only draft-07 keywords are used (`definitions`, `$ref`), and
//!   `definitions` appear once, at the root.
//!
//! The result is committed at `schema/pipeline.schema.json`; regenerate it
//! with `cargo run -- schema --out schema/pipeline.schema.json`.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::config::PipelineConfig;

/// The `$id` of the generated schema.
pub const SCHEMA_ID: &str = "https://elspeth.dev/schema/pipeline.schema.json";

/// The draft-07 meta-schema URI the schema declares.
pub const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

/// Generates the draft-07 JSON Schema of a pipeline file.
///
/// ```
/// let schema = elspeth_schema::schema_gen::pipeline_schema();
/// assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
/// assert_eq!(schema["additionalProperties"], false);
/// ```
pub fn pipeline_schema() -> Value {
    let settings = SchemaSettings::draft07();
    let generator = settings.into_generator();
    let schema = generator.into_root_schema_for::<PipelineConfig>();
    let mut value = serde_json::to_value(schema).expect("a schema is always JSON");
    postprocess(&mut value);
    value
}

/// The schema as pretty-printed JSON with a trailing newline, as committed in
/// `schema/pipeline.schema.json`.
pub fn pipeline_schema_json() -> String {
    let mut s = serde_json::to_string_pretty(&pipeline_schema()).expect("a schema is always JSON");
    s.push('\n');
    s
}

/// Formats JSON Schema draft-07 defines; others are dropped.
const STANDARD_FORMATS: [&str; 17] = [
    "date-time",
    "date",
    "time",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

fn postprocess(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                postprocess(child);
            }
            if map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !STANDARD_FORMATS.contains(&f))
            {
                map.remove("format");
            }
            const_one_of_to_enum(map);
            describe_tagged_branches(map);
        }
        Value::Array(items) => items.iter_mut().for_each(postprocess),
        _ => {}
    }
}

/// `oneOf: [{const: a, description}, ...]` (all strings) → `enum: [a, ...]`.
/// When only some branches are string constants (an enum with unit and
/// newtype variants, e.g. `text | json | {json_schema: ...}`), they become
/// one `enum` branch, first, and every variant is listed in the
/// description.
fn const_one_of_to_enum(map: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = map.get("oneOf") else {
        return;
    };
    let is_const = |b: &Value| {
        b.get("const").is_some_and(Value::is_string)
            && b.as_object().is_some_and(|o| {
                o.keys()
                    .all(|k| matches!(k.as_str(), "const" | "type" | "description"))
            })
    };
    let consts = branches.iter().filter(|b| is_const(b)).count();
    if consts > 0 && consts < branches.len() {
        merge_const_branches(map);
        return;
    }
    let mut values = Vec::new();
    let mut docs = Vec::new();
    for b in branches {
        let Some(c) = b.get("const").and_then(Value::as_str) else {
            return;
        };
        let extra = b.as_object().is_some_and(|o| {
            o.keys()
                .any(|k| !matches!(k.as_str(), "const" | "type" | "description"))
        });
        if extra {
            return;
        }
        values.push(Value::from(c));
        if let Some(d) = b.get("description").and_then(Value::as_str) {
            docs.push(format!("- `{c}`: {d}"));
        }
    }
    map.remove("oneOf");
    map.insert("type".into(), "string".into());
    map.insert("enum".into(), Value::Array(values));
    append_docs(map, &docs);
}

/// The mixed case of [`const_one_of_to_enum`]: string-constant branches
/// merged into one leading `enum` branch; an externally tagged variant
/// (`{type: object, properties: {tag: {$ref}}, required: [tag]}`) gets its
/// branch's description on the tag property (editors show it on hover).
fn merge_const_branches(map: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = map.remove("oneOf") else {
        return;
    };
    let (mut values, mut docs, mut others) = (Vec::new(), Vec::new(), Vec::new());
    let mut tagged_docs = Vec::new();
    for mut b in branches {
        if let Some(c) = b.get("const").and_then(Value::as_str).map(str::to_string) {
            if let Some(d) = b.get("description").and_then(Value::as_str) {
                docs.push(format!("- `{c}`: {d}"));
            }
            values.push(Value::from(c));
            continue;
        }
        if let Some(obj) = b.as_object_mut() {
            let description = obj.get("description").cloned();
            if let (Some(Value::Object(props)), Some(description)) =
                (obj.get_mut("properties"), description)
                && props.len() == 1
                && let Some((tag, Value::Object(p))) = props.iter_mut().next()
            {
                if let Some(d) = description.as_str() {
                    tagged_docs.push(format!("- `{tag}`: {d}"));
                }
                if !p.contains_key("description")
                    && let Some(target) = p.remove("$ref")
                {
                    p.insert("description".into(), description);
                    p.insert(
                        "allOf".into(),
                        Value::Array(vec![serde_json::json!({ "$ref": target })]),
                    );
                }
            }
        }
        others.push(b);
    }
    let enum_branch = serde_json::json!({
        "type": "string",
        "enum": values,
        "description": docs.join("\n"),
    });
    docs.extend(tagged_docs);
    let mut all = vec![enum_branch];
    all.extend(others);
    map.insert("oneOf".into(), Value::Array(all));
    append_docs(map, &docs);
}

/// In each `oneOf` branch, a property holding a string `const` (the enum's
/// tag) and an `options` `$ref` without a description get one built from
/// the branch's own description.
fn describe_tagged_branches(map: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = map.get_mut("oneOf") else {
        return;
    };
    // The tag key and the values it takes, for "one of ..." in each branch.
    let tags: Vec<(String, String)> = branches
        .iter()
        .filter_map(|b| {
            b.get("properties")?
                .as_object()?
                .iter()
                .find_map(|(k, p)| Some((k.clone(), p.get("const")?.as_str()?.to_string())))
        })
        .collect();
    for branch in branches.iter_mut() {
        let Some(obj) = branch.as_object_mut() else {
            continue;
        };
        let summary = obj
            .get("description")
            .and_then(Value::as_str)
            .map(|d| d.trim_end_matches('.').to_string());
        let Some(Value::Object(props)) = obj.get_mut("properties") else {
            continue;
        };
        let Some((tag, value)) = props
            .iter()
            .find_map(|(k, p)| Some((k.clone(), p.get("const")?.as_str()?.to_string())))
        else {
            continue;
        };
        let values: Vec<&str> = tags
            .iter()
            .filter(|(k, _)| *k == tag)
            .map(|(_, v)| v.as_str())
            .collect();
        let what = summary.as_deref().unwrap_or("this variant");
        if let Some(Value::Object(p)) = props.get_mut(&tag)
            && !p.contains_key("description")
        {
            let text = if values.len() > 1 {
                format!(
                    "`{value}`: {what}. `{tag}` is one of {}.",
                    crate::suggest::list_or(&values)
                )
            } else {
                format!("`{value}`: {what}.")
            };
            p.insert("description".into(), text.into());
        }
        if let Some(Value::Object(p)) = props.get_mut("options")
            && !p.contains_key("description")
            && let Some(target) = p.remove("$ref")
        {
            // A description beside a `$ref` is ignored in draft-07: wrap
            // the reference like schemars does for documented fields.
            p.insert(
                "description".into(),
                format!("Options of `{value}`: {what}.").into(),
            );
            p.insert(
                "allOf".into(),
                Value::Array(vec![serde_json::json!({ "$ref": target })]),
            );
        }
    }
}

/// Appends `docs` (one line each) to the schema's `description`, after a
/// blank line when it has one.
fn append_docs(map: &mut Map<String, Value>, docs: &[String]) {
    if docs.is_empty() {
        return;
    }
    let base = map
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let text = if base.is_empty() {
        docs.join("\n")
    } else {
        format!("{base}\n\n{}", docs.join("\n"))
    };
    map.insert("description".into(), text.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every object schema with `properties` and no branches forbids
    /// unknown keys; no 2019-09/2020-12 keyword is used.
    #[test]
    fn draft07_closed_objects() {
        let schema = pipeline_schema();
        let mut stack = vec![("#".to_string(), &schema)];
        let newer = [
            "$defs",
            "unevaluatedProperties",
            "unevaluatedItems",
            "prefixItems",
            "dependentRequired",
            "dependentSchemas",
            "$anchor",
            "$dynamicRef",
        ];
        let mut closed = 0;
        while let Some((at, v)) = stack.pop() {
            match v {
                Value::Object(map) => {
                    for k in newer {
                        assert!(!map.contains_key(k), "{at} uses `{k}`");
                    }
                    if map.contains_key("properties") && !map.contains_key("oneOf") {
                        assert_eq!(
                            map.get("additionalProperties"),
                            Some(&Value::Bool(false)),
                            "{at} does not forbid unknown keys"
                        );
                        closed += 1;
                    }
                    if let Some(f) = map.get("format").and_then(Value::as_str) {
                        assert!(STANDARD_FORMATS.contains(&f), "{at}: format {f}");
                    }
                    for (k, child) in map {
                        stack.push((format!("{at}/{k}"), child));
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        stack.push((format!("{at}/{i}"), child));
                    }
                }
                _ => {}
            }
        }
        assert!(closed > 15, "only {closed} closed objects");
    }

    /// What editors show on hover and what validators resolve: every
    /// property documented, and one `definitions` table, at the root.
    #[test]
    fn every_property_is_described_and_definitions_are_only_at_the_root() {
        let schema = pipeline_schema();
        let mut stack = vec![("#".to_string(), &schema)];
        let (mut properties, mut undocumented, mut nested) = (0, Vec::new(), Vec::new());
        while let Some((at, v)) = stack.pop() {
            match v {
                Value::Object(map) => {
                    if at != "#" && map.contains_key("definitions") {
                        nested.push(at.clone());
                    }
                    if let Some(Value::Object(props)) = map.get("properties") {
                        for (name, p) in props {
                            properties += 1;
                            let described = p
                                .get("description")
                                .and_then(Value::as_str)
                                .is_some_and(|d| !d.trim().is_empty());
                            if !described {
                                undocumented.push(format!("{at}/properties/{name}"));
                            }
                        }
                    }
                    for (k, child) in map {
                        stack.push((format!("{at}/{k}"), child));
                    }
                }
                Value::Array(items) => {
                    for (i, child) in items.iter().enumerate() {
                        stack.push((format!("{at}/{i}"), child));
                    }
                }
                _ => {}
            }
        }
        assert!(properties > 100, "only {properties} properties walked");
        assert!(undocumented.is_empty(), "no description: {undocumented:#?}");
        assert!(nested.is_empty(), "nested `definitions`: {nested:#?}");
        // Every reference resolves in the one table.
        let text = schema.to_string();
        for r in text.split("\"$ref\":\"").skip(1) {
            let name = r.split('"').next().unwrap();
            let name = name
                .strip_prefix("#/definitions/")
                .unwrap_or_else(|| panic!("{name}"));
            assert!(schema["definitions"][name].is_object(), "dangling {name}");
        }
        let langfuse = &schema["definitions"]["TracingConfig"]["oneOf"][2];
        assert_eq!(langfuse["properties"]["provider"]["const"], "langfuse");
        assert!(langfuse["properties"]["public_key"].is_object());
        let plugin = &schema["definitions"]["TransformConfig"]["oneOf"][0]["properties"]["plugin"];
        assert_eq!(plugin["const"], "azure_llm");
        assert!(
            plugin["description"].as_str().unwrap().starts_with(
                "`azure_llm`: One Azure OpenAI chat call per row. `plugin` is one of `azure_llm`, "
            ),
            "{plugin}"
        );
    }

    #[test]
    fn unit_enums_are_enums_with_documented_values() {
        let schema = pipeline_schema();
        let g = &schema["definitions"]["Granularity"];
        assert_eq!(g["enum"], serde_json::json!(["lifecycle", "rows", "full"]));
        assert!(g.get("oneOf").is_none());
        assert!(
            g["description"]
                .as_str()
                .unwrap()
                .contains("- `rows`: Plus one span per row.")
        );
        // Unit and newtype variants: the names are one enum branch, the
        // tagged variant an object whose tag is described.
        let rf = &schema["definitions"]["ResponseFormat"];
        let branches = rf["oneOf"].as_array().unwrap();
        assert_eq!(branches.len(), 2);
        assert_eq!(branches[0]["enum"], serde_json::json!(["text", "json"]));
        assert_eq!(branches[0]["type"], "string");
        let tag = &branches[1]["properties"]["json_schema"];
        assert_eq!(
            tag["allOf"][0]["$ref"], "#/definitions/JsonSchemaFormat",
            "{tag}"
        );
        assert!(tag["description"].as_str().unwrap().contains("JSON Schema"));
        let description = rf["description"].as_str().unwrap();
        assert!(
            description.contains("- `json`: A JSON object."),
            "{description}"
        );
        assert!(
            description.contains("- `json_schema`: A JSON object that matches"),
            "{description}"
        );
        // Tracing keeps its per-provider branches.
        assert_eq!(
            schema["definitions"]["TracingConfig"]["oneOf"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }
}
