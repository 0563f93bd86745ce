//! The YAML tree as a `jsonschema` instance: the validator reads
//! [`yaml::Node`]s directly, so the document is never copied into a
//! `serde_json::Value` (which costs more than the validation itself on large
//! files).
//!
//! JSON semantics: integers and floats are numbers (`.inf` / `.nan` are
//! strings, as JSON has no such numbers), mapping keys are strings.

use std::borrow::Cow;

use jsonschema::JsonType;
use jsonschema::json::{Array, Json, JsonNumber, Node as JsonNode, NodeIdentity, Object};
use serde_json::Value as JsonValue;

use crate::yaml::{Entry, Node, Value};

/// The representation marker for [`jsonschema::Validator`].
pub(crate) struct Yaml;

impl Json for Yaml {
    type Node<'a> = YNode<'a>;
    type PreparedKey = String;
    type StringBuffer = Option<Node>;

    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(
        buffer: &mut Option<Node>,
        string: &str,
        f: impl FnOnce(YNode<'_>) -> T,
    ) -> T {
        let node = buffer.get_or_insert_with(|| Node {
            value: Value::String(String::new()),
            span: Default::default(),
        });
        match &mut node.value {
            Value::String(s) => {
                s.clear();
                s.push_str(string);
            }
            other => *other = Value::String(string.to_owned()),
        }
        f(YNode(node))
    }
}

/// A node handle.
#[derive(Clone, Copy)]
pub(crate) struct YNode<'a>(pub &'a Node);

impl<'a> JsonNode<'a, Yaml> for YNode<'a> {
    type Object = YObject<'a>;
    type Array = YArray<'a>;
    type Number = YNumber;

    fn as_object(&self) -> Option<YObject<'a>> {
        match &self.0.value {
            Value::Map(entries) => Some(YObject(entries)),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<YArray<'a>> {
        match &self.0.value {
            Value::Seq(items) => Some(YArray(items)),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match &self.0.value {
            Value::String(s) => Some(Cow::Borrowed(s)),
            Value::Float(f) if !f.is_finite() => Some(Cow::Owned(non_finite(*f).into())),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<YNumber> {
        match self.0.value {
            Value::Int(i) => Some(YNumber::Int(i)),
            Value::Float(f) if f.is_finite() => Some(YNumber::Float(f)),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.0.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self.0.value, Value::Null)
    }

    fn json_type(&self) -> JsonType {
        match &self.0.value {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Int(_) => JsonType::Number,
            Value::Float(f) if f.is_finite() => JsonType::Number,
            Value::Float(_) | Value::String(_) => JsonType::String,
            Value::Seq(_) => JsonType::Array,
            Value::Map(_) => JsonType::Object,
        }
    }

    fn equals_value(&self, expected: &JsonValue) -> bool {
        match (&self.0.value, expected) {
            (Value::String(s), JsonValue::String(e)) => s == e,
            (Value::Bool(b), JsonValue::Bool(e)) => b == e,
            (Value::Null, JsonValue::Null) => true,
            (Value::String(_) | Value::Bool(_) | Value::Null, _) => false,
            _ => jsonschema::json::cmp::equal(&self.0.to_json(), expected),
        }
    }

    fn to_value(&self) -> Cow<'a, JsonValue> {
        Cow::Owned(self.0.to_json())
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(
            std::ptr::from_ref::<Node>(self.0) as usize
        ))
    }
}

fn non_finite(f: f64) -> &'static str {
    if f.is_nan() {
        ".nan"
    } else if f > 0.0 {
        ".inf"
    } else {
        "-.inf"
    }
}

/// A mapping handle.
pub(crate) struct YObject<'a>(&'a [Entry]);

/// Members of a mapping, in written order.
pub(crate) struct Members<'a>(std::slice::Iter<'a, Entry>);

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, YNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0
            .next()
            .map(|e| (e.key.name.as_str(), YNode(&e.value)))
    }
}

impl<'a> Object<'a, Yaml> for YObject<'a> {
    type Node = YNode<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn get(&self, key: &String) -> Option<YNode<'a>> {
        self.0
            .iter()
            .find(|e| e.key.name == *key)
            .map(|e| YNode(&e.value))
    }

    fn members(&self) -> Members<'a> {
        Members(self.0.iter())
    }
}

/// A sequence handle.
pub(crate) struct YArray<'a>(&'a [Node]);

/// Items of a sequence.
pub(crate) struct Items<'a>(std::slice::Iter<'a, Node>);

impl<'a> Iterator for Items<'a> {
    type Item = YNode<'a>;

    fn next(&mut self) -> Option<YNode<'a>> {
        self.0.next().map(YNode)
    }
}

impl<'a> Array<'a, Yaml> for YArray<'a> {
    type Node = YNode<'a>;
    type ElementsIter = Items<'a>;

    fn len(&self) -> usize {
        self.0.len()
    }

    fn elements(&self) -> Items<'a> {
        Items(self.0.iter())
    }
}

/// A YAML number.
#[derive(Clone, Copy)]
pub(crate) enum YNumber {
    Int(i128),
    Float(f64),
}

impl JsonNumber for YNumber {
    fn as_u64(&self) -> Option<u64> {
        match *self {
            YNumber::Int(i) => u64::try_from(i).ok(),
            YNumber::Float(_) => None,
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match *self {
            YNumber::Int(i) => i64::try_from(i).ok(),
            YNumber::Float(_) => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        Some(match *self {
            YNumber::Int(i) => i as f64,
            YNumber::Float(f) => f,
        })
    }

    fn as_str(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_number().to_string())
    }

    fn to_number(&self) -> Cow<'_, serde_json::Number> {
        let n = match *self {
            YNumber::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
                (Ok(v), _) => serde_json::Number::from(v),
                (_, Ok(v)) => serde_json::Number::from(v),
                _ => serde_json::Number::from_f64(i as f64).unwrap_or_else(|| 0.into()),
            },
            YNumber::Float(f) => serde_json::Number::from_f64(f).unwrap_or_else(|| 0.into()),
        };
        Cow::Owned(n)
    }

    fn is_integer(&self) -> bool {
        match *self {
            YNumber::Int(_) => true,
            YNumber::Float(f) => f.fract() == 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{Limits, parse};

    /// Validating the tree and validating its JSON copy give the same
    /// errors at the same places.
    #[test]
    fn agrees_with_serde_json() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "i": {"type": "integer", "maximum": 5},
                "f": {"type": "number", "minimum": 0.5},
                "s": {"enum": ["a", "b"]},
                "inf": {"type": "number"},
                "l": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                "c": {"const": 1.0},
                "o": {"type": "object", "additionalProperties": false, "properties": {"x": {}}},
                "missing": {}
            },
            "additionalProperties": false,
            "required": ["i", "missing"]
        });
        let text =
            "i: 7\nf: 0.25\ns: c\ninf: .inf\nl: [a, 1, a]\nc: 1\no: {x: 1, y: 2}\nextra: 1\n";
        let root = parse(text, &Limits::default()).root.unwrap();
        let yaml = jsonschema::options_for::<Yaml>()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&schema)
            .unwrap();
        let json = jsonschema::draft7::new(&schema).unwrap();
        let copy = root.to_json();
        let summarize = |e: jsonschema::ValidationError<'_>| {
            (
                e.instance_path().to_string(),
                e.schema_path().to_string(),
                e.to_string(),
            )
        };
        let mut a: Vec<_> = yaml.iter_errors(YNode(&root)).map(summarize).collect();
        let mut b: Vec<_> = json.iter_errors(&copy).map(summarize).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert!(a.len() >= 7, "{a:?}");
        assert!(
            yaml.is_valid(YNode(
                &parse("i: 1\nmissing: 2\nc: 1.0\n", &Limits::default())
                    .root
                    .unwrap()
            ))
        );
    }
}
