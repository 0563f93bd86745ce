//! String values that may hold `${VAR}` references: [`EnvString`] and [`SecretRef`].
//!
//! Both keep the text exactly as written in the YAML. References are resolved
//! only at run time ([`EnvString::resolve`], [`SecretRef::resolve`]), so a
//! validated or generated config never contains a value taken from the
//! environment.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::interpolate::{self, EnvError};

/// Where `${VAR}` references are looked up.
///
/// [`ProcessEnv`] reads the process environment; tests use a map.
pub trait Env {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: std::hash::BuildHasher> Env for std::collections::HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for std::collections::BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// A non-secret string that may contain `${VAR}` references, e.g. an endpoint.
///
/// ```
/// use elspeth_schema::config::EnvString;
/// let endpoint = EnvString::new("https://${HOST:-localhost}/v1");
/// assert_eq!(endpoint.resolve(&|_: &str| None).unwrap(), "https://localhost/v1");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnvString(String);

impl EnvString {
    /// Wraps the text as written.
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The text as written, references unresolved.
    pub fn raw(&self) -> &str {
        &self.0
    }

    /// Whether the text contains `${...}` references.
    pub fn has_references(&self) -> bool {
        interpolate::has_references(&self.0)
    }

    /// Resolves the references against `env`.
    pub fn resolve(&self, env: &dyn Env) -> Result<String, EnvError> {
        interpolate::interpolate(&self.0, |name| env.var(name)).map_err(EnvError::from)
    }
}

impl fmt::Debug for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EnvString {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

/// Not inlined: the validator recognises `#/definitions/EnvString` as a
/// field where `${VAR}` references are expanded.
impl JsonSchema for EnvString {
    fn schema_name() -> Cow<'static, str> {
        "EnvString".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Text that may hold `${VAR}` or `${VAR:-default}` environment references, resolved at run time (`$$` is a literal `$`).",
            "type": "string"
        })
    }
}

/// A secret (API key, connection string), normally a `${VAR}` reference.
///
/// The text is kept as written and resolved only at run time into a
/// [`secrecy::SecretString`]. `Debug` shows only the names of the referenced
/// variables, never literal text, so a secret written inline cannot leak
/// through logs or panics.
///
/// ```
/// use elspeth_schema::config::SecretRef;
/// let key = SecretRef::new("${LANGFUSE_SECRET_KEY}");
/// assert_eq!(format!("{key:?}"), "SecretRef(${LANGFUSE_SECRET_KEY})");
/// let inline = SecretRef::new("sk-live-123");
/// assert_eq!(format!("{inline:?}"), "SecretRef(<redacted>)");
/// assert!(inline.is_literal());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(String);

impl SecretRef {
    /// Wraps the text as written.
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The text as written. It may be a literal secret: never log it.
    pub fn expose_raw(&self) -> &str {
        &self.0
    }

    /// Whether the value contains literal text outside `${...}` references
    /// (a secret written inline). Defaults inside references do not count.
    pub fn is_literal(&self) -> bool {
        match interpolate::parse(&self.0) {
            Ok(segments) => segments
                .iter()
                .any(|s| matches!(s, interpolate::Segment::Literal(_))),
            Err(_) => false,
        }
    }

    /// Whether any reference carries a `:-default`.
    pub fn has_default(&self) -> bool {
        interpolate::references(&self.0)
            .map(|refs| refs.iter().any(|r| r.default.is_some()))
            .unwrap_or(false)
    }

    /// The names of the variables referenced.
    pub fn variables(&self) -> Vec<String> {
        interpolate::references(&self.0)
            .map(|refs| refs.iter().map(|r| r.name.to_string()).collect())
            .unwrap_or_default()
    }

    /// Resolves the references against `env`. Errors name variables only.
    pub fn resolve(&self, env: &dyn Env) -> Result<SecretString, EnvError> {
        interpolate::interpolate(&self.0, |name| env.var(name))
            .map(SecretString::from)
            .map_err(EnvError::from)
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_literal() || interpolate::parse(&self.0).is_err() {
            return f.write_str("SecretRef(<redacted>)");
        }
        let vars = self
            .variables()
            .iter()
            .map(|v| format!("${{{v}}}"))
            .collect::<Vec<_>>()
            .join("");
        write!(f, "SecretRef({vars})")
    }
}

/// Not inlined: the validator recognises `#/definitions/SecretRef` as a
/// secret field (expanded like [`EnvString`], never printed).
impl JsonSchema for SecretRef {
    fn schema_name() -> Cow<'static, str> {
        "SecretRef".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A secret: write a `${VAR}` reference, resolved at run time and never logged. A literal value works but is warned about.",
            "type": "string"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn secret_debug_never_shows_literals_or_defaults() {
        let cases = [
            ("${A}", "SecretRef(${A})"),
            ("${A:-sk-default}", "SecretRef(${A})"),
            ("sk-123", "SecretRef(<redacted>)"),
            ("pre-${A}", "SecretRef(<redacted>)"),
            ("${A", "SecretRef(<redacted>)"),
        ];
        for (raw, shown) in cases {
            let dbg = format!("{:?}", SecretRef::new(raw));
            assert_eq!(dbg, shown);
            assert!(!dbg.contains("sk-"));
        }
    }

    #[test]
    fn secret_resolves_from_env() {
        let env = |n: &str| (n == "K").then(|| "v4lue".to_string());
        let s = SecretRef::new("${K}").resolve(&env).unwrap();
        assert_eq!(s.expose_secret(), "v4lue");
        let err = SecretRef::new("${NOPE}").resolve(&env).unwrap_err();
        assert_eq!(
            err.problems[0].to_string(),
            "environment variable `NOPE` is not set"
        );
    }
}
