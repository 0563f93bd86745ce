//! Span records → OTLP `ExportTraceServiceRequest` (protobuf), as sent to
//! Langfuse.
//!
//! The request is written straight from the span records into protobuf
//! bytes — the same bytes `prost` writes for the equivalent
//! `opentelemetry-proto` message (fields in the same order, defaults
//! omitted), without building that message tree first: attribute keys and
//! values are borrowed from the records, metadata values are JSON-encoded in
//! place, and a field that repeats the previous span's (same key, same
//! value: environment, model, provider, ...) is copied from a small memo of
//! encoded fields. The tests check the bytes against `prost`'s.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::attributes::{self, Decor, TRUNCATED_KEY};
use crate::attrs::{self, Attr, AttrValue, Written};
use crate::record::{SpanKind, SpanRecord, SpanStatus};

/// W3C "sampled" trace flag plus OTLP's "has is-remote, not remote" bit
/// (0x100). The Python SDK writes 0x100 alone; every span here is sampled.
const SPAN_FLAGS: u32 = 0x101;

/// What every request of one exporter shares: resource and scope.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    pub decor: Decor,
    /// Resource and scope as protobuf, encoded once.
    resource_bytes: Vec<u8>,
    scope_bytes: Vec<u8>,
}

impl Encoder {
    /// Resource: `service.name=elspeth`, `service.version`,
    /// `service.instance.id`, `telemetry.sdk.{language,name,version}` and
    /// `langfuse.environment` / `langfuse.release` when set. Scope:
    /// `langfuse-sdk` with this crate's version and a `public_key` attribute,
    /// like the official SDK: the Langfuse server reads spans of a scope
    /// whose name starts with `langfuse-sdk` as carrying Langfuse's own
    /// attribute conventions (otherwise it also copies every attribute into
    /// the observation's metadata).
    pub(crate) fn new(decor: Decor, public_key: &str, instance_id: &str) -> Self {
        let version = env!("CARGO_PKG_VERSION");
        let mut resource_attrs = vec![
            kv("service.name", "elspeth"),
            kv("service.version", version),
            kv("service.instance.id", instance_id),
            kv("telemetry.sdk.language", "rust"),
            kv("telemetry.sdk.name", "elspeth"),
            kv("telemetry.sdk.version", version),
        ];
        if let Some(env) = &decor.environment {
            resource_attrs.push(kv("langfuse.environment", env));
        }
        if let Some(release) = &decor.release {
            resource_attrs.push(kv("langfuse.release", release));
        }
        let resource = Resource {
            attributes: resource_attrs,
            dropped_attributes_count: 0,
            entity_refs: Vec::new(),
        };
        let scope = InstrumentationScope {
            name: "langfuse-sdk".into(),
            version: version.into(),
            attributes: vec![kv("public_key", public_key)],
            dropped_attributes_count: 0,
        };
        Self {
            decor,
            resource_bytes: resource.encode_to_vec(),
            scope_bytes: scope.encode_to_vec(),
        }
    }

    /// The protobuf bytes of the request for `spans` (in end order): one
    /// `ResourceSpans` with one `ScopeSpans`. With `truncate_to`, every
    /// attribute value longer than that is shortened and the span marked.
    /// In one buffer, for the tests to compare with `prost`'s; the
    /// transport writes [`encode_into`](Self::encode_into)'s two parts.
    #[cfg(test)]
    pub(crate) fn encode(&self, spans: &[SpanRecord], truncate_to: Option<usize>) -> Vec<u8> {
        let mut scope = Vec::new();
        let mut out = self.encode_into(spans, truncate_to, &mut scope);
        out.extend_from_slice(&scope);
        out
    }

    /// The request in two parts, written once each: its `ScopeSpans`
    /// message into `scope` (cleared first, its capacity kept for the next
    /// batch), and the returned head that goes before it (the request's
    /// and the `ResourceSpans`' keys and lengths and the resource). The
    /// request is the head followed by `scope`: [`encode`](Self::encode)'s
    /// bytes, without copying the spans into nested buffers.
    pub(crate) fn encode_into(
        &self,
        spans: &[SpanRecord],
        truncate_to: Option<usize>,
        scope: &mut Vec<u8>,
    ) -> Vec<u8> {
        scope.clear();
        scope.reserve(self.scope_bytes.len() + 16 + spans.len() * 1536);
        put_message(scope, 1, &self.scope_bytes);
        let mut span = Vec::with_capacity(2048);
        let mut list = Vec::with_capacity(40);
        let mut scratch = Vec::with_capacity(256);
        let mut memo = KvMemo::new();
        for record in spans {
            span.clear();
            self.write_span(
                record,
                truncate_to,
                &mut list,
                &mut scratch,
                &mut memo,
                &mut span,
            );
            put_message(scope, 2, &span);
        }
        // ResourceSpans { resource = 1, scope_spans = 2 (the `scope` bytes) }
        let mut resource = Vec::with_capacity(self.resource_bytes.len() + 24);
        put_message(&mut resource, 1, &self.resource_bytes);
        put_key(&mut resource, 2, WIRE_LEN);
        put_varint(&mut resource, scope.len() as u64);
        // ExportTraceServiceRequest { resource_spans = 1 }
        let mut head = Vec::with_capacity(resource.len() + 12);
        put_key(&mut head, 1, WIRE_LEN);
        put_varint(&mut head, (resource.len() + scope.len()) as u64);
        head.extend_from_slice(&resource);
        head
    }

    /// One `Span` message body, fields in `prost`'s order (by tag).
    fn write_span<'a>(
        &'a self,
        record: &'a SpanRecord,
        truncate_to: Option<usize>,
        list: &mut Vec<Attr<'a>>,
        scratch: &mut Vec<u8>,
        memo: &mut KvMemo,
        out: &mut Vec<u8>,
    ) {
        let mut status_message = match &record.status {
            SpanStatus::Unset => "",
            SpanStatus::Error(m) => m.as_str(),
        };
        if let Some(limit) = truncate_to
            && status_message.len() > limit
        {
            let mut cut = limit;
            while !status_message.is_char_boundary(cut) {
                cut -= 1;
            }
            status_message = &status_message[..cut];
        }
        put_bytes(out, 1, &record.trace_id.0);
        put_bytes(out, 2, &record.span_id.0);
        if let Some(parent) = record.parent_span_id {
            put_bytes(out, 4, &parent.0);
        }
        if !record.name.is_empty() {
            put_bytes(out, 5, record.name.as_bytes());
        }
        let kind = match record.kind {
            SpanKind::Internal => 1u64,
            SpanKind::Client => 3,
        };
        put_key(out, 6, WIRE_VARINT);
        put_varint(out, kind);
        for (tag, t) in [(7, record.start), (8, record.end)] {
            let nanos = unix_nanos(t);
            if nanos != 0 {
                put_key(out, tag, WIRE_FIXED64);
                out.extend_from_slice(&nanos.to_le_bytes());
            }
        }
        match truncate_to {
            // Each attribute is written as it is made: no list.
            None => attributes::write_span_attrs(
                record,
                &self.decor,
                &mut Direct { memo, out, scratch },
            ),
            // After a 413: every value is measured, and shortened, first.
            Some(limit) => {
                list.clear();
                attributes::write_span_attrs(record, &self.decor, list);
                let keys = attrs::truncate(list, limit);
                for attr in list.iter() {
                    memo.put(out, attr, scratch);
                }
                if !keys.is_empty() {
                    let keys = serde_json::Value::from(keys).to_string();
                    put_key_value(out, &Attr::str(TRUNCATED_KEY, keys.as_str()), scratch);
                }
            }
        }
        // Status: message (2) when set, code (3) when not Unset.
        let code = match record.status {
            SpanStatus::Unset => 0u64,
            SpanStatus::Error(_) => 2,
        };
        let mut len = 0;
        if !status_message.is_empty() {
            len += 1 + varint_len(status_message.len() as u64) + status_message.len();
        }
        if code != 0 {
            len += 1 + varint_len(code);
        }
        put_key(out, 15, WIRE_LEN);
        put_varint(out, len as u64);
        if !status_message.is_empty() {
            put_bytes(out, 2, status_message.as_bytes());
        }
        if code != 0 {
            put_key(out, 3, WIRE_VARINT);
            put_varint(out, code);
        }
        // prost writes fields in tag order: `flags` (16) comes last.
        put_key(out, 16, WIRE_FIXED32);
        out.extend_from_slice(&SPAN_FLAGS.to_le_bytes());
    }
}

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wire));
}

/// A length-delimited field (`bytes`, `string`), written even when empty:
/// callers skip empty optional fields themselves where `prost` would.
fn put_bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_key(out, tag, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An embedded message field whose body is already encoded.
fn put_message(out: &mut Vec<u8>, tag: u32, body: &[u8]) {
    put_bytes(out, tag, body);
}

/// Length of an `AnyValue` holding `string_value` of `len` bytes.
fn any_str_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// One `KeyValue` (field 9 of `Span`): key (1), value (2) = `AnyValue`.
fn put_key_value(out: &mut Vec<u8>, attr: &Attr<'_>, scratch: &mut Vec<u8>) {
    match &attr.value {
        AttrValue::Str(s) => {
            put_key_value_with(out, attr, s.as_bytes());
        }
        AttrValue::Written(w) => {
            put_key_value_with(out, attr, written(w, scratch));
        }
        AttrValue::Int(i) => {
            put_key_header(out, attr, 1 + varint_len(*i as u64));
            put_key(out, 3, WIRE_VARINT);
            put_varint(out, *i as u64);
        }
        AttrValue::Double(d) => {
            put_key_header(out, attr, 9);
            put_key(out, 4, WIRE_FIXED64);
            out.extend_from_slice(&d.to_le_bytes());
        }
        AttrValue::Bool(b) => {
            put_key_header(out, attr, 2);
            put_key(out, 2, WIRE_VARINT);
            out.push(u8::from(*b));
        }
        AttrValue::StrArray(items) => {
            let array = array_len(items);
            put_key_header(out, attr, 1 + varint_len(array as u64) + array);
            put_key(out, 5, WIRE_LEN);
            put_varint(out, array as u64);
            for s in items.iter() {
                put_key(out, 1, WIRE_LEN);
                put_varint(out, any_str_len(s.len()) as u64);
                put_bytes(out, 1, s.as_bytes());
            }
        }
    }
}

/// The text of a written string value, in `scratch`.
fn written<'s>(value: &Written<'_>, scratch: &'s mut Vec<u8>) -> &'s [u8] {
    scratch.clear();
    value.write(scratch);
    scratch
}

/// A `KeyValue`'s tag and length, its key, and its value's tag and length
/// (an `AnyValue` body of `any_len` bytes follows). Returns where the key's
/// bytes start, counted from the field's first byte.
fn put_key_header(out: &mut Vec<u8>, attr: &Attr<'_>, any_len: usize) -> usize {
    let start = out.len();
    let key_len = attr.key.len();
    let kv_len =
        1 + varint_len(key_len as u64) + key_len + 1 + varint_len(any_len as u64) + any_len;
    put_key(out, 9, WIRE_LEN);
    put_varint(out, kv_len as u64);
    put_key(out, 1, WIRE_LEN);
    put_varint(out, key_len as u64);
    let key_at = out.len() - start;
    attr.key.write(out);
    put_key(out, 2, WIRE_LEN);
    put_varint(out, any_len as u64);
    key_at
}

/// [`put_key_value`] for a string or JSON attribute whose string value is
/// `value` (for JSON: its bytes, already written). Returns where the key's
/// bytes start, counted from the field's first byte.
fn put_key_value_with(out: &mut Vec<u8>, attr: &Attr<'_>, value: &[u8]) -> usize {
    let key_at = put_key_header(out, attr, any_str_len(value.len()));
    put_bytes(out, 1, value);
    key_at
}

/// Writes each attribute into the span as the producer hands it over.
struct Direct<'w> {
    memo: &'w mut KvMemo,
    out: &'w mut Vec<u8>,
    scratch: &'w mut Vec<u8>,
}

impl<'a> attrs::AttrSink<'a> for Direct<'_> {
    #[inline]
    fn push(&mut self, attr: Attr<'a>) {
        self.memo.put(self.out, &attr, self.scratch);
    }
}

/// The encoded `KeyValue`s of the last string attributes seen, one slot
/// per key (direct-mapped), for the spans of one request: most attributes
/// repeat the previous span's value (environment, tags, trace name, model,
/// provider, server, the transform's metadata), and copying their bytes is
/// cheaper than encoding them again. The bytes are the same either way.
struct KvMemo {
    slots: Vec<MemoSlot>,
}

#[derive(Default)]
struct MemoSlot {
    /// The whole encoded field (tag, length, key, value); empty: unused.
    bytes: Vec<u8>,
    /// Where the key's bytes start in `bytes`.
    key_at: usize,
    key_len: usize,
    /// The value's bytes are the last `value_len` of `bytes`.
    value_len: usize,
    /// Where the field's key and value were borrowed from, when both were
    /// (see [`Origin`]).
    origin: Option<Origin>,
}

/// The addresses a field's key and value were borrowed from. The memo lives
/// for one [`Encoder::encode_into`] call, during which every record, the
/// encoder's settings and `'static` data stay alive and unchanged: a field
/// borrowed from the same addresses as a slot's is the same key and value,
/// so the slot's bytes are its bytes without comparing them (the previous
/// span's environment, trace name, model, the row's trace metadata on its
/// second span). Values the list owns (built for this span and dropped with
/// it, so an address may come back with other contents) and values written
/// into the scratch buffer have no origin and are compared by their bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Origin {
    /// Address and length of the key, or of its prefix and its name.
    key: (usize, usize),
    name: (usize, usize),
    value: (usize, usize),
}

impl Origin {
    fn of(attr: &Attr<'_>) -> Option<Self> {
        use crate::attrs::Key;
        use std::borrow::Cow;
        // The value first: numbers, arrays and owned strings (most of the
        // fields without an origin) return before the key is looked at.
        let value = match &attr.value {
            AttrValue::Str(Cow::Borrowed(v)) => (v.as_ptr() as usize, v.len()),
            // Distinct from any string's address: a `MetaValue` is not
            // a string's bytes, and the length marks it.
            AttrValue::Written(Written::Meta(m)) => (std::ptr::from_ref(*m) as usize, usize::MAX),
            _ => return None,
        };
        let (key, name) = match &attr.key {
            Key::Static(k) => ((k.as_ptr() as usize, k.len()), (0, 0)),
            Key::Prefixed(p, n) => (
                (p.as_ptr() as usize, p.len()),
                (n.as_ptr() as usize, n.len()),
            ),
            Key::Owned(_) => return None,
        };
        Some(Self { key, name, value })
    }
}

/// Memo slots; a power of two.
const MEMO_SLOTS: usize = 64;
/// Longer values (prompts, replies) are encoded every time.
const MEMO_MAX_VALUE: usize = 128;

impl KvMemo {
    fn new() -> Self {
        Self {
            slots: (0..MEMO_SLOTS).map(|_| MemoSlot::default()).collect(),
        }
    }

    /// Appends `attr` as [`put_key_value`] does, from the memo when the
    /// same key last had the same value.
    fn put(&mut self, out: &mut Vec<u8>, attr: &Attr<'_>, scratch: &mut Vec<u8>) {
        let slot_index = key_hash(&attr.key) & (MEMO_SLOTS - 1);
        let origin = Origin::of(attr);
        if let Some(origin) = origin {
            let slot = &self.slots[slot_index];
            if slot.origin == Some(origin) {
                out.extend_from_slice(&slot.bytes);
                return;
            }
        }
        let value: &[u8] = match &attr.value {
            AttrValue::Str(s) => s.as_bytes(),
            AttrValue::Written(w) => written(w, scratch),
            _ => return put_key_value(out, attr, scratch),
        };
        if value.len() > MEMO_MAX_VALUE {
            // Written as is (a JSON value is not serialized again).
            put_key_value_with(out, attr, value);
            return;
        }
        let slot = &mut self.slots[slot_index];
        if slot.value_len == value.len()
            && slot.key_len == attr.key.len()
            && !slot.bytes.is_empty()
            && slot.bytes.ends_with(value)
            && attr
                .key
                .is_at(&slot.bytes[slot.key_at..slot.key_at + slot.key_len])
        {
            out.extend_from_slice(&slot.bytes);
            slot.origin = origin;
            return;
        }
        let start = out.len();
        slot.key_at = put_key_value_with(out, attr, value);
        slot.key_len = attr.key.len();
        slot.value_len = value.len();
        slot.origin = origin;
        slot.bytes.clear();
        slot.bytes.extend_from_slice(&out[start..]);
    }
}

/// A cheap hash of a key, to pick its memo slot: its length and two of its
/// last bytes (where this crate's keys differ). A collision only costs a
/// miss: a hit compares the key and the value.
fn key_hash(key: &crate::attrs::Key<'_>) -> usize {
    use crate::attrs::Key;
    let tail = match key {
        Key::Static(s) | Key::Prefixed(_, s) => s.as_bytes(),
        Key::Owned(s) => s.as_bytes(),
    };
    let at = |back: usize| {
        tail.len()
            .checked_sub(back)
            .map_or(0, |i| usize::from(tail[i]))
    };
    key.len().wrapping_mul(31) ^ at(1).wrapping_mul(7) ^ at(3).wrapping_mul(13)
}

/// Length of an `ArrayValue` body of string values.
fn array_len(items: &[crate::record::SharedStr]) -> usize {
    items
        .iter()
        .map(|s| {
            let any = any_str_len(s.len());
            1 + varint_len(any as u64) + any
        })
        .sum()
}

/// Nanoseconds since the Unix epoch (0 before it).
pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::trace::v1::{
        ResourceSpans, ScopeSpans, Span, Status, span, status,
    };

    use super::*;
    use crate::record::{
        GenerationData, MetaValue, ObservationKind, SharedStr, SpanId, TraceId, TraceInfo,
    };
    use elspeth_core::call::{ChatMessage, Cost, GenAiSystem, Usage};

    /// The attribute as `prost`'s message (the way requests were built
    /// before they were written directly).
    fn to_proto(attr: Attr<'_>) -> KeyValue {
        let value = match attr.value {
            AttrValue::Str(s) => any_value::Value::StringValue(s.into_owned()),
            AttrValue::Written(w) => any_value::Value::StringValue(w.to_text()),
            AttrValue::Int(i) => any_value::Value::IntValue(i),
            AttrValue::Double(d) => any_value::Value::DoubleValue(d),
            AttrValue::Bool(b) => any_value::Value::BoolValue(b),
            AttrValue::StrArray(items) => any_value::Value::ArrayValue(ArrayValue {
                values: items
                    .iter()
                    .map(|s| AnyValue {
                        value: Some(any_value::Value::StringValue(s.to_string())),
                    })
                    .collect(),
            }),
        };
        KeyValue {
            key: attr.key.to_string(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn prost_request(
        encoder: &Encoder,
        spans: &[SpanRecord],
        truncate_to: Option<usize>,
    ) -> ExportTraceServiceRequest {
        let spans = spans
            .iter()
            .map(|record| {
                let mut list = attributes::span_attrs(record, &encoder.decor);
                let mut status_message = match &record.status {
                    SpanStatus::Unset => String::new(),
                    SpanStatus::Error(m) => m.clone(),
                };
                if let Some(limit) = truncate_to {
                    let keys = attrs::truncate(&mut list, limit);
                    if !keys.is_empty() {
                        list.push(Attr::str(
                            TRUNCATED_KEY,
                            serde_json::Value::from(keys).to_string(),
                        ));
                    }
                    if status_message.len() > limit {
                        let mut cut = limit;
                        while !status_message.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        status_message.truncate(cut);
                    }
                }
                Span {
                    trace_id: record.trace_id.0.to_vec(),
                    span_id: record.span_id.0.to_vec(),
                    trace_state: String::new(),
                    parent_span_id: record
                        .parent_span_id
                        .map(|p| p.0.to_vec())
                        .unwrap_or_default(),
                    flags: SPAN_FLAGS,
                    name: record.name.to_string(),
                    kind: match record.kind {
                        SpanKind::Internal => span::SpanKind::Internal,
                        SpanKind::Client => span::SpanKind::Client,
                    } as i32,
                    start_time_unix_nano: unix_nanos(record.start),
                    end_time_unix_nano: unix_nanos(record.end),
                    attributes: list.into_iter().map(to_proto).collect(),
                    dropped_attributes_count: 0,
                    events: Vec::new(),
                    dropped_events_count: 0,
                    links: Vec::new(),
                    dropped_links_count: 0,
                    status: Some(Status {
                        message: status_message,
                        code: match record.status {
                            SpanStatus::Unset => status::StatusCode::Unset,
                            SpanStatus::Error(_) => status::StatusCode::Error,
                        } as i32,
                    }),
                }
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource::decode(encoder.resource_bytes.as_slice()).unwrap()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(
                        InstrumentationScope::decode(encoder.scope_bytes.as_slice()).unwrap(),
                    ),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn spans() -> Vec<SpanRecord> {
        let trace = Arc::new(TraceInfo {
            name: "elspeth.azure_llm".into(),
            metadata: [
                ("token_id".into(), MetaValue::from("row-1")),
                ("plugin".into(), MetaValue::from("azure_llm")),
                ("deployment".into(), MetaValue::from("gpt-4o")),
                ("rows".into(), MetaValue::from(12usize)),
                (
                    "nested".into(),
                    MetaValue::from(serde_json::json!({"a": [1, "é"]})),
                ),
            ]
            .into_iter()
            .collect(),
        });
        let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let root = SpanRecord {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([1; 8]),
            parent_span_id: None,
            name: trace.name.clone(),
            kind: SpanKind::Internal,
            observation: ObservationKind::Span,
            start,
            end: start + Duration::from_millis(5),
            status: SpanStatus::Unset,
            trace: trace.clone(),
            metadata: [
                ("rows".into(), MetaValue::from(12usize)),
                // Longer than the memo takes.
                (
                    "long".into(),
                    MetaValue::from(serde_json::json!({"text": "é".repeat(100)})),
                ),
            ]
            .into_iter()
            .collect(),
            generation: None,
        };
        let ok = SpanRecord {
            span_id: SpanId([2; 8]),
            parent_span_id: Some(root.span_id),
            name: SharedStr::from_static("llm_call"),
            kind: SpanKind::Client,
            observation: ObservationKind::Generation,
            metadata: [
                ("query".into(), MetaValue::from("q \"1\"")),
                ("latency_ms".into(), MetaValue::Float(123.4)),
            ]
            .into_iter()
            .collect(),
            generation: Some(Box::new(GenerationData {
                system: Some(GenAiSystem::AzureOpenAi),
                request_model: "gpt-4o".into(),
                response_model: Some("gpt-4o-2024-08-06".into()),
                response_id: Some("chatcmpl-1".into()),
                finish_reasons: vec!["stop".into()],
                input: Some(vec![
                    ChatMessage::system("Be terse."),
                    ChatMessage::user("Classify: é\n".repeat(40)),
                ]),
                output: Some("positive".into()),
                usage: Some(Usage::new(12, 3)),
                cost: Some(Cost::reported(0.0012)),
                temperature: Some(0.2),
                max_tokens: Some(64),
                server_address: Some("example.openai.azure.com".into()),
                ..Default::default()
            })),
            ..root.clone()
        };
        let failed = SpanRecord {
            span_id: SpanId([3; 8]),
            status: SpanStatus::Error("HTTP 500: ".to_string() + &"x".repeat(300)),
            generation: Some(Box::new(GenerationData {
                system: Some(GenAiSystem::Other("custom".into())),
                request_model: "m".into(),
                input: Some(vec![ChatMessage::user("hi")]),
                error_type: Some("500".into()),
                http_status: Some(500),
                max_tokens: Some(u32::MAX),
                ..Default::default()
            })),
            ..ok.clone()
        };
        vec![ok, failed, root]
    }

    #[test]
    fn writes_the_bytes_prost_writes() {
        for decor in [
            Decor::default(),
            Decor {
                environment: Some("test".into()),
                release: Some("1.2.3".into()),
                tags: vec!["a".into(), "b".into()],
            },
        ] {
            let encoder = Encoder::new(decor, "pk-lf-1", "instance");
            // Three traces of three spans each: the spans of one trace
            // share its metadata (the memo's hits by address); the second
            // trace differs in one metadata value (misses after hits); the
            // third repeats the first from new allocations (hits by bytes).
            let mut spans = spans();
            let mut other = spans.clone();
            let mut trace = (*other[0].trace).clone();
            trace.metadata[0].1 = MetaValue::from("row-2");
            let trace = Arc::new(trace);
            for span in &mut other {
                span.trace = trace.clone();
            }
            spans.extend(other);
            spans.extend(self::spans());
            for truncate_to in [None, Some(64 * 1024), Some(100), Some(8)] {
                let ours = encoder.encode(&spans, truncate_to);
                let theirs = prost_request(&encoder, &spans, truncate_to).encode_to_vec();
                assert_eq!(
                    ExportTraceServiceRequest::decode(ours.as_slice()).unwrap(),
                    prost_request(&encoder, &spans, truncate_to),
                    "{truncate_to:?}"
                );
                assert!(
                    ours == theirs,
                    "bytes differ from prost's ({truncate_to:?})"
                );
            }
            assert_eq!(
                encoder.encode(&[], None),
                prost_request(&encoder, &[], None).encode_to_vec()
            );
        }
    }

    #[test]
    fn varint_lengths() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
    }
}
