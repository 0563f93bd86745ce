//! Span records → OpenTelemetry SDK `SpanData`, the input of
//! `opentelemetry-application-insights`.
//!
//! - generation spans: name `chat {model}` (GenAI convention), kind CLIENT,
//!   the GenAI attributes of [`crate::genai`];
//! - the row's root span: name `elspeth.<plugin>`, kind INTERNAL (Application
//!   Insights shows it as an `InProc` dependency, like Microsoft's exporter);
//! - on every span, the trace metadata and the span's own metadata as
//!   `elspeth.<key>` (`elspeth.token_id`, `elspeth.plugin`,
//!   `elspeth.deployment`, `elspeth.latency_ms`, ...);
//! - values the exporter will cut (Application Insights keeps 8 KiB per
//!   property) or that were truncated after a 413 are listed in
//!   `elspeth.truncated` (a JSON array of keys).

use std::borrow::Cow;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use crate::attrs::{self, Attr, AttrValue, Key};
use crate::genai;
use crate::record::{MetaValue, SpanKind as RecordKind, SpanRecord, SpanStatus};

/// Longest property value Application Insights keeps (characters).
pub(crate) const PROPERTY_LIMIT: usize = 8192;

/// Key listing truncated attributes.
pub(crate) const TRUNCATED_KEY: &str = "elspeth.truncated";

/// The attributes of `record` for Application Insights.
pub(crate) fn span_attrs(record: &SpanRecord, truncate_to: Option<usize>) -> Vec<Attr<'_>> {
    let mut out = Vec::with_capacity(24);
    if let Some(g) = record.generation.as_deref() {
        genai::generation_attrs(record, g, &mut out);
        // Strings from here on: the property limit below measures them.
        attrs::materialize(&mut out);
    }
    for (k, v) in &record.trace.metadata {
        if !record.metadata.iter().any(|(key, _)| key == k) {
            out.push(metadata_attr(k, v));
        }
    }
    for (k, v) in &record.metadata {
        out.push(metadata_attr(k, v));
    }
    let mut truncated = match truncate_to {
        Some(limit) => attrs::truncate(&mut out, limit),
        None => Vec::new(),
    };
    for a in &out {
        if let AttrValue::Str(s) = &a.value
            && s.chars().count() > PROPERTY_LIMIT
            && !truncated.iter().any(|k| a.key.is(k))
        {
            truncated.push(a.key.to_string());
        }
    }
    if !truncated.is_empty() {
        out.push(Attr::str(
            TRUNCATED_KEY,
            serde_json::Value::from(truncated).to_string(),
        ));
    }
    out
}

fn metadata_attr<'a>(key: &'a str, value: &'a MetaValue) -> Attr<'a> {
    let key = Key::Prefixed("elspeth.", key);
    match value {
        MetaValue::Str(s) => Attr::str(key, s.as_str()),
        MetaValue::Int(i) => Attr::int(key, *i),
        MetaValue::Float(f) => Attr::double(key, *f),
        MetaValue::Bool(b) => Attr::bool(key, *b),
        MetaValue::Json(v) => json_attr(key, v),
    }
}

fn json_attr<'a>(key: Key<'a>, value: &'a serde_json::Value) -> Attr<'a> {
    match value {
        serde_json::Value::String(s) => Attr::str(key, s.as_str()),
        serde_json::Value::Bool(b) => Attr::bool(key, *b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Attr::int(key, i),
            None => Attr::double(key, n.as_f64().unwrap_or_default()),
        },
        other => Attr::str(key, other.to_string()),
    }
}

/// The span name: `chat {model}` for generations, the record's name otherwise.
pub(crate) fn span_name(record: &SpanRecord) -> String {
    match record.generation.as_deref() {
        Some(g) => genai::chat_span_name(g),
        None => record.name.to_string(),
    }
}

/// `record` as SDK span data.
pub(crate) fn span_data(
    record: &SpanRecord,
    scope: &InstrumentationScope,
    truncate_to: Option<usize>,
) -> SpanData {
    let attributes = span_attrs(record, truncate_to)
        .into_iter()
        .map(to_key_value)
        .collect();
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(record.trace_id.0),
            SpanId::from_bytes(record.span_id.0),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: record
            .parent_span_id
            .map(|p| SpanId::from_bytes(p.0))
            .unwrap_or(SpanId::INVALID),
        parent_span_is_remote: false,
        span_kind: match record.kind {
            RecordKind::Client => SpanKind::Client,
            RecordKind::Internal => SpanKind::Internal,
        },
        name: Cow::Owned(span_name(record)),
        start_time: record.start,
        end_time: record.end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: match &record.status {
            SpanStatus::Unset => Status::Unset,
            SpanStatus::Error(m) => Status::error(m.clone()),
        },
        instrumentation_scope: scope.clone(),
    }
}

/// One attribute as an SDK `KeyValue`.
pub(crate) fn to_key_value(attr: Attr<'_>) -> KeyValue {
    let value = match attr.value {
        AttrValue::Str(s) => Value::String(StringValue::from(s.into_owned())),
        AttrValue::Written(w) => Value::String(StringValue::from(w.to_text())),
        AttrValue::Int(i) => Value::I64(i),
        AttrValue::Double(d) => Value::F64(d),
        AttrValue::Bool(b) => Value::Bool(b),
        AttrValue::StrArray(items) => Value::Array(Array::String(
            items
                .iter()
                .map(|s| StringValue::from(s.to_string()))
                .collect(),
        )),
    };
    KeyValue::new(attr.key.into_static(), value)
}
