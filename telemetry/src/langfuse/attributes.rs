//! Langfuse span attributes, encoded exactly as the official Langfuse SDK
//! (5.x) sends them, plus the OTel GenAI attributes on generations.
//!
//! | what | key | OTLP type | encoding |
//! | --- | --- | --- | --- |
//! | trace name | `langfuse.trace.name` | string | plain, on every span |
//! | trace metadata | `langfuse.trace.metadata.<k>` | string | one attribute per key, value JSON-encoded (strings included: `"tok-1"` with the quotes), on every span |
//! | tags | `langfuse.trace.tags` | string array | native OTLP array, on every span (when configured) |
//! | environment / release | `langfuse.environment` / `langfuse.release` | string | plain, on every span **and** the resource (when configured) |
//! | observation type | `langfuse.observation.type` | string | `span` / `generation` |
//! | model | `langfuse.observation.model.name` | string | the model that answered when reported, else the model or deployment asked for (Langfuse matches prices on it; Azure deployment names are arbitrary aliases) |
//! | input | `langfuse.observation.input` | string | a single user message is sent **as is** (like the SDK sends a `str`); with a system prompt (or several messages) it is the chat messages as JSON `[{"role":"system","content":"..."},{"role":"user","content":"..."}]`, which Langfuse renders as a chat |
//! | output | `langfuse.observation.output` | string | the reply text as is |
//! | usage | `langfuse.observation.usage_details` | string | one JSON object `{"input": 12, "output": 3, "total": 15}` (Python separators, like the SDK) |
//! | cost | `langfuse.observation.cost_details` | string | JSON `{"total": <usd>}` when the backend reports a cost (OpenRouter) |
//! | model parameters | `langfuse.observation.model.parameters` | string | JSON of `temperature` / `max_tokens` when set |
//! | observation metadata | `langfuse.observation.metadata.<k>` | string | one attribute per key, compact JSON (`latency_ms` → `123.4`); the root span repeats the trace metadata, as the SDK does for a framework root span |
//! | failure | `langfuse.observation.level` = `ERROR`, `langfuse.observation.status_message` | string | plus OTel span status ERROR with the same message |
//! | app root | `langfuse.internal.is_app_root` | bool | `true` on the trace's root span |
//! | truncated | `langfuse.observation.metadata.truncated` | string | JSON array of the keys shortened after a 413 |
//!
//! Content (`input`, `output`, `gen_ai.*.messages`) is only present when the
//! transform records content (see [`crate::genai`]).

use serde_json::{Value, json};

use crate::attrs::Attr;
use crate::genai;
use crate::pyjson;
use crate::record::{GenerationData, ObservationKind, SpanRecord, SpanStatus};
use elspeth_core::call::{ChatMessage, Role};

/// Per-exporter trace attributes from the transform's config.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Decor {
    pub environment: Option<String>,
    pub release: Option<String>,
    pub tags: Vec<String>,
}

/// Key of the truncation marker (an observation metadata key, so Langfuse
/// shows it).
pub(crate) const TRUNCATED_KEY: &str = "langfuse.observation.metadata.truncated";

/// Every attribute of `span`, in the order the SDK writes them.
pub(crate) fn span_attrs(span: &SpanRecord, decor: &Decor) -> Vec<Attr> {
    let mut out = Vec::with_capacity(32);
    for (k, v) in &span.trace.metadata {
        out.push(Attr::str(
            format!("langfuse.trace.metadata.{k}"),
            metadata_value(v),
        ));
    }
    if !decor.tags.is_empty() {
        out.push(Attr::str_array("langfuse.trace.tags", decor.tags.clone()));
    }
    out.push(Attr::str("langfuse.trace.name", span.trace.name.clone()));
    if let Some(env) = &decor.environment {
        out.push(Attr::str("langfuse.environment", env.clone()));
    }
    if let Some(release) = &decor.release {
        out.push(Attr::str("langfuse.release", release.clone()));
    }
    let generation = span.generation.as_deref();
    if let Some(g) = generation {
        if let Some(messages) = &g.input {
            out.push(Attr::str(
                "langfuse.observation.input",
                input_value(messages),
            ));
        }
        out.push(Attr::str(
            "langfuse.observation.model.name",
            g.response_model
                .clone()
                .unwrap_or_else(|| g.request_model.clone()),
        ));
    }
    out.push(Attr::str(
        "langfuse.observation.type",
        match span.observation {
            ObservationKind::Generation => "generation",
            ObservationKind::Span => "span",
        },
    ));
    if let Some(g) = generation {
        generation_details(g, &mut out);
    }
    let root = span.parent_span_id.is_none();
    if root {
        for (k, v) in &span.trace.metadata {
            if !span.metadata.iter().any(|(key, _)| key == k) {
                out.push(Attr::str(
                    format!("langfuse.observation.metadata.{k}"),
                    metadata_value(v),
                ));
            }
        }
    }
    for (k, v) in &span.metadata {
        out.push(Attr::str(
            format!("langfuse.observation.metadata.{k}"),
            metadata_value(v),
        ));
    }
    if let SpanStatus::Error(message) = &span.status {
        out.push(Attr::str("langfuse.observation.level", "ERROR"));
        out.push(Attr::str(
            "langfuse.observation.status_message",
            message.clone(),
        ));
    }
    if root {
        out.push(Attr::bool("langfuse.internal.is_app_root", true));
    }
    if let Some(g) = generation {
        genai::generation_attrs(span, g, &mut out);
    }
    out
}

fn generation_details(g: &GenerationData, out: &mut Vec<Attr>) {
    if let Some(text) = &g.output {
        out.push(Attr::str("langfuse.observation.output", text.clone()));
    }
    if let Some(u) = g.usage {
        out.push(Attr::str(
            "langfuse.observation.usage_details",
            pyjson::dumps(&usage_details(&u)),
        ));
    }
    if let Some(cost) = g.cost {
        // Sent so that Langfuse shows this cost instead of inferring one
        // from its own model prices.
        out.push(Attr::str(
            "langfuse.observation.cost_details",
            pyjson::dumps(&cost_details(&cost)),
        ));
    }
    if g.temperature.is_some() || g.max_tokens.is_some() {
        let mut params = serde_json::Map::new();
        if let Some(t) = g.temperature {
            params.insert("temperature".into(), json!(t));
        }
        if let Some(m) = g.max_tokens {
            params.insert("max_tokens".into(), json!(m));
        }
        out.push(Attr::str(
            "langfuse.observation.model.parameters",
            pyjson::dumps(&Value::Object(params)),
        ));
    }
}

/// `usage_details` as Langfuse's OpenAI integration writes them: cached
/// prompt tokens and reasoning tokens are their own usage types
/// (`input_cached_tokens`, `output_reasoning_tokens`), taken out of
/// `input` and `output`; `total` is the reported total.
fn usage_details(u: &elspeth_core::call::Usage) -> Value {
    let cached = u.cached_input.min(u.input);
    let reasoning = u.reasoning.min(u.output);
    let mut d = serde_json::Map::new();
    d.insert("input".into(), json!(u.input - cached));
    d.insert("output".into(), json!(u.output - reasoning));
    d.insert("total".into(), json!(u.total));
    if cached > 0 {
        d.insert("input_cached_tokens".into(), json!(cached));
    }
    if reasoning > 0 {
        d.insert("output_reasoning_tokens".into(), json!(reasoning));
    }
    Value::Object(d)
}

/// `cost_details` under the usage types of [`usage_details`], in USD; a
/// provider-reported cost has only its `total`.
fn cost_details(c: &elspeth_core::call::Cost) -> Value {
    let mut d = serde_json::Map::new();
    if let Some(p) = c.parts {
        d.insert("input".into(), json!(p.input));
        d.insert("output".into(), json!(p.output));
        if p.cached_input > 0.0 {
            d.insert("input_cached_tokens".into(), json!(p.cached_input));
        }
        if p.reasoning > 0.0 {
            d.insert("output_reasoning_tokens".into(), json!(p.reasoning));
        }
    }
    d.insert("total".into(), json!(c.total));
    Value::Object(d)
}

/// `langfuse.observation.input`: the prompt as is when it is one user
/// message, else the chat messages as JSON.
pub(crate) fn input_value(messages: &[ChatMessage]) -> String {
    match messages {
        [only] if only.role == Role::User => only.content.clone(),
        _ => Value::Array(
            messages
                .iter()
                .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
                .collect(),
        )
        .to_string(),
    }
}

/// A metadata value, JSON-encoded (strings included), compact, UTF-8 kept:
/// the SDK's `_serialize_metadata_value`.
pub(crate) fn metadata_value(v: &Value) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_encoding() {
        assert_eq!(
            input_value(&[ChatMessage::user("Classify: hi")]),
            "Classify: hi"
        );
        assert_eq!(
            input_value(&[ChatMessage::system("Be terse."), ChatMessage::user("Hi")]),
            r#"[{"role":"system","content":"Be terse."},{"role":"user","content":"Hi"}]"#
        );
    }

    #[test]
    fn metadata_values_are_json() {
        assert_eq!(metadata_value(&json!("tok-1")), "\"tok-1\"");
        assert_eq!(metadata_value(&json!(123.4)), "123.4");
        assert_eq!(metadata_value(&json!("é")), "\"é\"");
    }
}
