//! Provider-neutral span attributes.
//!
//! Exporters first turn a [`SpanRecord`](crate::record::SpanRecord) into a
//! list of [`Attr`]s (GenAI conventions plus provider keys), then into their
//! wire types (OTLP `KeyValue`, OpenTelemetry SDK `KeyValue`). Keeping one
//! intermediate form lets the 413 handling truncate values the same way for
//! every provider.

use std::borrow::Cow;
use std::fmt;

use crate::record::MetaValue;

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
    /// `string_value`: the compact JSON of a metadata value, written
    /// straight into the request.
    Json(&'a MetaValue),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bool_value`.
    Bool(bool),
    /// `array_value` of `string_value`s.
    StrArray(Vec<Cow<'a, str>>),
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
            value: AttrValue::Json(value),
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

    pub(crate) fn str_array(key: impl Into<Key<'a>>, value: Vec<Cow<'a, str>>) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::StrArray(value),
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
        if let AttrValue::Json(v) = attr.value {
            let json = v.json_string();
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
                let mut any = false;
                for s in items.iter_mut() {
                    if s.len() > limit {
                        any |= truncate_str(s.to_mut(), limit);
                    }
                }
                if any {
                    truncated.push(attr.key.to_string());
                }
            }
            AttrValue::Json(_) | AttrValue::Int(_) | AttrValue::Double(_) | AttrValue::Bool(_) => {}
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
            Attr::str_array("d", vec!["x".repeat(50).into()]),
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
    }
}
