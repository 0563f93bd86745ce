//! From row to request and from reply to row fields: the prompt template
//! (Handlebars, strict), the request options and the reply mapping
//! (`response_format`, `output_field`, `output_fields`).

use std::sync::Arc;

use crate::llm::{
    ChatMessage, JsonSchemaRequest, LlmError, LlmRequest, LlmResponse, ResponseFormatRequest,
};
use crate::transform::RowErrorKind;
use elspeth_schema::config::{CallOptions, JsonSchemaFormat, PromptOptions, ResponseFormat};
use handlebars::{Handlebars, RenderErrorReason};
use serde_json::{Map, Value};

use crate::llm::PlannedCall;
use crate::row::Row;
use crate::transform::RowError;

const TEMPLATE: &str = "prompt_template";

/// A compiled `prompt_template`.
///
/// Strict: a field the row does not have is a row error (kind `template`),
/// never an empty string. Values are inserted as they are (no HTML escaping).
///
/// ```
/// use elspeth_runtime::transforms::prompt::PromptTemplate;
/// let t = PromptTemplate::compile("Classify: {{ text }}").unwrap();
/// let row = serde_json::json!({"text": "<b>refund</b>"});
/// assert_eq!(t.render(row.as_object().unwrap(), None).unwrap(), "Classify: <b>refund</b>");
/// let err = t.render(&serde_json::Map::new(), None).unwrap_err();
/// assert_eq!(err.kind, "template");
/// ```
#[derive(Debug)]
pub struct PromptTemplate {
    registry: Handlebars<'static>,
}

impl PromptTemplate {
    /// Compiles `source`; the error says what is wrong in the template.
    pub fn compile(source: &str) -> Result<Self, PromptError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        registry
            .register_template_string(TEMPLATE, source)
            .map_err(|e| PromptError::Template(e.to_string()))?;
        Ok(Self { registry })
    }

    /// Renders the template over the row's fields, plus `extra` values
    /// (a multi-query's dimensions; they shadow row fields of the same name).
    pub fn render(
        &self,
        row: &Row,
        extra: Option<&Map<String, Value>>,
    ) -> Result<String, RowError> {
        let rendered = match extra {
            None => self.registry.render(TEMPLATE, row),
            Some(extra) => {
                let mut data = row.clone();
                for (k, v) in extra {
                    data.insert(k.clone(), v.clone());
                }
                self.registry.render(TEMPLATE, &data)
            }
        };
        rendered.map_err(|e| {
            let message = match e.reason() {
                RenderErrorReason::MissingVariable(Some(path)) => format!(
                    "prompt_template uses `{{{{ {path} }}}}` but the row has no field `{path}`"
                ),
                RenderErrorReason::MissingVariable(None) => {
                    "prompt_template uses a field the row does not have".to_string()
                }
                other => format!("prompt_template could not be rendered: {other}"),
            };
            RowError::new("template", message)
        })
    }
}

/// Why a transform's prompt options cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    /// `prompt_template` does not compile (Handlebars' message).
    #[error("prompt_template is not a valid Handlebars template: {0}")]
    Template(String),
    /// `output_field` is empty.
    #[error("output_field must not be empty")]
    EmptyOutputField,
    /// `output_fields` given for text replies.
    #[error(
        "output_fields only applies to `response_format: json`; with text replies use output_field"
    )]
    OutputFieldsWithText,
    /// The `json_schema` is not a JSON Schema the validator can compile.
    #[error("the JSON schema `{name}` of response_format is not valid: {message}")]
    InvalidSchema {
        /// The schema's `name`.
        name: String,
        /// The compiler's message.
        message: String,
    },
    /// An `output_fields` entry is not a property of the `json_schema`.
    #[error("output_fields names `{field}`, which the JSON schema `{name}` has no property for")]
    NotInSchema {
        /// The schema's `name`.
        name: String,
        /// The field.
        field: String,
    },
}

/// The instruction added when `response_format: json` is asked for but
/// neither the system prompt nor the template says "JSON": the OpenAI-style
/// APIs refuse JSON mode unless a message mentions it.
pub const JSON_HINT: &str = "Reply with a JSON object.";

/// How one transform builds requests and maps replies.
#[derive(Debug)]
pub struct Prompt {
    template: PromptTemplate,
    system_prompt: Option<String>,
    model: String,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    reply: ReplyMapping,
}

impl Prompt {
    /// From the plugin's options; `model` is the deployment or model id.
    pub fn new(
        prompt: &PromptOptions,
        call: &CallOptions,
        model: &str,
    ) -> Result<Self, PromptError> {
        let mentions_json = |s: &str| s.to_ascii_lowercase().contains("json");
        let mut system_prompt = prompt.system_prompt.clone();
        if prompt.response_format == ResponseFormat::Json
            && !mentions_json(&prompt.prompt_template)
            && !system_prompt.as_deref().is_some_and(mentions_json)
        {
            system_prompt = Some(match system_prompt {
                Some(s) => format!("{s}\n\n{JSON_HINT}"),
                None => JSON_HINT.to_string(),
            });
        }
        Ok(Self {
            template: PromptTemplate::compile(&prompt.prompt_template)?,
            system_prompt,
            model: model.to_string(),
            temperature: call.temperature,
            max_tokens: call.max_tokens,
            reply: ReplyMapping::new(prompt)?,
        })
    }

    /// The request for `row` (with a multi-query's `extra` values).
    pub fn request(
        &self,
        row: &Row,
        extra: Option<&Map<String, Value>>,
    ) -> Result<LlmRequest, RowError> {
        let prompt = self.template.render(row, extra)?;
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = &self.system_prompt {
            messages.push(ChatMessage::system(system.clone()));
        }
        messages.push(ChatMessage::user(prompt));
        Ok(LlmRequest {
            messages,
            model: self.model.clone(),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            response_format: self.reply.request_format(),
        })
    }

    /// The reply mapping.
    pub fn reply(&self) -> &ReplyMapping {
        &self.reply
    }

    /// Puts every reply into the row (`<query>_<field>` for named queries).
    /// The first failed call fails the row, its message naming the query.
    pub fn merge(
        &self,
        mut row: Row,
        results: Vec<(PlannedCall, Result<LlmResponse, LlmError>)>,
    ) -> Result<Row, RowError> {
        for (call, result) in results {
            self.merge_one(&mut row, call.query.as_deref(), result)?;
        }
        Ok(row)
    }

    /// Puts one reply into the row (prefixed with `<query>_` when named).
    pub fn merge_one(
        &self,
        row: &mut Row,
        query: Option<&str>,
        result: Result<LlmResponse, LlmError>,
    ) -> Result<(), RowError> {
        let named = |mut e: RowError| {
            if let Some(q) = query {
                e.message = format!("query `{q}`: {}", e.message);
            }
            e
        };
        let response = result.map_err(|e| named(RowError::from(e)))?;
        self.reply
            .apply(row, query, &response.content)
            .map_err(named)
    }
}

/// Where a reply goes in the row.
#[derive(Debug, Clone)]
pub struct ReplyMapping {
    format: ReplyFormat,
    output_field: String,
    output_fields: Vec<String>,
}

/// How replies are read.
#[derive(Debug, Clone)]
enum ReplyFormat {
    Text,
    Json,
    JsonSchema(Arc<ReplySchema>),
}

/// A `json_schema` response format, compiled once per transform: what each
/// request sends, and the validator every reply goes through.
pub struct ReplySchema {
    request: JsonSchemaRequest,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for ReplySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplySchema")
            .field("name", &self.request.name)
            .field("strict", &self.request.strict)
            .finish_non_exhaustive()
    }
}

/// Longest value quoted in a schema-mismatch message.
const MAX_QUOTED: usize = 200;

impl ReplySchema {
    /// Compiles the schema of `format`.
    pub fn compile(format: &JsonSchemaFormat) -> Result<Self, PromptError> {
        let schema = serde_json::Value::Object(format.schema.clone());
        let invalid = |message: String| PromptError::InvalidSchema {
            name: format.name.clone(),
            message,
        };
        jsonschema::meta::validate(&schema).map_err(|e| invalid(e.to_string()))?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            request: JsonSchemaRequest {
                name: format.name.clone(),
                schema: Arc::new(schema),
                strict: format.strict,
            },
            validator,
        })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.request.name
    }

    /// `Err` naming the schema and the first failing JSON path (a JSON
    /// pointer into the reply, `/` for the whole object) when `reply` does
    /// not match.
    pub fn check(&self, reply: &Value) -> Result<(), RowError> {
        let Err(e) = self.validator.validate(reply) else {
            return Ok(());
        };
        let path = e.instance_path().as_str();
        let path = if path.is_empty() { "/" } else { path };
        let mut what = e.to_string();
        if what.len() > MAX_QUOTED {
            let cut = (0..=MAX_QUOTED)
                .rev()
                .find(|&i| what.is_char_boundary(i))
                .unwrap_or(0);
            what.truncate(cut);
            what.push_str("...");
        }
        Err(RowError::new(
            RowErrorKind::Schema,
            format!(
                "the reply does not match the JSON schema `{}` at {path}: {what}",
                self.request.name
            ),
        ))
    }
}

impl ReplyMapping {
    /// From the prompt options.
    pub fn new(prompt: &PromptOptions) -> Result<Self, PromptError> {
        if prompt.output_field.trim().is_empty() {
            return Err(PromptError::EmptyOutputField);
        }
        let format = match &prompt.response_format {
            ResponseFormat::Text if !prompt.output_fields.is_empty() => {
                return Err(PromptError::OutputFieldsWithText);
            }
            ResponseFormat::Text => ReplyFormat::Text,
            ResponseFormat::Json => ReplyFormat::Json,
            ResponseFormat::JsonSchema(f) => {
                let properties = f.properties();
                if let Some(field) = prompt
                    .output_fields
                    .iter()
                    .find(|field| !properties.contains(field))
                {
                    return Err(PromptError::NotInSchema {
                        name: f.name.clone(),
                        field: field.clone(),
                    });
                }
                ReplyFormat::JsonSchema(Arc::new(ReplySchema::compile(f)?))
            }
        };
        Ok(Self {
            format,
            output_field: prompt.output_field.clone(),
            output_fields: prompt.output_fields.clone(),
        })
    }

    /// The `response_format` requests carry.
    pub fn request_format(&self) -> Option<ResponseFormatRequest> {
        match &self.format {
            ReplyFormat::Text => None,
            ReplyFormat::Json => Some(ResponseFormatRequest::JsonObject),
            ReplyFormat::JsonSchema(s) => {
                Some(ResponseFormatRequest::JsonSchema(s.request.clone()))
            }
        }
    }

    /// The compiled JSON Schema replies must match, with `json_schema`.
    pub fn schema(&self) -> Option<&ReplySchema> {
        match &self.format {
            ReplyFormat::JsonSchema(s) => Some(s),
            ReplyFormat::Text | ReplyFormat::Json => None,
        }
    }

    /// Writes `content` into `row`: as `output_field` (text) or as the
    /// reply object's keys (json; with `json_schema` once the object
    /// matches the schema), each prefixed with `<prefix>_` when given.
    pub fn apply(
        &self,
        row: &mut Row,
        prefix: Option<&str>,
        content: &str,
    ) -> Result<(), RowError> {
        let key = |k: &str| match prefix {
            Some(p) => format!("{p}_{k}"),
            None => k.to_string(),
        };
        match &self.format {
            ReplyFormat::Text => {
                row.insert(key(&self.output_field), Value::String(content.to_string()));
            }
            ReplyFormat::Json | ReplyFormat::JsonSchema(_) => {
                let value = parse_json(content)?;
                if let ReplyFormat::JsonSchema(schema) = &self.format {
                    schema.check(&value)?;
                }
                let mut object = into_object(value)?;
                if self.output_fields.is_empty() {
                    for (k, v) in object {
                        row.insert(key(&k), v);
                    }
                } else {
                    for field in &self.output_fields {
                        let value = object.remove(field).ok_or_else(|| {
                            RowError::new(
                                "parse",
                                format!(
                                    "the JSON reply has no `{field}` key (output_fields: {}; reply keys: {})",
                                    self.output_fields.join(", "),
                                    if object.is_empty() {
                                        "none".to_string()
                                    } else {
                                        object.keys().cloned().collect::<Vec<_>>().join(", ")
                                    }
                                ),
                            )
                        })?;
                        row.insert(key(field), value);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The reply as JSON (a Markdown code fence around it is accepted).
fn parse_json(content: &str) -> Result<Value, RowError> {
    let text = strip_fence(content);
    serde_json::from_str::<Value>(text).map_err(|e| {
        RowError::new(
            RowErrorKind::Parse,
            format!(
                "the reply is not valid JSON ({e}); it starts with {:?}",
                text.chars().take(60).collect::<String>()
            ),
        )
    })
}

/// The reply's JSON object.
fn into_object(value: Value) -> Result<Map<String, Value>, RowError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(RowError::new(
            RowErrorKind::Parse,
            format!(
                "the reply is JSON but not an object (got {}); response_format: json expects an object",
                json_kind(&other)
            ),
        )),
    }
}

fn strip_fence(s: &str) -> &str {
    let t = s.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let Some(body) = rest.strip_suffix("```") else {
        return t;
    };
    // Drop the info string (`json`) on the opening line.
    match body.find('\n') {
        Some(i) => body[i + 1..].trim(),
        None => body.trim(),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Row {
        v.as_object().cloned().unwrap()
    }

    fn options(format: ResponseFormat, fields: &[&str]) -> PromptOptions {
        PromptOptions {
            prompt_template: "Classify: {{ text }}".into(),
            system_prompt: Some("You triage tickets.".into()),
            response_format: format,
            output_field: "label".into(),
            output_fields: fields.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn missing_field_names_the_field() {
        let t = PromptTemplate::compile("{{ title }}: {{ body }}").unwrap();
        let e = t.render(&row(json!({"title": "x"})), None).unwrap_err();
        assert_eq!(e.kind, "template");
        assert_eq!(
            e.message,
            "prompt_template uses `{{ body }}` but the row has no field `body`"
        );
    }

    #[test]
    fn nested_and_extra_values() {
        let t =
            PromptTemplate::compile("{{ criterion.name }} of {{ text }} ({{ criterion.scale }})")
                .unwrap();
        let extra = json!({"criterion": {"name": "accuracy", "scale": "1-5"}});
        let out = t
            .render(
                &row(json!({"text": "essay", "criterion": "shadowed"})),
                extra.as_object(),
            )
            .unwrap();
        assert_eq!(out, "accuracy of essay (1-5)");
    }

    #[test]
    fn bad_template_is_a_build_error() {
        let e = PromptTemplate::compile("{{#if x}} unclosed")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("prompt_template is not a valid Handlebars template"),
            "{e}"
        );
    }

    #[test]
    fn request_carries_options() {
        let call = CallOptions {
            temperature: Some(0.1),
            max_tokens: Some(50),
            ..Default::default()
        };
        let p = Prompt::new(&options(ResponseFormat::Json, &[]), &call, "gpt-4o").unwrap();
        let r = p
            .request(&row(json!({"text": "refund please"})), None)
            .unwrap();
        assert_eq!(
            r.messages,
            vec![
                ChatMessage::system(format!("You triage tickets.\n\n{JSON_HINT}")),
                ChatMessage::user("Classify: refund please")
            ]
        );
        assert_eq!(r.model, "gpt-4o");
        assert_eq!(
            (r.temperature, r.max_tokens, r.response_format),
            (Some(0.1), Some(50), Some(ResponseFormatRequest::JsonObject))
        );
    }

    #[test]
    fn json_mode_is_named_in_some_message() {
        let mut o = options(ResponseFormat::Json, &[]);
        o.system_prompt = None;
        let p = Prompt::new(&o, &CallOptions::default(), "m").unwrap();
        let r = p.request(&row(json!({"text": "x"})), None).unwrap();
        assert_eq!(r.messages[0], ChatMessage::system(JSON_HINT));
        o.system_prompt = Some("Be brief.".into());
        let p = Prompt::new(&o, &CallOptions::default(), "m").unwrap();
        let r = p.request(&row(json!({"text": "x"})), None).unwrap();
        assert_eq!(
            r.messages[0],
            ChatMessage::system(format!("Be brief.\n\n{JSON_HINT}"))
        );
        o.prompt_template = "Answer in JSON: {{ text }}".into();
        let p = Prompt::new(&o, &CallOptions::default(), "m").unwrap();
        let r = p.request(&row(json!({"text": "x"})), None).unwrap();
        assert_eq!(
            r.messages[0],
            ChatMessage::system("Be brief."),
            "already asked for: untouched"
        );
        let p = Prompt::new(
            &options(ResponseFormat::Text, &[]),
            &CallOptions::default(),
            "m",
        )
        .unwrap();
        let r = p.request(&row(json!({"text": "x"})), None).unwrap();
        assert_eq!(r.messages[0], ChatMessage::system("You triage tickets."));
    }

    #[test]
    fn text_and_json_replies() {
        let text = ReplyMapping::new(&options(ResponseFormat::Text, &[])).unwrap();
        let mut r = Row::new();
        text.apply(&mut r, None, "billing").unwrap();
        text.apply(&mut r, Some("cs1_accuracy"), "4").unwrap();
        assert_eq!(
            Value::Object(r),
            json!({"label": "billing", "cs1_accuracy_label": "4"})
        );

        let json_all = ReplyMapping::new(&options(ResponseFormat::Json, &[])).unwrap();
        let mut r = Row::new();
        json_all
            .apply(
                &mut r,
                None,
                "```json\n{\"category\": \"bug\", \"score\": 3}\n```",
            )
            .unwrap();
        assert_eq!(Value::Object(r), json!({"category": "bug", "score": 3}));

        let picked = ReplyMapping::new(&options(ResponseFormat::Json, &["category"])).unwrap();
        let mut r = Row::new();
        picked
            .apply(&mut r, Some("q"), r#"{"category": "bug", "extra": 1}"#)
            .unwrap();
        assert_eq!(Value::Object(r), json!({"q_category": "bug"}));

        let e = picked
            .apply(&mut Row::new(), None, r#"{"priority": "high"}"#)
            .unwrap_err();
        assert_eq!(e.kind, "parse");
        assert_eq!(
            e.message,
            "the JSON reply has no `category` key (output_fields: category; reply keys: priority)"
        );
        let e = picked.apply(&mut Row::new(), None, "[1]").unwrap_err();
        assert!(
            e.message.contains("not an object (got an array)"),
            "{}",
            e.message
        );
        let e = picked
            .apply(&mut Row::new(), None, "sure! here it is")
            .unwrap_err();
        assert!(
            e.message.starts_with("the reply is not valid JSON"),
            "{}",
            e.message
        );
    }

    fn ticket_schema(fields: &[&str]) -> PromptOptions {
        let schema = json!({
            "type": "object",
            "properties": {
                "category": {"type": "string", "enum": ["billing", "bug"]},
                "priority": {"type": "integer", "minimum": 1, "maximum": 3}
            },
            "required": ["category", "priority"],
            "additionalProperties": false
        });
        let mut o = options(
            ResponseFormat::JsonSchema(JsonSchemaFormat {
                name: "ticket".into(),
                schema: schema.as_object().cloned().unwrap(),
                strict: true,
            }),
            fields,
        );
        o.system_prompt = None;
        o
    }

    #[test]
    fn json_schema_requests_carry_the_schema() {
        let o = ticket_schema(&[]);
        let p = Prompt::new(&o, &CallOptions::default(), "gpt-4o").unwrap();
        let r = p.request(&row(json!({"text": "x"})), None).unwrap();
        let Some(ResponseFormatRequest::JsonSchema(s)) = &r.response_format else {
            panic!("{:?}", r.response_format);
        };
        let ResponseFormat::JsonSchema(f) = &o.response_format else {
            unreachable!()
        };
        assert_eq!(
            (s.name.as_str(), s.strict, &*s.schema),
            ("ticket", true, &Value::Object(f.schema.clone()))
        );
        // Structured outputs need no "JSON" in the messages.
        assert_eq!(r.messages, vec![ChatMessage::user("Classify: x")]);
        // One schema for every request of the transform.
        let r2 = p.request(&row(json!({"text": "y"})), None).unwrap();
        let Some(ResponseFormatRequest::JsonSchema(s2)) = &r2.response_format else {
            panic!()
        };
        assert!(Arc::ptr_eq(&s.schema, &s2.schema));
    }

    #[test]
    fn json_schema_replies_are_checked() {
        let all = ReplyMapping::new(&ticket_schema(&[])).unwrap();
        assert_eq!(all.schema().map(ReplySchema::name), Some("ticket"));
        let mut r = Row::new();
        all.apply(&mut r, None, r#"{"category": "bug", "priority": 2}"#)
            .unwrap();
        assert_eq!(Value::Object(r), json!({"category": "bug", "priority": 2}));

        let picked = ReplyMapping::new(&ticket_schema(&["priority"])).unwrap();
        let mut r = Row::new();
        picked
            .apply(
                &mut r,
                Some("q"),
                r#"{"category": "billing", "priority": 1}"#,
            )
            .unwrap();
        assert_eq!(Value::Object(r), json!({"q_priority": 1}));

        let e = all
            .apply(
                &mut Row::new(),
                None,
                r#"{"category": "billing2", "priority": 1}"#,
            )
            .unwrap_err();
        assert_eq!(e.kind, RowErrorKind::Schema);
        assert_eq!(e.kind, "schema");
        assert_eq!(
            e.message,
            r#"the reply does not match the JSON schema `ticket` at /category: "billing2" is not one of "billing" or "bug""#
        );
        let e = all
            .apply(
                &mut Row::new(),
                None,
                r#"{"category": "bug", "priority": 7}"#,
            )
            .unwrap_err();
        assert!(
            e.message
                .starts_with("the reply does not match the JSON schema `ticket` at /priority: 7"),
            "{}",
            e.message
        );
        let e = all
            .apply(&mut Row::new(), None, r#"{"category": "bug"}"#)
            .unwrap_err();
        assert!(
            e.message
                .starts_with("the reply does not match the JSON schema `ticket` at /: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("\"priority\""), "{}", e.message);
        // Not JSON at all: a parse error, as in json mode.
        let e = all.apply(&mut Row::new(), None, "billing").unwrap_err();
        assert_eq!(e.kind, RowErrorKind::Parse);
        // A long offending value is cut.
        let long = "x".repeat(1000);
        let e = all
            .apply(
                &mut Row::new(),
                None,
                &format!(r#"{{"category": "{long}", "priority": 1}}"#),
            )
            .unwrap_err();
        assert!(
            e.message.len() < 400 && e.message.ends_with("..."),
            "{}",
            e.message
        );
    }

    #[test]
    fn json_schema_options_are_checked_when_built() {
        let e = ReplyMapping::new(&ticket_schema(&["categroy"]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "output_fields names `categroy`, which the JSON schema `ticket` has no property for"
        );
        let mut o = ticket_schema(&[]);
        if let ResponseFormat::JsonSchema(f) = &mut o.response_format {
            f.schema.insert("type".into(), json!("strin"));
        }
        let e = ReplyMapping::new(&o).unwrap_err().to_string();
        assert!(
            e.starts_with("the JSON schema `ticket` of response_format is not valid: "),
            "{e}"
        );
    }

    #[test]
    fn output_fields_need_json() {
        let e = ReplyMapping::new(&options(ResponseFormat::Text, &["a"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only applies to `response_format: json`"));
    }

    #[test]
    fn merge_names_the_failing_query() {
        use crate::llm::LlmErrorKind;
        let p = Prompt::new(
            &options(ResponseFormat::Text, &[]),
            &CallOptions::default(),
            "m",
        )
        .unwrap();
        let call = |q: &str| PlannedCall {
            query: Some(q.into()),
            request: LlmRequest::user("m", "x"),
        };
        let ok = LlmResponse {
            content: "yes".into(),
            ..Default::default()
        };
        let merged = p
            .merge(
                Row::new(),
                vec![(call("a"), Ok(ok.clone())), (call("b"), Ok(ok.clone()))],
            )
            .unwrap();
        assert_eq!(
            Value::Object(merged),
            json!({"a_label": "yes", "b_label": "yes"})
        );
        let e = p
            .merge(
                Row::new(),
                vec![
                    (call("a"), Ok(ok)),
                    (
                        call("b"),
                        Err(LlmError::new(LlmErrorKind::Server, "HTTP 500").with_status(500)),
                    ),
                ],
            )
            .unwrap_err();
        assert_eq!(
            (e.kind.as_str(), e.message.as_str(), e.http_status),
            ("llm", "query `b`: HTTP 500", Some(500))
        );
    }
}
