//! Paths into the YAML tree and the source spans problems are reported at.

use std::fmt;
use std::ops::Range;

use crate::span::{LineIndex, Span};
use crate::yaml::{Key, Node, Value};

/// One step of a path into the YAML document: a mapping key or a sequence
/// index (see [`Validated::span_at`](super::Validated::span_at)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A borrowed [`Seg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

impl Step<'_> {
    pub(crate) fn to_seg(self) -> Seg {
        match self {
            Step::Key(k) => Seg::Key(k.to_string()),
            Step::Index(i) => Seg::Index(i),
        }
    }
}

impl Seg {
    pub(crate) fn step(&self) -> Step<'_> {
        match self {
            Seg::Key(k) => Step::Key(k),
            Seg::Index(i) => Step::Index(*i),
        }
    }
}

impl fmt::Display for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seg::Key(k) => f.write_str(k),
            Seg::Index(i) => write!(f, "{i}"),
        }
    }
}

/// Builds a path (an array of [`Seg`]) from literal steps:
/// `segs!["transforms", 0, "options"]`.
macro_rules! segs {
    ($($seg:expr),* $(,)?) => {
        [$($crate::validate::locate::Seg::from($seg)),*]
    };
}
pub(crate) use segs;

impl From<&str> for Seg {
    fn from(s: &str) -> Self {
        Seg::Key(s.to_string())
    }
}
impl From<String> for Seg {
    fn from(s: String) -> Self {
        Seg::Key(s)
    }
}
impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// Converts a jsonschema instance location.
pub(crate) fn from_location(location: &jsonschema::paths::Location) -> Vec<Seg> {
    location
        .iter()
        .map(|s| match s {
            jsonschema::paths::LocationSegment::Property(p) => Seg::Key(p.into_owned()),
            jsonschema::paths::LocationSegment::Index(i) => Seg::Index(i),
        })
        .collect()
}

/// A node found by path, with the key it is the value of (if any).
#[derive(Clone, Copy)]
pub(crate) struct Found<'a> {
    pub node: &'a Node,
    pub key: Option<&'a Key>,
}

/// The node at `path` under `root`. A numeric step also matches a mapping
/// key with that text (jsonschema renders such keys as indexes).
pub(crate) fn find<'a>(root: &'a Node, path: &[Seg]) -> Option<Found<'a>> {
    let mut found = Found {
        node: root,
        key: None,
    };
    for seg in path {
        found = step(found.node, seg)?;
    }
    Some(found)
}

fn step<'a>(node: &'a Node, seg: &Seg) -> Option<Found<'a>> {
    match (&node.value, seg) {
        (Value::Map(entries), Seg::Key(k)) => entries.iter().find(|e| &e.key.name == k),
        (Value::Map(entries), Seg::Index(i)) => {
            let k = i.to_string();
            entries.iter().find(|e| e.key.name == k)
        }
        (Value::Seq(items), Seg::Index(i)) => {
            return items.get(*i).map(|n| Found { node: n, key: None });
        }
        (Value::Seq(items), Seg::Key(k)) => {
            return k
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .map(|n| Found { node: n, key: None });
        }
        _ => None,
    }
    .map(|e| Found {
        node: &e.value,
        key: Some(&e.key),
    })
}

/// The deepest node on `path` that exists (for reporting when the path
/// itself does not).
pub(crate) fn find_closest<'a>(root: &'a Node, path: &[Seg]) -> Found<'a> {
    let mut found = Found {
        node: root,
        key: None,
    };
    for seg in path {
        match step(found.node, seg) {
            Some(next) => found = next,
            None => break,
        }
    }
    found
}

/// Where to report a problem with a mapping as a whole (e.g. a missing
/// key): the key it is the value of; else its `plugin`/`provider`/`name`
/// entry; else its first key; else the node.
pub(crate) fn anchor_span(found: Found<'_>) -> Span {
    if let Some(key) = found.key {
        return key.span;
    }
    if let Some(entries) = found.node.entries() {
        for disc in ["plugin", "provider", "name"] {
            if let Some(e) = entries.iter().find(|e| e.key.name == disc) {
                return e.span();
            }
        }
        if let Some(first) = entries.first() {
            return first.key.span;
        }
    }
    found.node.span
}

/// Where to report a problem with a tracing block as a whole: its
/// `provider:` entry (the line that selects what is required).
pub(crate) fn provider_span(found: Found<'_>) -> Span {
    found
        .node
        .entry("provider")
        .map_or_else(|| anchor_span(found), |e| e.span())
}

/// Where to report a problem with a value: the value itself.
pub(crate) fn value_span(found: Found<'_>) -> Span {
    found.node.span
}

/// Maps a byte range of a string value back to the source. Works for any
/// scalar style as long as the text appears verbatim in the source (no
/// escapes or line folding inside it); otherwise the whole value's span.
pub(crate) fn scalar_range(index: &LineIndex<'_>, node: &Node, range: Range<usize>) -> Span {
    let Some(value) = node.as_str() else {
        return node.span;
    };
    let source = &index.text()[node.span.range()];
    let range = range.start.min(value.len())..range.end.min(value.len());
    // Fast path: a plain or quoted scalar written exactly as its value.
    let shift = if source == value {
        Some(0)
    } else if source.len() == value.len() + 2
        && (source.starts_with('"') || source.starts_with('\''))
        && source.get(1..source.len() - 1) == Some(value)
    {
        Some(1)
    } else {
        None
    };
    if let Some(shift) = shift {
        let start = node.span.start.offset + shift;
        return Span::new(index.pos(start + range.start), index.pos(start + range.end));
    }
    let mut candidates = vec![range.clone()];
    if let Some(nl) = value[range.clone()].find('\n') {
        candidates.push(range.start..range.start + nl);
    }
    for r in candidates {
        let sub = &value[r.clone()];
        if sub.is_empty() {
            continue;
        }
        let nth = value[..r.start].matches(sub).count();
        if let Some((at, _)) = source
            .match_indices(sub)
            .nth(nth)
            .or_else(|| source.match_indices(sub).next())
        {
            let start = node.span.start.offset + at;
            return Span::new(index.pos(start), index.pos(start + sub.len()));
        }
    }
    node.span
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{Limits, parse};

    #[test]
    fn finds_nodes_and_spans() {
        let text = "a:\n  - b: 1\n    c: \"x ${Y\"\n  - plugin: p\n    q: 2\n'7': z\n";
        let root = parse(text, &Limits::default()).root.unwrap();
        let index = LineIndex::new(text);
        let b = find(&root, &segs!["a", 0, "b"]).unwrap();
        assert_eq!(b.key.unwrap().span.start.line, 2);
        assert_eq!(find(&root, &segs![7]).unwrap().node.as_str(), Some("z"));
        assert!(find(&root, &segs!["a", 5]).is_none());
        assert_eq!(
            find_closest(&root, &segs!["a", 0, "zz"])
                .node
                .span
                .start
                .line,
            2
        );
        // a mapping in a list is reported at its discriminator entry
        let item = find(&root, &segs!["a", 1]).unwrap();
        let s = anchor_span(item);
        assert_eq!((s.start.line, s.start.column, s.end.column), (4, 5, 14));
        // a range inside a quoted string
        let c = find(&root, &segs!["a", 0, "c"]).unwrap().node;
        let s = scalar_range(&index, c, 2..5);
        assert_eq!((s.start.line, s.start.column, s.end.column), (3, 11, 14));
    }
}
