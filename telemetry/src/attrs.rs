//! Provider-neutral span attributes.
//!
//! Exporters first turn a [`SpanRecord`](crate::record::SpanRecord) into a
//! list of [`Attr`]s (GenAI conventions plus provider keys), then into their
//! wire types (OTLP `KeyValue`, OpenTelemetry SDK `KeyValue`). Keeping one
//! intermediate form lets the 413 handling truncate values the same way for
//! every provider.

use std::borrow::Cow;

/// One attribute value, with the OTLP type it is sent as.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrValue {
    /// `string_value`.
    Str(String),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bool_value`.
    Bool(bool),
    /// `array_value` of `string_value`s.
    StrArray(Vec<String>),
}

/// One attribute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attr {
    /// Attribute key.
    pub key: Cow<'static, str>,
    /// Attribute value.
    pub value: AttrValue,
}

impl Attr {
    pub(crate) fn str(key: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::Str(value.into()),
        }
    }

    pub(crate) fn int(key: impl Into<Cow<'static, str>>, value: i64) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::Int(value),
        }
    }

    pub(crate) fn double(key: impl Into<Cow<'static, str>>, value: f64) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::Double(value),
        }
    }

    pub(crate) fn bool(key: impl Into<Cow<'static, str>>, value: bool) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::Bool(value),
        }
    }

    pub(crate) fn str_array(key: impl Into<Cow<'static, str>>, value: Vec<String>) -> Self {
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
pub(crate) fn truncate(attrs: &mut [Attr], limit: usize) -> Vec<String> {
    let mut truncated = Vec::new();
    for attr in attrs.iter_mut() {
        match &mut attr.value {
            AttrValue::Str(s) => {
                if truncate_str(s, limit) {
                    truncated.push(attr.key.to_string());
                }
            }
            AttrValue::StrArray(items) => {
                let mut any = false;
                for s in items.iter_mut() {
                    any |= truncate_str(s, limit);
                }
                if any {
                    truncated.push(attr.key.to_string());
                }
            }
            AttrValue::Int(_) | AttrValue::Double(_) | AttrValue::Bool(_) => {}
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
            Attr::str_array("d", vec!["x".repeat(50)]),
        ];
        let keys = truncate(&mut attrs, 5);
        assert_eq!(keys, vec!["a".to_string(), "d".to_string()]);
        let AttrValue::Str(a) = &attrs[0].value else {
            panic!("not a string")
        };
        assert!(a.starts_with("éé"), "{a}");
        assert!(a.ends_with("…[truncated 20 bytes]"), "{a}");
        assert_eq!(attrs[1].value, AttrValue::Str("short".into()));
    }
}
