//! Structured outputs in the mocks: `response_format: {"type":
//! "json_schema", "json_schema": {name, schema, strict}}` checked the way
//! the OpenAI-style APIs check it, and replies built from the schema.
//!
//! The reply is a JSON object that matches the schema, deterministic per
//! prompt: an `enum` takes the value the prompt's keywords suggest when it
//! lists it (`category`, `priority`, `sentiment`), else one picked by a hash
//! of the prompt; numbers fall in `minimum`..`maximum`; a `reply` string is
//! a one-sentence answer; every property of an object is filled (strict
//! mode requires them all). With
//! [`TRIGGER_SCHEMA_MISMATCH`] in the prompt the reply breaks the schema on
//! purpose (its first property gets a value the schema refuses), as a
//! model without strict mode may.

use serde_json::{Map, Value, json};

use crate::chat::{category, priority, score, sentiment, summary};

/// Trigger: a structured-outputs reply that does not match its schema.
pub const TRIGGER_SCHEMA_MISMATCH: &str = "MOCK_SCHEMA_MISMATCH";

/// The value given to an `enum` property by [`TRIGGER_SCHEMA_MISMATCH`].
pub const NOT_IN_ENUM: &str = "mock-not-in-enum";

/// Deepest schema nesting a reply is built for.
const MAX_DEPTH: usize = 16;

/// A checked `json_schema` request.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonSchemaFormat {
    /// `json_schema.name`.
    pub name: String,
    /// `json_schema.schema`.
    pub schema: Value,
    /// `json_schema.strict` (`false` when absent, as in the API).
    pub strict: bool,
}

/// Why a `response_format` is refused (HTTP 400); the messages follow the
/// API's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// `type` is not one the API knows.
    #[error(
        "Invalid value: '{0}'. Supported values are: 'text', 'json_object', and 'json_schema'."
    )]
    UnknownType(String),
    /// `type: json_schema` without a `json_schema` object.
    #[error("Missing required parameter: 'response_format.json_schema'.")]
    MissingJsonSchema,
    /// No `name`, or not `^[a-zA-Z0-9_-]{{1,64}}$`.
    #[error(
        "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$' (at most 64 characters)."
    )]
    BadName,
    /// `schema` is not an object.
    #[error("Invalid type for 'response_format.json_schema.schema': expected an object.")]
    BadSchema,
    /// Strict mode, and the schema breaks one of its rules.
    #[error("Invalid schema for response_format '{name}': In context=({context}), {rule}")]
    NotStrict {
        /// The schema's name.
        name: String,
        /// Where, as the API writes it (`'properties', 'tags'`).
        context: String,
        /// The rule broken.
        rule: String,
    },
}

/// Reads `response_format` of a request body: `Ok(None)` for text or
/// `json_object`, `Ok(Some(..))` for a valid `json_schema`.
pub fn parse(body: &Value) -> Result<Option<JsonSchemaFormat>, FormatError> {
    let Some(format) = body.get("response_format").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let kind = format
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "text" | "json_object" => return Ok(None),
        "json_schema" => {}
        other => return Err(FormatError::UnknownType(other.to_string())),
    }
    let spec = format
        .get("json_schema")
        .and_then(Value::as_object)
        .ok_or(FormatError::MissingJsonSchema)?;
    let name = spec
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| {
            (1..=64).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .ok_or(FormatError::BadName)?;
    let schema = spec
        .get("schema")
        .filter(|s| s.is_object())
        .ok_or(FormatError::BadSchema)?;
    let strict = spec.get("strict").and_then(Value::as_bool).unwrap_or(false);
    if strict {
        strict_check(schema, &mut Vec::new()).map_err(|(context, rule)| {
            FormatError::NotStrict {
                name: name.to_string(),
                context,
                rule,
            }
        })?;
    }
    Ok(Some(JsonSchemaFormat {
        name: name.to_string(),
        schema: schema.clone(),
        strict,
    }))
}

/// Strict mode's rules on every object schema: `additionalProperties:
/// false` and every property in `required`. `Err((context, rule))`.
fn strict_check(schema: &Value, context: &mut Vec<String>) -> Result<(), (String, String)> {
    let Some(map) = schema.as_object() else {
        return Ok(());
    };
    let here = || {
        context
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let is_object = match map.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        _ => map.contains_key("properties"),
    };
    if is_object {
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err((
                here(),
                "'additionalProperties' is required to be supplied and to be false.".into(),
            ));
        }
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(Value::Object(props)) = map.get("properties")
            && let Some(missing) = props.keys().find(|k| !required.contains(&k.as_str()))
        {
            return Err((
                here(),
                format!(
                    "'required' is required to be supplied and to be an array including every key in properties. Missing '{missing}'."
                ),
            ));
        }
    }
    let mut descend = |segs: &[&str], child: &Value| {
        let depth = context.len();
        context.extend(segs.iter().map(|s| s.to_string()));
        let r = strict_check(child, context);
        context.truncate(depth);
        r
    };
    for key in ["properties", "$defs", "definitions"] {
        if let Some(Value::Object(children)) = map.get(key) {
            for (name, child) in children {
                descend(&[key, name], child)?;
            }
        }
    }
    for key in ["anyOf", "allOf", "oneOf"] {
        if let Some(Value::Array(children)) = map.get(key) {
            for (i, child) in children.iter().enumerate() {
                descend(&[key, &i.to_string()], child)?;
            }
        }
    }
    if let Some(items) = map.get("items") {
        descend(&["items"], items)?;
    }
    Ok(())
}

/// The reply content for a structured-outputs request.
pub fn content(format: &JsonSchemaFormat, prompt: &str) -> String {
    let mut reply = value_for(&format.schema, &format.schema, "", prompt, 0);
    if prompt.contains(TRIGGER_SCHEMA_MISMATCH) {
        break_first_property(&format.schema, &mut reply);
    }
    reply.to_string()
}

/// A stable pick among `n` for (`prompt`, `key`).
fn pick(prompt: &str, key: &str, n: usize) -> usize {
    let h = prompt
        .bytes()
        .chain([0])
        .chain(key.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    (h % n.max(1) as u64) as usize
}

/// The text the prompt's keywords suggest for `key`, if any.
fn keyword(key: &str, prompt: &str) -> Option<&'static str> {
    match key {
        "category" => Some(category(prompt)),
        "priority" | "urgency" => Some(priority(prompt)),
        "sentiment" => Some(sentiment(prompt)),
        _ => None,
    }
}

/// The first type a schema allows other than `null`.
fn type_of(schema: &Map<String, Value>) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ if schema.contains_key("properties") => Some("object"),
        _ => None,
    }
}

/// A value matching `schema` (`root` resolves `$ref`s) for the property
/// `key`.
fn value_for(schema: &Value, root: &Value, key: &str, prompt: &str, depth: usize) -> Value {
    let Some(map) = schema.as_object() else {
        return Value::Null;
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(target) = map.get("$ref").and_then(Value::as_str) {
        return match target.strip_prefix('#').and_then(|p| root.pointer(p)) {
            Some(s) => value_for(s, root, key, prompt, depth + 1),
            None => Value::Null,
        };
    }
    if let Some(c) = map.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(options)) = map.get("enum")
        && !options.is_empty()
    {
        if let Some(k) = keyword(key, prompt)
            && let Some(v) = options.iter().find(|o| o.as_str() == Some(k))
        {
            return v.clone();
        }
        return options[pick(prompt, key, options.len())].clone();
    }
    for branches in ["anyOf", "oneOf"] {
        if let Some(Value::Array(b)) = map.get(branches) {
            let chosen = b
                .iter()
                .find(|s| s.get("type").and_then(Value::as_str) != Some("null"))
                .or(b.first());
            if let Some(s) = chosen {
                return value_for(s, root, key, prompt, depth + 1);
            }
        }
    }
    let number = |integer: bool| {
        let min = map.get("minimum").and_then(Value::as_f64).unwrap_or(1.0);
        let max = map
            .get("maximum")
            .and_then(Value::as_f64)
            .unwrap_or(min + 4.0)
            .max(min);
        let span = (max - min).floor() as usize + 1;
        let n = if key.contains("score") || key == "rating" {
            (min + (score(prompt) - 1) as f64).min(max)
        } else {
            min + pick(prompt, key, span) as f64
        };
        if integer {
            json!(n.floor() as i64)
        } else {
            json!(n)
        }
    };
    match type_of(map) {
        Some("object") => {
            let mut out = Map::new();
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, s) in props {
                    out.insert(name.clone(), value_for(s, root, name, prompt, depth + 1));
                }
            }
            Value::Object(out)
        }
        Some("array") => {
            let n = map
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 8);
            let items = map.get("items").cloned().unwrap_or(json!({}));
            Value::Array(
                (0..n)
                    .map(|i| value_for(&items, root, &format!("{key}{i}"), prompt, depth + 1))
                    .collect(),
            )
        }
        Some("integer") => number(true),
        Some("number") => number(false),
        Some("boolean") => json!(pick(prompt, key, 2) == 0),
        Some("null") => Value::Null,
        _ => json!(match (keyword(key, prompt), key) {
            (Some(k), _) => k.to_string(),
            (None, "summary") => summary(prompt),
            (None, "reply") => format!(
                "Thanks for reaching out about this {} issue; we are on it and will update you shortly.",
                category(prompt)
            ),
            (None, "") => "mock".to_string(),
            (None, k) => format!("mock {k}"),
        }),
    }
}

/// Gives the reply's first property a value its schema refuses: one
/// outside its `enum`, else one of the wrong type.
fn break_first_property(schema: &Value, reply: &mut Value) {
    let Some((name, prop)) = schema
        .get("properties")
        .and_then(Value::as_object)
        .and_then(|p| p.iter().next())
    else {
        return;
    };
    let wrong = if prop.get("enum").is_some() {
        json!(NOT_IN_ENUM)
    } else {
        match prop.as_object().and_then(type_of) {
            Some("string") => json!(12345),
            _ => json!("mock-wrong-type"),
        }
    };
    if let Some(obj) = reply.as_object_mut() {
        obj.insert(name.clone(), wrong);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(schema: Value, strict: bool) -> JsonSchemaFormat {
        JsonSchemaFormat {
            name: "ticket".into(),
            schema,
            strict,
        }
    }

    fn ticket() -> Value {
        json!({
            "type": "object",
            "properties": {
                "category": {"type": "string", "enum": ["billing", "bug", "other"]},
                "priority": {"type": "integer", "minimum": 1, "maximum": 3},
                "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
                "note": {"type": ["string", "null"]},
                "urgent": {"type": "boolean"}
            },
            "$defs": {"tag": {"type": "object", "properties": {"label": {"type": "string"}},
                "required": ["label"], "additionalProperties": false}},
            "required": ["category", "priority", "tags", "note", "urgent"],
            "additionalProperties": false
        })
    }

    #[test]
    fn replies_follow_the_schema_and_the_prompt() {
        let f = format(ticket(), true);
        let v: Value = serde_json::from_str(&content(&f, "Triage: please refund me")).unwrap();
        assert_eq!(
            v["category"], "billing",
            "the keyword's value, listed in the enum"
        );
        let p = v["priority"].as_i64().unwrap();
        assert!((1..=3).contains(&p), "{v}");
        assert_eq!(v["tags"][0]["label"], "mock label");
        assert_eq!(v["note"], "mock note");
        assert!(v["urgent"].is_boolean());
        let reply = format(
            json!({"type": "object", "properties": {"reply": {"type": "string"}}}),
            false,
        );
        let r: Value = serde_json::from_str(&content(&reply, "Answer: app crashes")).unwrap();
        assert!(r["reply"].as_str().unwrap().contains("bug issue"), "{r}");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["category", "priority", "tags", "note", "urgent"]);
        // Deterministic per prompt.
        assert_eq!(
            content(&f, "Triage: please refund me"),
            content(&f, "Triage: please refund me")
        );
        // A keyword value the enum does not list: one of the enum's values.
        let v: Value = serde_json::from_str(&content(&f, "Triage: what is this?")).unwrap();
        assert!(["billing", "bug", "other"].contains(&v["category"].as_str().unwrap()));
    }

    #[test]
    fn the_trigger_breaks_the_first_property() {
        let f = format(ticket(), true);
        let v: Value =
            serde_json::from_str(&content(&f, &format!("x {TRIGGER_SCHEMA_MISMATCH}"))).unwrap();
        assert_eq!(v["category"], NOT_IN_ENUM);
        let f = format(
            json!({"type": "object", "properties": {"answer": {"type": "string"}}}),
            false,
        );
        let v: Value =
            serde_json::from_str(&content(&f, &format!("x {TRIGGER_SCHEMA_MISMATCH}"))).unwrap();
        assert_eq!(v["answer"], 12345);
    }

    #[test]
    fn parse_checks_like_the_api() {
        let body = |rf: Value| json!({"messages": [], "response_format": rf});
        assert_eq!(parse(&json!({})), Ok(None));
        assert_eq!(parse(&body(json!({"type": "json_object"}))), Ok(None));
        assert_eq!(
            parse(&body(json!({"type": "xml"}))),
            Err(FormatError::UnknownType("xml".into()))
        );
        assert_eq!(
            parse(&body(json!({"type": "json_schema"}))),
            Err(FormatError::MissingJsonSchema)
        );
        assert_eq!(
            parse(&body(
                json!({"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}})
            )),
            Err(FormatError::BadName)
        );
        assert_eq!(
            parse(&body(
                json!({"type": "json_schema", "json_schema": {"name": "t", "schema": 3}})
            )),
            Err(FormatError::BadSchema)
        );
        let ok = parse(&body(
            json!({"type": "json_schema", "json_schema": {"name": "ticket", "schema": ticket(), "strict": true}}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(ok, format(ticket(), true));
        let mut open = ticket();
        open["$defs"]["tag"]
            .as_object_mut()
            .unwrap()
            .remove("additionalProperties");
        let e = parse(&body(
            json!({"type": "json_schema", "json_schema": {"name": "ticket", "schema": open, "strict": true}}),
        ))
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "Invalid schema for response_format 'ticket': In context=('$defs', 'tag'), 'additionalProperties' is required to be supplied and to be false."
        );
        let mut optional = ticket();
        optional["required"] = json!(["category"]);
        let e = parse(&body(
            json!({"type": "json_schema", "json_schema": {"name": "ticket", "schema": optional.clone(), "strict": true}}),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.ends_with("Missing 'priority'."), "{e}");
        // Not strict: accepted as written.
        assert!(
            parse(&body(
                json!({"type": "json_schema", "json_schema": {"name": "ticket", "schema": optional}})
            ))
            .unwrap()
            .is_some()
        );
    }
}
