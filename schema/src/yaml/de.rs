//! `serde` deserialization straight from a [`Node`] tree, so typed config is
//! read without an intermediate `serde_json::Value`.
//!
//! ```
//! use elspeth_schema::yaml::{parse, Limits};
//! use serde::Deserialize;
//! #[derive(Deserialize, PartialEq, Debug)]
//! struct Point { x: u32, y: Option<f64>, tags: Vec<String> }
//! let root = parse("x: 1\ny: 2.5\ntags: [a, b]\n", &Limits::default()).root.unwrap();
//! let p = Point::deserialize(&root).unwrap();
//! assert_eq!(p, Point { x: 1, y: Some(2.5), tags: vec!["a".into(), "b".into()] });
//! ```

use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::{Entry, Node, Value};

/// Why a node could not be read as the requested type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

impl<'de> Deserializer<'de> for &'de Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => {
                if let Ok(v) = i64::try_from(*i) {
                    visitor.visit_i64(v)
                } else if let Ok(v) = u64::try_from(*i) {
                    visitor.visit_u64(v)
                } else {
                    visitor.visit_f64(*i as f64)
                }
            }
            Value::Float(f) if f.is_finite() => visitor.visit_f64(*f),
            Value::Float(f) => visitor.visit_str(if f.is_nan() {
                ".nan"
            } else if *f > 0.0 {
                ".inf"
            } else {
                "-.inf"
            }),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Seq(items) => visitor.visit_seq(Items(items.iter())),
            Value::Map(entries) => visitor.visit_map(Entries {
                iter: entries.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.value {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Map(entries) if entries.len() == 1 => visitor.visit_enum(Variant(&entries[0])),
            _ => Err(de::Error::invalid_type(unexpected(self), &"a variant name")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

fn unexpected(node: &Node) -> de::Unexpected<'_> {
    match &node.value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Int(i) => match i64::try_from(*i) {
            Ok(v) => de::Unexpected::Signed(v),
            Err(_) => de::Unexpected::Other("a large integer"),
        },
        Value::Float(f) => de::Unexpected::Float(*f),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Seq(_) => de::Unexpected::Seq,
        Value::Map(_) => de::Unexpected::Map,
    }
}

struct Items<'de>(std::slice::Iter<'de, Node>);

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.0.next().map(|n| seed.deserialize(n)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'de> {
    iter: std::slice::Iter<'de, Entry>,
    value: Option<&'de Node>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some(e) => {
                self.value = Some(&e.value);
                seed.deserialize(BorrowedStrDeserializer::new(&e.key.name))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(v) => seed.deserialize(v),
            None => Err(de::Error::custom("a map value was read before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// `{variant: value}` for externally tagged enums.
struct Variant<'de>(&'de Entry);

impl<'de> EnumAccess<'de> for Variant<'de> {
    type Error = DeError;
    type Variant = &'de Node;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, &'de Node), DeError> {
        let name = seed.deserialize(BorrowedStrDeserializer::<DeError>::new(&self.0.key.name))?;
        Ok((name, &self.0.value))
    }
}

impl<'de> VariantAccess<'de> for &'de Node {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            Value::Null => Ok(()),
            _ => Err(de::Error::invalid_type(unexpected(self), &"a unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use crate::config::PipelineConfig;
    use crate::yaml::{Limits, parse};

    /// Every example pipeline reads the same from the tree as from JSON.
    #[test]
    fn agrees_with_serde_json_on_the_examples() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/pipelines");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let root = parse(&text, &Limits::default()).root.unwrap();
            let direct = PipelineConfig::deserialize(&root).unwrap();
            let via_json: PipelineConfig = serde_json::from_value(root.to_json()).unwrap();
            assert_eq!(direct, via_json, "{}", path.display());
            n += 1;
        }
        assert!(n >= 18);
    }

    #[test]
    fn errors_and_enums() {
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(rename_all = "snake_case")]
        enum E {
            A,
            B(u8),
        }
        let load = |t: &str| parse(t, &Limits::default()).root.unwrap();
        assert_eq!(E::deserialize(&load("a")).unwrap(), E::A);
        assert_eq!(E::deserialize(&load("b: 3")).unwrap(), E::B(3));
        assert!(
            E::deserialize(&load("c"))
                .unwrap_err()
                .to_string()
                .contains("unknown variant")
        );
        assert!(u8::deserialize(&load("300")).is_err());
        assert!(String::deserialize(&load("[1]")).is_err());
        assert_eq!(f64::deserialize(&load("3")).unwrap(), 3.0);
    }
}
