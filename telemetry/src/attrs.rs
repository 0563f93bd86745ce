//! Provider-neutral span attributes.
//!
//! Exporters first turn a [`SpanRecord`](crate::record::SpanRecord) into a
//! list of [`Attr`]s (GenAI conventions plus provider keys), then into their
//! wire types (OTLP `KeyValue`, OpenTelemetry SDK `KeyValue`). Keeping one
//! intermediate form lets the 413 handling truncate values the same way for
//! every provider.

use std::borrow::Cow;
use std::fmt;

use crate::record::{MetaValue, SharedStr};
use crate::{genai, langfuse};
use elspeth_core::call::{ChatMessage, Cost, Usage};

/// An attribute key: static, a static prefix + a metadata key (written
/// without being concatenated first), or owned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Key<'a> {
    /// A fixed key.
    Static(&'static str),
    /// `prefix` followed by `name` (`langfuse.trace.metadata.` + `token_id`).
    Prefixed(&'static str, &'a str),
    /// Any other key.
    Owned(String),
}

impl Key<'_> {
    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Static(s) => s.len(),
            Self::Prefixed(p, n) => p.len() + n.len(),
            Self::Owned(s) => s.len(),
        }
    }

    /// Appends the key's bytes.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Static(s) => out.extend_from_slice(s.as_bytes()),
            Self::Prefixed(p, n) => {
                out.extend_from_slice(p.as_bytes());
                out.extend_from_slice(n.as_bytes());
            }
            Self::Owned(s) => out.extend_from_slice(s.as_bytes()),
        }
    }

    /// The key as a `'static` string (allocates unless static).
    pub(crate) fn into_static(self) -> Cow<'static, str> {
        match self {
            Self::Static(s) => Cow::Borrowed(s),
            Self::Prefixed(p, n) => Cow::Owned(format!("{p}{n}")),
            Self::Owned(s) => Cow::Owned(s),
        }
    }

    /// Whether the key's bytes are `bytes`.
    pub(crate) fn is_at(&self, bytes: &[u8]) -> bool {
        match self {
            Self::Static(s) => s.as_bytes() == bytes,
            Self::Prefixed(p, n) => bytes
                .strip_prefix(p.as_bytes())
                .is_some_and(|rest| rest == n.as_bytes()),
            Self::Owned(s) => s.as_bytes() == bytes,
        }
    }

    /// Whether the key is `other`.
    pub(crate) fn is(&self, other: &str) -> bool {
        self.is_at(other.as_bytes())
    }
}

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static(s) => f.write_str(s),
            Self::Prefixed(p, n) => {
                f.write_str(p)?;
                f.write_str(n)
            }
            Self::Owned(s) => f.write_str(s),
        }
    }
}

impl From<&'static str> for Key<'_> {
    fn from(s: &'static str) -> Self {
        Self::Static(s)
    }
}

impl From<String> for Key<'_> {
    fn from(s: String) -> Self {
        Self::Owned(s)
    }
}

/// One attribute value, with the OTLP type it is sent as. Strings borrow
/// from the span record whenever they can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrValue<'a> {
    /// `string_value`.
    Str(Cow<'a, str>),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bool_value`.
    Bool(bool),
    /// `array_value` of `string_value`s, borrowed from the span record or
    /// the exporter's settings (no list built per span).
    StrArray(Cow<'a, [SharedStr]>),
    /// `string_value`: JSON written from the span record when the request
    /// is encoded, with no string built for it first.
    Written(Written<'a>),
}

/// A JSON string value built from the span record as it is written (these
/// are on every span; building each as a `String` first cost an allocation
/// and a copy per value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Written<'a> {
    /// The compact JSON of a metadata value.
    Meta(&'a MetaValue),
    /// `gen_ai.input.messages`.
    InputMessages(&'a [ChatMessage]),
    /// `gen_ai.output.messages`: the reply and its finish reason.
    OutputMessages(&'a str, Option<&'a str>),
    /// Langfuse's `usage_details`.
    UsageDetails(&'a Usage),
    /// Langfuse's `cost_details`.
    CostDetails(&'a Cost),
}

impl Written<'_> {
    /// Appends the value's text.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match *self {
            Self::Meta(v) => v.write_json(out),
            Self::InputMessages(messages) => genai::write_input_messages(messages, out),
            Self::OutputMessages(text, reason) => genai::write_output_messages(text, reason, out),
            Self::UsageDetails(u) => langfuse::attributes::write_usage_details(u, out),
            Self::CostDetails(c) => langfuse::attributes::write_cost_details(c, out),
        }
    }

    /// The value's text as a string.
    pub(crate) fn to_text(self) -> String {
        let mut out = Vec::with_capacity(128);
        self.write(&mut out);
        // Every writer writes JSON built from UTF-8 strings.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// One attribute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attr<'a> {
    /// Attribute key.
    pub key: Key<'a>,
    /// Attribute value.
    pub value: AttrValue<'a>,
}

impl<'a> Attr<'a> {
    pub(crate) fn str(key: impl Into<Key<'a>>, value: impl Into<Cow<'a, str>>) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::Str(value.into()),
        }
    }

    pub(crate) fn json(key: Key<'a>, value: &'a MetaValue) -> Self {
        Self {
            key,
            value: AttrValue::Written(Written::Meta(value)),
        }
    }

    pub(crate) fn int(key: impl Into<Key<'a>>, value: i64) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::Int(value),
        }
    }

    pub(crate) fn double(key: impl Into<Key<'a>>, value: f64) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::Double(value),
        }
    }

    pub(crate) fn bool(key: impl Into<Key<'a>>, value: bool) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::Bool(value),
        }
    }

    pub(crate) fn str_array(
        key: impl Into<Key<'a>>,
        value: impl Into<Cow<'a, [SharedStr]>>,
    ) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::StrArray(value.into()),
        }
    }

    pub(crate) fn written(key: impl Into<Key<'a>>, value: Written<'a>) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::Written(value),
        }
    }
}

/// Where attribute producers put what they make: a list (`Vec<Attr>`), or
/// an encoder that writes each attribute as it comes, without the list.
pub(crate) trait AttrSink<'a> {
    /// Takes the next attribute.
    fn push(&mut self, attr: Attr<'a>);
}

impl<'a> AttrSink<'a> for Vec<Attr<'a>> {
    fn push(&mut self, attr: Attr<'a>) {
        Vec::push(self, attr);
    }
}

/// Turns every [`AttrValue::Written`] value into the string it writes
/// (for exporters that need each value as a string).
pub(crate) fn materialize(attrs: &mut [Attr<'_>]) {
    for attr in attrs {
        if let AttrValue::Written(w) = attr.value {
            attr.value = AttrValue::Str(Cow::Owned(w.to_text()));
        }
    }
}

/// Converts a `u64` count to an OTLP int, saturating.
pub(crate) fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Shortens every string value longer than `limit` bytes (cut on a character
/// boundary, with a visible `…[truncated N bytes]` suffix) and returns the
/// keys it shortened. Used after a 413 answer.
pub(crate) fn truncate(attrs: &mut [Attr<'_>], limit: usize) -> Vec<String> {
    let mut truncated = Vec::new();
    for attr in attrs.iter_mut() {
        if let AttrValue::Written(w) = attr.value {
            let json = w.to_text();
            if json.len() > limit {
                attr.value = AttrValue::Str(Cow::Owned(json));
            }
        }
        match &mut attr.value {
            AttrValue::Str(s) => {
                if s.len() > limit && truncate_str(s.to_mut(), limit) {
                    truncated.push(attr.key.to_string());
                }
            }
            AttrValue::StrArray(items) => {
                if items.iter().any(|s| s.len() > limit) {
                    for s in items.to_mut().iter_mut().filter(|s| s.len() > limit) {
                        let mut text = s.to_string();
                        truncate_str(&mut text, limit);
                        *s = SharedStr::from(text);
                    }
                    truncated.push(attr.key.to_string());
                }
            }
            AttrValue::Written(_)
            | AttrValue::Int(_)
            | AttrValue::Double(_)
            | AttrValue::Bool(_) => {}
        }
    }
    truncated
}

fn truncate_str(s: &mut String, limit: usize) -> bool {
    if s.len() <= limit {
        return false;
    }
    let original = s.len();
    let mut cut = limit;
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(&format!("…[truncated {original} bytes]"));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries_and_reports_keys() {
        let mut attrs = vec![
            Attr::str("a", "é".repeat(10)),
            Attr::str("b", "short"),
            Attr::int("c", 1),
            Attr::str_array("d", vec![SharedStr::from("x".repeat(50))]),
        ];
        let keys = truncate(&mut attrs, 5);
        assert_eq!(keys, vec!["a".to_string(), "d".to_string()]);
        let AttrValue::Str(a) = &attrs[0].value else {
            panic!("not a string")
        };
        assert!(a.starts_with("éé"), "{a}");
        assert!(a.ends_with("…[truncated 20 bytes]"), "{a}");
        assert_eq!(attrs[1].value, AttrValue::Str("short".into()));
        let long = MetaValue::from("y".repeat(30));
        let mut attrs = vec![Attr::json(Key::Prefixed("m.", "k"), &long)];
        assert_eq!(truncate(&mut attrs, 5), vec!["m.k".to_string()]);
        assert!(matches!(&attrs[0].value, AttrValue::Str(s) if s.starts_with("\"yyyy")));
        // A written value is cut like a string, a short one left as it is.
        let messages = [ChatMessage::user("z".repeat(40))];
        let usage = Usage::new(1, 2);
        let mut attrs = vec![
            Attr::written("m", Written::InputMessages(&messages)),
            Attr::written("u", Written::UsageDetails(&usage)),
        ];
        assert_eq!(truncate(&mut attrs, 60), vec!["m".to_string()]);
        assert!(
            matches!(&attrs[0].value, AttrValue::Str(s) if s.starts_with("[{\"role\":\"user\"") && s.contains("…[truncated ")),
            "{:?}",
            attrs[0].value
        );
        assert_eq!(
            attrs[1].value,
            AttrValue::Written(Written::UsageDetails(&usage))
        );
        materialize(&mut attrs);
        assert_eq!(
            attrs[1].value,
            AttrValue::Str(r#"{"input": 1, "output": 2, "total": 3}"#.into())
        );
    }
}
