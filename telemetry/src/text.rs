//! The strings and metadata values of span records: shared, not copied.
//!
//! Recording a span must not copy its names and constant values to the heap
//! each time (on a busy pipeline the allocator is most of the cost, and the
//! frees happen on the exporter's thread). A [`SharedStr`] is a static
//! string, a short string stored inline, or a reference-counted one;
//! [`intern`] turns a tracer's constants (plugin, deployment, model, host)
//! into static strings once, so every later span refers to them for free.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Longest string stored inline (no heap allocation).
const INLINE: usize = 22;

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Inline { len: u8, buf: [u8; INLINE] },
    Shared(Arc<str>),
}

/// An immutable string that is cheap to clone: static, inline (up to 22
/// bytes) or reference-counted. Compares, hashes and serializes as the
/// string it holds.
///
/// ```
/// use elspeth_telemetry::record::SharedStr;
/// let s = SharedStr::from("gpt-4o");
/// assert_eq!(s, "gpt-4o");
/// assert_eq!(s.as_str(), "gpt-4o");
/// assert_eq!(SharedStr::from_static("llm_call"), String::from("llm_call"));
/// ```
#[derive(Clone)]
pub struct SharedStr(Repr);

impl SharedStr {
    /// A static string (no allocation, ever).
    pub const fn from_static(s: &'static str) -> Self {
        Self(Repr::Static(s))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Inline { len, buf } => {
                // SAFETY: `buf[..len]` was copied from a `&str` whole (see
                // `From<&str>`), so it is valid UTF-8.
                unsafe { std::str::from_utf8_unchecked(&buf[..usize::from(*len)]) }
            }
            Repr::Shared(s) => s,
        }
    }

    /// Whether cloning this string is free of any shared state (static or
    /// inline).
    fn is_plain(&self) -> bool {
        !matches!(self.0, Repr::Shared(_))
    }

    fn inline(s: &str) -> Option<Self> {
        if s.len() > INLINE {
            return None;
        }
        let mut buf = [0u8; INLINE];
        buf[..s.len()].copy_from_slice(s.as_bytes());
        Some(Self(Repr::Inline {
            len: s.len() as u8,
            buf,
        }))
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        Self::from_static("")
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        Self::inline(s).unwrap_or_else(|| Self(Repr::Shared(Arc::from(s))))
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        Self::inline(&s).unwrap_or_else(|| Self(Repr::Shared(Arc::from(s))))
    }
}

impl From<&String> for SharedStr {
    fn from(s: &String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<Arc<str>> for SharedStr {
    fn from(s: Arc<str>) -> Self {
        Self(Repr::Shared(s))
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.as_str().to_string()
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Hash for SharedStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

/// Most distinct strings [`intern`] makes static in one process; later
/// ones are reference-counted instead (the set never grows without bound).
const MAX_INTERNED: usize = 4096;

/// `s` as a string whose clones share nothing: inline when short, else a
/// process-wide static copy made once per distinct string (at most
/// [`MAX_INTERNED`] of them; after that, reference-counted). For values that
/// repeat on every span of a tracer: plugin, deployment, model, host.
pub(crate) fn intern(s: &str) -> SharedStr {
    if let Some(inline) = SharedStr::inline(s) {
        return inline;
    }
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = SET
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = set.get(s) {
        return SharedStr::from_static(found);
    }
    if set.len() >= MAX_INTERNED {
        return SharedStr::from(s);
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    set.insert(leaked);
    SharedStr::from_static(leaked)
}

/// One interned value a tracer expects to see on every span (its plugin,
/// deployment, model, host): the first value seen is interned, later equal
/// values are free, a different value is copied as usual.
#[derive(Debug, Default)]
pub(crate) struct Constant(OnceLock<SharedStr>);

impl Constant {
    /// `s`, shared when it is the tracer's usual value.
    pub(crate) fn get(&self, s: &str) -> SharedStr {
        let usual = self.0.get_or_init(|| intern(s));
        if usual.as_str() == s && usual.is_plain() {
            usual.clone()
        } else {
            SharedStr::from(s)
        }
    }
}

/// A span's metadata value. Serializes as the JSON value it stands for
/// (a string, a number, a boolean, or any JSON), so a record's JSON is the
/// same as when metadata values were `serde_json::Value`s.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// A string.
    Str(SharedStr),
    /// An integer.
    Int(i64),
    /// A floating-point number (non-finite ones are JSON `null`).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Any other JSON value.
    Json(Box<Value>),
}

impl MetaValue {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            Self::Json(v) => v.as_str(),
            _ => None,
        }
    }

    /// The number as `f64`, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            Self::Json(v) => v.as_f64(),
            _ => None,
        }
    }

    /// The number as `i64`, if this is an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::Json(v) => v.as_i64(),
            _ => None,
        }
    }

    /// The value as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Str(s) => Value::from(s.as_str()),
            Self::Int(i) => Value::from(*i),
            Self::Float(f) => Value::from(*f),
            Self::Bool(b) => Value::from(*b),
            Self::Json(v) => (**v).clone(),
        }
    }

    /// Appends the value's compact JSON (UTF-8 kept), exactly as
    /// `serde_json` writes the equivalent `Value`.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        // Writing JSON into a Vec cannot fail.
        let _ = match self {
            Self::Str(s) => serde_json::to_writer(&mut *out, s.as_str()),
            Self::Int(i) => serde_json::to_writer(&mut *out, i),
            Self::Float(f) => serde_json::to_writer(&mut *out, f),
            Self::Bool(b) => serde_json::to_writer(&mut *out, b),
            Self::Json(v) => serde_json::to_writer(&mut *out, &**v),
        };
    }

    /// The value's compact JSON as a string.
    pub(crate) fn json_string(&self) -> String {
        let mut out = Vec::with_capacity(16);
        self.write_json(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The value's compact JSON, as `serde_json::Value` displays.
impl fmt::Display for MetaValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.json_string())
    }
}

impl PartialEq<Value> for MetaValue {
    fn eq(&self, other: &Value) -> bool {
        self.to_json() == *other
    }
}

impl From<Value> for MetaValue {
    fn from(v: Value) -> Self {
        match v {
            Value::String(s) => Self::Str(SharedStr::from(s)),
            Value::Bool(b) => Self::Bool(b),
            Value::Number(n) if n.is_i64() => Self::Int(n.as_i64().unwrap_or_default()),
            Value::Number(n) if n.is_f64() => Self::Float(n.as_f64().unwrap_or_default()),
            other => Self::Json(Box::new(other)),
        }
    }
}

impl From<&str> for MetaValue {
    fn from(s: &str) -> Self {
        Self::Str(SharedStr::from(s))
    }
}

impl From<String> for MetaValue {
    fn from(s: String) -> Self {
        Self::Str(SharedStr::from(s))
    }
}

impl From<SharedStr> for MetaValue {
    fn from(s: SharedStr) -> Self {
        Self::Str(s)
    }
}

impl From<f64> for MetaValue {
    fn from(f: f64) -> Self {
        Self::Float(f)
    }
}

impl From<i64> for MetaValue {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<usize> for MetaValue {
    fn from(n: usize) -> Self {
        match i64::try_from(n) {
            Ok(i) => Self::Int(i),
            Err(_) => Self::Json(Box::new(Value::from(n))),
        }
    }
}

impl From<bool> for MetaValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl Serialize for MetaValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Str(v) => s.serialize_str(v),
            Self::Int(i) => s.serialize_i64(*i),
            Self::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Self::Float(_) => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Json(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MetaValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_str_kinds_compare_as_strings() {
        let short = SharedStr::from("row-7");
        let long = SharedStr::from("x".repeat(40).as_str());
        let fixed = SharedStr::from_static("llm_call");
        assert!(matches!(short.0, Repr::Inline { .. }));
        assert!(matches!(long.0, Repr::Shared(_)));
        assert_eq!(short, "row-7");
        assert_eq!(long, "x".repeat(40));
        assert_eq!(fixed, SharedStr::from("llm_call"));
        assert_eq!(serde_json::to_string(&short).unwrap(), "\"row-7\"");
        let back: SharedStr = serde_json::from_str("\"row-7\"").unwrap();
        assert_eq!(back, short);
        assert_eq!(std::mem::size_of::<SharedStr>(), 24);
    }

    #[test]
    fn interned_values_are_static() {
        let host = "myresource.openai.azure.example.com";
        let a = intern(host);
        let b = intern(host);
        let (Repr::Static(x), Repr::Static(y)) = (&a.0, &b.0) else {
            panic!("not static")
        };
        assert!(std::ptr::eq(*x, *y));
        let c = Constant::default();
        assert!(c.get(host).is_plain());
        assert_eq!(c.get("other"), "other");
    }

    #[test]
    fn meta_values_write_the_json_of_their_value() {
        for v in [
            Value::from("tok-1"),
            Value::from("é \"q\" \n"),
            Value::from(123.4),
            Value::from(2.0),
            Value::from(12),
            Value::from(true),
            Value::from(f64::NAN),
            serde_json::json!({"a": [1, "b"]}),
        ] {
            let m = MetaValue::from(v.clone());
            assert_eq!(m.json_string(), v.to_string(), "{v}");
            assert_eq!(serde_json::to_string(&m).unwrap(), v.to_string());
            let back: MetaValue = serde_json::from_str(&v.to_string()).unwrap();
            assert_eq!(back.to_json(), v);
        }
        assert_eq!(MetaValue::Float(f64::INFINITY).json_string(), "null");
    }
}
