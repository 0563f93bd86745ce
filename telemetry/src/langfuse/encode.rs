//! Span records → OTLP `ExportTraceServiceRequest` (protobuf), as sent to
//! Langfuse.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prost::Message;

use super::attributes::{self, Decor, TRUNCATED_KEY};
use crate::attrs::{self, Attr, AttrValue};
use crate::record::{SpanKind, SpanRecord, SpanStatus};

/// W3C "sampled" trace flag plus OTLP's "has is-remote, not remote" bit
/// (0x100). The Python SDK writes 0x100 alone; every span here is sampled.
const SPAN_FLAGS: u32 = 0x101;

/// What every request of one exporter shares: resource and scope.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    pub decor: Decor,
    resource: Resource,
    scope: InstrumentationScope,
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
        Self {
            decor,
            resource: Resource {
                attributes: resource_attrs,
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            },
            scope: InstrumentationScope {
                name: "langfuse-sdk".into(),
                version: version.into(),
                attributes: vec![kv("public_key", public_key)],
                dropped_attributes_count: 0,
            },
        }
    }

    /// The request for `spans` (in end order). With `truncate_to`, every
    /// attribute value longer than that is shortened and the span marked.
    pub(crate) fn request(
        &self,
        spans: &[SpanRecord],
        truncate_to: Option<usize>,
    ) -> ExportTraceServiceRequest {
        let spans = spans.iter().map(|s| self.span(s, truncate_to)).collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.scope.clone()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    /// The protobuf bytes of [`request`](Self::request).
    pub(crate) fn encode(&self, spans: &[SpanRecord], truncate_to: Option<usize>) -> Vec<u8> {
        self.request(spans, truncate_to).encode_to_vec()
    }

    fn span(&self, record: &SpanRecord, truncate_to: Option<usize>) -> Span {
        let mut list = attributes::span_attrs(record, &self.decor);
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
        let code = match record.status {
            SpanStatus::Unset => status::StatusCode::Unset,
            SpanStatus::Error(_) => status::StatusCode::Error,
        };
        Span {
            trace_id: record.trace_id.0.to_vec(),
            span_id: record.span_id.0.to_vec(),
            trace_state: String::new(),
            parent_span_id: record
                .parent_span_id
                .map(|p| p.0.to_vec())
                .unwrap_or_default(),
            flags: SPAN_FLAGS,
            name: record.name.clone(),
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
                code: code as i32,
            }),
        }
    }
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

/// One attribute as an OTLP `KeyValue`.
pub(crate) fn to_proto(attr: Attr) -> KeyValue {
    let value = match attr.value {
        AttrValue::Str(s) => any_value::Value::StringValue(s),
        AttrValue::Int(i) => any_value::Value::IntValue(i),
        AttrValue::Double(d) => any_value::Value::DoubleValue(d),
        AttrValue::Bool(b) => any_value::Value::BoolValue(b),
        AttrValue::StrArray(items) => any_value::Value::ArrayValue(ArrayValue {
            values: items
                .into_iter()
                .map(|s| AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                })
                .collect(),
        }),
    };
    KeyValue {
        key: attr.key.into_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}
