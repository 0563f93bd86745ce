//! OpenTelemetry GenAI semantic conventions for a generation span.
//!
//! Every exporter puts these on each generation (LLM call) span:
//!
//! | key | type | when |
//! | --- | --- | --- |
//! | `gen_ai.operation.name` | string `chat` | always |
//! | `gen_ai.provider.name` | string (`azure.ai.openai`, `openrouter`) | service known |
//! | `gen_ai.system` | string (`az.ai.openai`, `openrouter`) — deprecated, but Application Insights keys its dependency type on it | service known |
//! | `gen_ai.request.model` | string | always |
//! | `gen_ai.request.temperature` | double | set on the request |
//! | `gen_ai.request.max_tokens` | int | set on the request |
//! | `server.address` | string | host known |
//! | `gen_ai.response.model` | string | reported |
//! | `gen_ai.response.id` | string | reported |
//! | `gen_ai.response.finish_reasons` | string array | reported |
//! | `gen_ai.usage.input_tokens` / `gen_ai.usage.output_tokens` | int | usage reported |
//! | `gen_ai.usage.cache_read.input_tokens` | int | some prompt tokens came from the provider's cache |
//! | `elspeth.cost_usd` | double (USD) | cost reported by the provider or priced by elspeth |
//! | `error.type` | string (HTTP status or error class) | failed call |
//! | `http.response.status_code` | int | failed call with an HTTP answer |
//! | `gen_ai.input.messages` | JSON string (input-messages schema) | content recording on |
//! | `gen_ai.output.messages` | JSON string (output-messages schema) | content recording on, call succeeded |
//!
//! Content attributes only exist when the span record carries content, and
//! the tracer only stores content when the transform's
//! `enable_content_recording` is on: with it off no prompt or reply text can
//! reach any exporter.

use crate::attrs::{Attr, AttrSink, Written, count};
use crate::record::{GenerationData, SpanRecord};
use elspeth_core::call::ChatMessage;

/// `chat {model}`: the GenAI span name of a generation.
pub(crate) fn chat_span_name(g: &GenerationData) -> String {
    let mut name = String::with_capacity(5 + g.request_model.len());
    name.push_str("chat ");
    name.push_str(&g.request_model);
    name
}

/// Appends the GenAI attributes of generation `g` (see the module table).
pub(crate) fn generation_attrs<'a>(
    span: &'a SpanRecord,
    g: &'a GenerationData,
    out: &mut impl AttrSink<'a>,
) {
    out.push(Attr::str("gen_ai.operation.name", "chat"));
    if let Some(system) = &g.system {
        out.push(Attr::str("gen_ai.provider.name", system.provider_name()));
        out.push(Attr::str("gen_ai.system", system.system_name()));
    }
    out.push(Attr::str("gen_ai.request.model", g.request_model.as_str()));
    if let Some(t) = g.temperature {
        out.push(Attr::double("gen_ai.request.temperature", t));
    }
    if let Some(m) = g.max_tokens {
        out.push(Attr::int("gen_ai.request.max_tokens", i64::from(m)));
    }
    if let Some(host) = &g.server_address {
        out.push(Attr::str("server.address", host.as_str()));
    }
    if let Some(model) = &g.response_model {
        out.push(Attr::str("gen_ai.response.model", model.as_str()));
    }
    if let Some(id) = &g.response_id {
        out.push(Attr::str("gen_ai.response.id", id.as_str()));
    }
    if !g.finish_reasons.is_empty() {
        out.push(Attr::str_array(
            "gen_ai.response.finish_reasons",
            g.finish_reasons.as_slice(),
        ));
    }
    if let Some(u) = g.usage {
        out.push(Attr::int("gen_ai.usage.input_tokens", count(u.input)));
        out.push(Attr::int("gen_ai.usage.output_tokens", count(u.output)));
        if u.cached_input > 0 {
            out.push(Attr::int(
                "gen_ai.usage.cache_read.input_tokens",
                count(u.cached_input),
            ));
        }
    }
    if let Some(cost) = g.cost {
        out.push(Attr::double("elspeth.cost_usd", cost.total));
    }
    if let Some(e) = &g.error_type {
        out.push(Attr::str("error.type", e.as_str()));
    } else if matches!(span.status, crate::record::SpanStatus::Error(_)) {
        out.push(Attr::str("error.type", "_OTHER"));
    }
    if let Some(status) = g.http_status {
        out.push(Attr::int("http.response.status_code", i64::from(status)));
    }
    if let Some(messages) = &g.input {
        out.push(Attr::written(
            "gen_ai.input.messages",
            Written::InputMessages(messages),
        ));
    }
    if let Some(text) = &g.output {
        out.push(Attr::written(
            "gen_ai.output.messages",
            Written::OutputMessages(text, g.finish_reasons.first().map(|r| r.as_str())),
        ));
    }
}

/// Appends `s` as a JSON string (quoted and escaped exactly as `serde_json`
/// writes it).
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends `gen_ai.input.messages`:
/// `[{"role":"user","parts":[{"type":"text","content":"..."}]}]`.
pub(crate) fn write_input_messages(messages: &[ChatMessage], out: &mut Vec<u8>) {
    let len: usize = messages.iter().map(|m| m.content.len() + 64).sum();
    out.reserve(len + 2);
    out.push(b'[');
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"role\":");
        push_json_str(out, m.role.as_str());
        out.extend_from_slice(b",\"parts\":[{\"type\":\"text\",\"content\":");
        push_json_str(out, &m.content);
        out.extend_from_slice(b"}]}");
    }
    out.push(b']');
}

/// Appends `gen_ai.output.messages`: one assistant message with the reply
/// text and, when reported, its finish reason.
pub(crate) fn write_output_messages(text: &str, finish_reason: Option<&str>, out: &mut Vec<u8>) {
    out.reserve(text.len() + 96);
    out.extend_from_slice(b"[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":");
    push_json_str(out, text);
    out.extend_from_slice(b"}]");
    if let Some(reason) = finish_reason {
        out.extend_from_slice(b",\"finish_reason\":");
        push_json_str(out, reason);
    }
    out.extend_from_slice(b"}]");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_schemas() {
        let input =
            Written::InputMessages(&[ChatMessage::system("Be brief."), ChatMessage::user("Hi")])
                .to_text();
        assert_eq!(
            input,
            r#"[{"role":"system","parts":[{"type":"text","content":"Be brief."}]},{"role":"user","parts":[{"type":"text","content":"Hi"}]}]"#
        );
        let output = Written::OutputMessages("Hello", Some("stop")).to_text();
        assert_eq!(
            output,
            r#"[{"role":"assistant","parts":[{"type":"text","content":"Hello"}],"finish_reason":"stop"}]"#
        );
        // The same bytes as serde_json's `Value`, escapes included.
        use serde_json::{Value, json};
        let text = "é \"quoted\" \\ \n\t\u{1}";
        let messages = [ChatMessage::system(text), ChatMessage::user("Hi")];
        let expected = Value::Array(
            messages
                .iter()
                .map(|m| json!({"role": m.role.as_str(), "parts": [{"type": "text", "content": m.content}]}))
                .collect(),
        )
        .to_string();
        assert_eq!(Written::InputMessages(&messages).to_text(), expected);
        let expected = Value::Array(vec![
            json!({"role": "assistant", "parts": [{"type": "text", "content": text}]}),
        ])
        .to_string();
        assert_eq!(Written::OutputMessages(text, None).to_text(), expected);
    }
}
