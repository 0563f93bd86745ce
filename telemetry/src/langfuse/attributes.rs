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

use std::borrow::Cow;

use serde_json::{Value, json};

use crate::attrs::{Attr, AttrSink, Key, Written};
use crate::genai;
use crate::pyjson;
#[cfg(test)]
use crate::record::MetaValue;
use crate::record::{GenerationData, ObservationKind, SharedStr, SpanRecord, SpanStatus};
use elspeth_core::call::{ChatMessage, Role};

/// Per-exporter trace attributes from the transform's config.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Decor {
    pub environment: Option<String>,
    pub release: Option<String>,
    pub tags: Vec<SharedStr>,
}

/// Key of the truncation marker (an observation metadata key, so Langfuse
/// shows it).
pub(crate) const TRUNCATED_KEY: &str = "langfuse.observation.metadata.truncated";

const TRACE_METADATA: &str = "langfuse.trace.metadata.";
const OBSERVATION_METADATA: &str = "langfuse.observation.metadata.";

/// Every attribute of `span`, in the order the SDK writes them.
#[cfg(test)]
pub(crate) fn span_attrs<'a>(span: &'a SpanRecord, decor: &'a Decor) -> Vec<Attr<'a>> {
    let mut out = Vec::with_capacity(32);
    write_span_attrs(span, decor, &mut out);
    out
}

/// Gives every attribute of `span` to `out`, in the order the SDK writes
/// them. Values borrow from the span wherever they can.
pub(crate) fn write_span_attrs<'a>(
    span: &'a SpanRecord,
    decor: &'a Decor,
    out: &mut impl AttrSink<'a>,
) {
    for (k, v) in &span.trace.metadata {
        out.push(Attr::json(Key::Prefixed(TRACE_METADATA, k), v));
    }
    if !decor.tags.is_empty() {
        out.push(Attr::str_array(
            "langfuse.trace.tags",
            decor.tags.as_slice(),
        ));
    }
    out.push(Attr::str("langfuse.trace.name", span.trace.name.as_str()));
    if let Some(env) = &decor.environment {
        out.push(Attr::str("langfuse.environment", env.as_str()));
    }
    if let Some(release) = &decor.release {
        out.push(Attr::str("langfuse.release", release.as_str()));
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
                .as_ref()
                .unwrap_or(&g.request_model)
                .as_str(),
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
        generation_details(g, out);
    }
    let root = span.parent_span_id.is_none();
    if root {
        for (k, v) in &span.trace.metadata {
            if !span.metadata.iter().any(|(key, _)| key == k) {
                out.push(Attr::json(Key::Prefixed(OBSERVATION_METADATA, k), v));
            }
        }
    }
    for (k, v) in &span.metadata {
        out.push(Attr::json(Key::Prefixed(OBSERVATION_METADATA, k), v));
    }
    if let SpanStatus::Error(message) = &span.status {
        out.push(Attr::str("langfuse.observation.level", "ERROR"));
        out.push(Attr::str(
            "langfuse.observation.status_message",
            message.as_str(),
        ));
    }
    if root {
        out.push(Attr::bool("langfuse.internal.is_app_root", true));
    }
    if let Some(g) = generation {
        genai::generation_attrs(span, g, out);
    }
}

fn generation_details<'a>(g: &'a GenerationData, out: &mut impl AttrSink<'a>) {
    if let Some(text) = &g.output {
        out.push(Attr::str("langfuse.observation.output", text.as_str()));
    }
    if let Some(u) = &g.usage {
        out.push(Attr::written(
            "langfuse.observation.usage_details",
            Written::UsageDetails(u),
        ));
    }
    if let Some(cost) = &g.cost {
        // Sent so that Langfuse shows this cost instead of inferring one
        // from its own model prices.
        out.push(Attr::written(
            "langfuse.observation.cost_details",
            Written::CostDetails(cost),
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

/// Appends `usage_details` as `json.dumps` writes it, without building the
/// JSON value first (this is on every generation).
pub(crate) fn write_usage_details(u: &elspeth_core::call::Usage, out: &mut Vec<u8>) {
    let cached = u.cached_input.min(u.input);
    let reasoning = u.reasoning.min(u.output);
    let mut out = DetailsWriter::new(out);
    out.entry("input", u.input - cached);
    out.entry("output", u.output - reasoning);
    out.entry("total", u.total);
    if cached > 0 {
        out.entry("input_cached_tokens", cached);
    }
    if reasoning > 0 {
        out.entry("output_reasoning_tokens", reasoning);
    }
    out.finish();
}

/// Appends `cost_details` as `json.dumps` writes it, without building the
/// JSON value first (this is on every priced generation).
pub(crate) fn write_cost_details(c: &elspeth_core::call::Cost, out: &mut Vec<u8>) {
    let mut out = DetailsWriter::new(out);
    if let Some(p) = c.parts {
        out.entry("input", p.input);
        out.entry("output", p.output);
        if p.cached_input > 0.0 {
            out.entry("input_cached_tokens", p.cached_input);
        }
        if p.reasoning > 0.0 {
            out.entry("output_reasoning_tokens", p.reasoning);
        }
    }
    out.entry("total", c.total);
    out.finish();
}

/// Writes a flat JSON object of numbers with Python's separators
/// (`{"input": 12, "output": 3}`), numbers as `serde_json` writes them.
struct DetailsWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> DetailsWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    /// `key` and a number, as `serde_json` writes it (a non-finite float
    /// is `null`, as `serde_json::Value` has it).
    fn entry(&mut self, key: &str, value: impl serde::Serialize) {
        if !self.first {
            self.out.extend_from_slice(b", ");
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\": ");
        // A number into a Vec: cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, &value);
    }

    fn finish(self) {
        self.out.push(b'}');
    }
}

/// `usage_details` as Langfuse's OpenAI integration writes them (the
/// reference [`write_usage_details`] is tested against): cached
/// prompt tokens and reasoning tokens are their own usage types
/// (`input_cached_tokens`, `output_reasoning_tokens`), taken out of
/// `input` and `output`; `total` is the reported total.
#[cfg(test)]
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
/// provider-reported cost has only its `total` (the reference
/// [`write_cost_details`] is tested against).
#[cfg(test)]
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
pub(crate) fn input_value(messages: &[ChatMessage]) -> Cow<'_, str> {
    match messages {
        [only] if only.role == Role::User => Cow::Borrowed(&only.content),
        _ => Cow::Owned(
            Value::Array(
                messages
                    .iter()
                    .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
                    .collect(),
            )
            .to_string(),
        ),
    }
}

/// A metadata value, JSON-encoded (strings included), compact, UTF-8 kept:
/// the SDK's `_serialize_metadata_value`.
#[cfg(test)]
pub(crate) fn metadata_value(v: &MetaValue) -> String {
    v.json_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_details_are_json_dumps() {
        let mut detailed = elspeth_core::call::Usage::new(100, 40);
        detailed.cached_input = 60;
        detailed.reasoning = 10;
        let mut huge = elspeth_core::call::Usage::new(u64::MAX - 1, 0);
        huge.total = u64::MAX;
        for u in [
            elspeth_core::call::Usage::new(12, 3),
            detailed,
            elspeth_core::call::Usage::new(0, 0),
            huge,
        ] {
            assert_eq!(
                Written::UsageDetails(&u).to_text(),
                pyjson::dumps(&usage_details(&u))
            );
        }
    }

    #[test]
    fn cost_details_are_json_dumps() {
        use elspeth_core::call::{Cost, CostParts};
        let parts = CostParts {
            input: 0.0000125,
            output: 0.00002,
            cached_input: 0.5e-6,
            reasoning: 0.0,
        };
        for cost in [
            Cost::reported(0.0003),
            Cost {
                total: 0.000032500000000000004,
                parts: Some(parts),
            },
            Cost {
                total: f64::NAN,
                parts: Some(CostParts {
                    reasoning: 1e-7,
                    ..parts
                }),
            },
        ] {
            assert_eq!(
                Written::CostDetails(&cost).to_text(),
                pyjson::dumps(&cost_details(&cost))
            );
        }
    }

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
        let m = |v: Value| metadata_value(&MetaValue::from(v));
        assert_eq!(m(json!("tok-1")), "\"tok-1\"");
        assert_eq!(m(json!(123.4)), "123.4");
        assert_eq!(m(json!("é")), "\"é\"");
    }
}
