//! Environment-variable interpolation: `${VAR}`, `${VAR:-default}` and `$$`.
//!
//! This is one pure function family, independent of YAML and of the process
//! environment, so it can be table-tested (see the tests at the bottom).
//!
//! | written            | becomes                                             |
//! |--------------------|-----------------------------------------------------|
//! | `${NAME}`          | the value of `NAME`; an error when it is not set     |
//! | `${NAME:-default}` | the value of `NAME` when set and not empty, else `default` |
//! | `$$`               | a literal `$`                                        |
//! | `$` anything else  | left as it is (`$5`, `$NAME` are literal text)       |
//!
//! Variable names are `[A-Za-z_][A-Za-z0-9_]*`. Defaults are literal text (no
//! nested references) and end at the first `}`.
//!
//! Errors never contain a variable's *value*, only its name and where it was
//! referenced, so interpolating secrets cannot leak them into messages.
//!
//! ```
//! use elspeth_schema::interpolate::interpolate;
//! let lookup = |name: &str| (name == "HOST").then(|| "example.org".to_string());
//! assert_eq!(interpolate("https://${HOST}/x", lookup).unwrap(), "https://example.org/x");
//! assert_eq!(interpolate("${PORT:-8080} costs $$5", lookup).unwrap(), "8080 costs $5");
//! assert!(interpolate("${MISSING}", lookup).is_err());
//! ```

use std::fmt;
use std::ops::Range;

/// One `${...}` reference found in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'a> {
    /// The variable name.
    pub name: &'a str,
    /// The text after `:-`, when present.
    pub default: Option<&'a str>,
    /// Byte range of the whole reference (`${` to `}`) in the input.
    pub span: Range<usize>,
}

/// A piece of a parsed string: literal text or a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Literal text, with `$$` already turned into `$`.
    Literal(String),
    /// A `${...}` reference.
    Reference(Reference<'a>),
}

/// What went wrong with one reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationErrorKind {
    /// `${` with no closing `}`.
    Unclosed,
    /// `${}` or `${:-x}`.
    EmptyName,
    /// A name with characters outside `[A-Za-z0-9_]` or starting with a digit.
    InvalidName(String),
    /// The variable is not set and the reference has no default.
    Missing(String),
}

/// An interpolation problem, located by byte range in the input string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    /// What went wrong.
    pub kind: InterpolationErrorKind,
    /// Byte range in the input string.
    pub span: Range<usize>,
}

impl InterpolationError {
    /// A one-line hint on how to fix the problem.
    pub fn help(&self) -> String {
        match &self.kind {
            InterpolationErrorKind::Unclosed => {
                "close the reference with `}`, or write `$$` for a literal `$`".into()
            }
            InterpolationErrorKind::EmptyName => {
                "write a variable name, e.g. `${LANGFUSE_SECRET_KEY}`".into()
            }
            InterpolationErrorKind::InvalidName(_) => {
                "variable names are letters, digits and `_`, not starting with a digit".into()
            }
            InterpolationErrorKind::Missing(name) => {
                format!("set it (`export {name}=...`) or give a default: `${{{name}:-default}}`")
            }
        }
    }
}

impl fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            InterpolationErrorKind::Unclosed => write!(f, "unclosed `${{` in string"),
            InterpolationErrorKind::EmptyName => write!(f, "empty variable name in `${{}}`"),
            InterpolationErrorKind::InvalidName(name) => {
                write!(f, "invalid environment variable name `{name}`")
            }
            InterpolationErrorKind::Missing(name) => {
                write!(f, "environment variable `{name}` is not set")
            }
        }
    }
}

impl std::error::Error for InterpolationError {}

/// Why a `${VAR}` value could not be resolved: every problem of the value,
/// each followed by how to fix it. The one error type of env resolution
/// ([`EnvString::resolve`](crate::config::EnvString::resolve),
/// [`SecretRef::resolve`](crate::config::SecretRef::resolve)); it names
/// variables, never their values.
///
/// ```
/// use elspeth_schema::config::{EnvString, ProcessEnv};
/// let e = EnvString::new("${ELSPETH_DOC_UNSET}").resolve(&ProcessEnv).unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     "environment variable `ELSPETH_DOC_UNSET` is not set (set it (`export ELSPETH_DOC_UNSET=...`) or give a default: `${ELSPETH_DOC_UNSET:-default}`)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    /// Each problem, in the order they appear in the value.
    pub problems: Vec<InterpolationError>,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e} ({})", e.help())?;
        }
        Ok(())
    }
}

impl std::error::Error for EnvError {}

impl From<Vec<InterpolationError>> for EnvError {
    fn from(problems: Vec<InterpolationError>) -> Self {
        Self { problems }
    }
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Splits `input` into literal text and references, reporting every malformed
/// reference (not only the first).
pub fn parse(input: &str) -> Result<Vec<Segment<'_>>, Vec<InterpolationError>> {
    let mut segments = Vec::new();
    let mut errors = Vec::new();
    let mut literal = String::new();
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            // Copy the run up to the next `$` (keeps UTF-8 intact).
            let next = input[i..].find('$').map_or(input.len(), |p| i + p);
            literal.push_str(&input[i..next]);
            i = next;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => {
                literal.push('$');
                i += 2;
            }
            Some(b'{') => {
                let start = i;
                let Some(close) = input[i + 2..].find('}').map(|p| i + 2 + p) else {
                    errors.push(InterpolationError {
                        kind: InterpolationErrorKind::Unclosed,
                        span: start..input.len(),
                    });
                    break;
                };
                let body = &input[i + 2..close];
                let (name, default) = match body.find(":-") {
                    Some(p) => (&body[..p], Some(&body[p + 2..])),
                    None => (body, None),
                };
                let span = start..close + 1;
                if name.is_empty() {
                    errors.push(InterpolationError {
                        kind: InterpolationErrorKind::EmptyName,
                        span,
                    });
                } else if !is_valid_name(name) {
                    errors.push(InterpolationError {
                        kind: InterpolationErrorKind::InvalidName(name.to_string()),
                        span,
                    });
                } else {
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Reference(Reference {
                        name,
                        default,
                        span,
                    }));
                }
                i = close + 1;
            }
            _ => {
                literal.push('$');
                i += 1;
            }
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    if errors.is_empty() {
        Ok(segments)
    } else {
        Err(errors)
    }
}

/// The references in `input`, or the syntax errors.
pub fn references(input: &str) -> Result<Vec<Reference<'_>>, Vec<InterpolationError>> {
    Ok(parse(input)?
        .into_iter()
        .filter_map(|s| match s {
            Segment::Reference(r) => Some(r),
            Segment::Literal(_) => None,
        })
        .collect())
}

/// Whether `input` contains at least one `${...}` reference (malformed ones count).
pub fn has_references(input: &str) -> bool {
    match parse(input) {
        Ok(segments) => segments.iter().any(|s| matches!(s, Segment::Reference(_))),
        Err(_) => true,
    }
}

/// Replaces every reference in `input` using `lookup`, and `$$` by `$`.
///
/// All problems are returned together: every malformed reference and every
/// missing variable.
pub fn interpolate<F>(input: &str, lookup: F) -> Result<String, Vec<InterpolationError>>
where
    F: Fn(&str) -> Option<String>,
{
    let segments = parse(input)?;
    let mut out = String::with_capacity(input.len());
    let mut errors = Vec::new();
    for segment in segments {
        match segment {
            Segment::Literal(text) => out.push_str(&text),
            Segment::Reference(r) => match (lookup(r.name), r.default) {
                (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => errors.push(InterpolationError {
                    kind: InterpolationErrorKind::Missing(r.name.to_string()),
                    span: r.span,
                }),
            },
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InterpolationErrorKind::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("example.org".into()),
            "EMPTY" => Some(String::new()),
            "KEY" => Some("s3cr3t".into()),
            "DOLLAR" => Some("$HOME ${X}".into()),
            _ => None,
        }
    }

    #[test]
    fn table() {
        let ok: &[(&str, &str)] = &[
            ("", ""),
            ("plain text", "plain text"),
            ("${HOST}", "example.org"),
            ("https://${HOST}/v1", "https://example.org/v1"),
            ("${HOST}${HOST}", "example.orgexample.org"),
            ("${MISSING:-fallback}", "fallback"),
            ("${MISSING:-}", ""),
            ("${EMPTY:-fallback}", "fallback"),
            ("${EMPTY}", ""),
            ("${HOST:-fallback}", "example.org"),
            ("${MISSING:-a:-b}", "a:-b"),
            ("$$", "$"),
            ("$${HOST}", "${HOST}"),
            ("$$$${HOST}", "$${HOST}"),
            ("$$${HOST}", "$example.org"),
            ("costs $5", "costs $5"),
            ("$HOST", "$HOST"),
            ("trailing $", "trailing $"),
            ("ünï ${HOST} ☃", "ünï example.org ☃"),
            // values are inserted verbatim, never re-interpolated
            ("${DOLLAR}", "$HOME ${X}"),
        ];
        for (input, expected) in ok {
            assert_eq!(
                interpolate(input, env).as_deref(),
                Ok(*expected),
                "input {input:?}"
            );
        }

        type Expected<'a> = &'a [(InterpolationErrorKind, Range<usize>)];
        let bad: &[(&str, Expected<'_>)] = &[
            ("${MISSING}", &[(Missing("MISSING".into()), 0..10)]),
            ("a ${HOST", &[(Unclosed, 2..8)]),
            ("${", &[(Unclosed, 0..2)]),
            ("${}", &[(EmptyName, 0..3)]),
            ("${:-x}", &[(EmptyName, 0..6)]),
            ("${1X}", &[(InvalidName("1X".into()), 0..5)]),
            ("${A-B}", &[(InvalidName("A-B".into()), 0..6)]),
            (
                "${A} and ${B}",
                &[(Missing("A".into()), 0..4), (Missing("B".into()), 9..13)],
            ),
            (
                "${bad name} ${",
                &[(InvalidName("bad name".into()), 0..11), (Unclosed, 12..14)],
            ),
        ];
        for (input, expected) in bad {
            let errors = interpolate(input, env).unwrap_err();
            let got: Vec<_> = errors.into_iter().map(|e| (e.kind, e.span)).collect();
            assert_eq!(&got, expected, "input {input:?}");
        }
    }

    #[test]
    fn errors_never_contain_values() {
        let errors = interpolate("${KEY} ${NOPE}", env).unwrap_err();
        for e in errors {
            assert!(!e.to_string().contains("s3cr3t"));
            assert!(!e.help().contains("s3cr3t"));
        }
    }

    #[test]
    fn references_are_listed_with_spans() {
        let refs = references("x ${A} $$ ${B:-d}").unwrap();
        assert_eq!(
            refs,
            vec![
                Reference {
                    name: "A",
                    default: None,
                    span: 2..6
                },
                Reference {
                    name: "B",
                    default: Some("d"),
                    span: 10..17
                },
            ]
        );
        assert!(has_references("${A}"));
        assert!(!has_references("$$ and $5"));
    }
}
