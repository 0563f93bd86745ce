//! JSON with Python's default `json.dumps` separators (`", "` and `": "`),
//! for the few Langfuse attributes the official SDK writes that way
//! (`usage_details`, `cost_details`, `model.parameters`). Byte-for-byte
//! parity with the SDK keeps captured requests directly comparable.

use std::io;

use serde_json::Value;
use serde_json::ser::Formatter;

struct PySeparators;

impl Formatter for PySeparators {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

/// `value` as `json.dumps(value)` would write it (key order kept).
pub(crate) fn dumps(value: &Value) -> String {
    let mut out = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PySeparators);
    // Serializing a `Value` into a Vec cannot fail.
    if serde::Serialize::serialize(value, &mut ser).is_err() {
        return value.to_string();
    }
    String::from_utf8(out).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_separators() {
        let v = serde_json::json!({"input": 12, "output": 3, "total": 15, "l": [1, 2]});
        assert_eq!(
            dumps(&v),
            r#"{"input": 12, "output": 3, "total": 15, "l": [1, 2]}"#
        );
    }
}
