//! A spanned YAML loader: YAML text → a tree of [`Node`]s that each know
//! where they were written.
//!
//! Built on the event stream of `saphyr-parser` (itself a state machine, not
//! recursive), with an explicit stack, so hostile input cannot overflow the
//! Rust stack:
//!
//! - nesting deeper than [`Limits::max_depth`] is an error (the tree is never
//!   deeper than that, so dropping or walking it recursively is safe);
//! - aliases are expanded (the tree holds copies), and every node an alias
//!   copies counts against [`Limits::max_alias_nodes`], so a "billion laughs"
//!   alias bomb is rejected after a bounded amount of work and memory;
//! - the whole tree is bounded by [`Limits::max_nodes`];
//! - duplicate keys are errors (at the second key, naming the first's line);
//! - plain scalars are resolved with the YAML 1.2 core schema (`null`,
//!   booleans, integers, floats; anything quoted is a string). YAML 1.1
//!   oddities such as `yes`/`no`/`on`/`off` stay strings.
//! - `<<` merge keys (a mapping or a list of mappings) are supported;
//!   explicit keys win over merged ones.
//!
//! ```
//! use elspeth_schema::yaml::{parse, Limits, Value};
//! let parsed = parse("a: 1\nb: [x, 'y']\n", &Limits::default());
//! assert!(parsed.errors.is_empty());
//! let root = parsed.root.unwrap();
//! let b = root.get("b").unwrap();
//! assert_eq!(b.span.start.line, 2);
//! assert!(matches!(root.get("a").unwrap().value, Value::Int(1)));
//! ```

mod de;

use std::collections::HashMap;

pub use de::DeError;
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Tag};

use crate::span::{LineIndex, Pos, Span};

const DEPTH_HELP: &str =
    "a pipeline file needs only a few levels; check for runaway indentation or brackets";

/// Limits that keep hostile input cheap to reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_file_bytes: usize,
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most nodes that alias expansion may copy, in total.
    pub max_alias_nodes: usize,
    /// Most nodes in the whole tree (aliases expanded).
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 8 * 1024 * 1024,
            max_depth: 64,
            max_alias_nodes: 200_000,
            max_nodes: 1_000_000,
        }
    }
}

/// A YAML value with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it was written (for an empty value, the key's span).
    pub span: Span,
}

/// A resolved YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer (decimal, `0o` octal or `0x` hex).
    Int(i128),
    /// A floating-point number (including `.inf` and `.nan`).
    Float(f64),
    /// A string (any quoted or block scalar, or a plain one that is not
    /// null, a boolean or a number).
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, keys in written order.
    Map(Vec<Entry>),
}

/// One `key: value` entry of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key.
    pub key: Key,
    /// The value.
    pub value: Node,
}

impl Entry {
    /// From the start of the key to the end of the value.
    pub fn span(&self) -> Span {
        self.key.span.to(self.value.span)
    }
}

/// A mapping key (always a scalar; its text as written).
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key text.
    pub name: String,
    /// Where it was written.
    pub span: Span,
    /// Whether it was a plain (unquoted) scalar.
    pub plain: bool,
}

impl Node {
    /// The value of `key`, when this is a mapping holding it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entry of `key`, when this is a mapping holding it.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key.name == key),
            _ => None,
        }
    }

    /// The string, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, when this is a mapping.
    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(e) => Some(e),
            _ => None,
        }
    }

    /// The items, when this is a sequence.
    pub fn items(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// What kind of value this is, for messages (`a string`, `a mapping`, ...).
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Converts to JSON. Integers too large for JSON become floats; `.inf`
    /// and `.nan` become strings (JSON has no such numbers).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => {
                if let Ok(v) = i64::try_from(*i) {
                    J::from(v)
                } else if let Ok(v) = u64::try_from(*i) {
                    J::from(v)
                } else {
                    J::from(*i as f64)
                }
            }
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(format_non_finite(*f))),
            Value::String(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.name.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

fn format_non_finite(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f > 0.0 {
        ".inf".into()
    } else {
        "-.inf".into()
    }
}

/// A problem found while loading.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    /// Where.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Extra context.
    pub notes: Vec<String>,
}

/// The result of [`parse`]: the tree (when the text could be loaded) and
/// every problem found.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The document's root; `None` when the text holds no document or a
    /// fatal error stopped loading.
    pub root: Option<Node>,
    /// Problems found. When not empty but `root` is `Some`, the tree is
    /// still usable (e.g. a duplicate key kept its first value).
    pub errors: Vec<YamlError>,
    /// Nodes in the tree (aliases expanded).
    pub node_count: usize,
    /// Nodes copied by alias expansion.
    pub alias_node_count: usize,
}

enum Frame {
    Seq {
        start: Pos,
        flow: bool,
        anchor: usize,
        items: Vec<Node>,
        count: usize,
        height: usize,
    },
    Map {
        start: Pos,
        flow: bool,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<Key>,
        /// The pending key was a duplicate: drop its value.
        skip_value: bool,
        /// Key → entry index, built once the mapping grows large.
        index: Option<HashMap<String, usize>>,
        count: usize,
        height: usize,
    },
}

/// A finished node with its subtree size and height.
struct Built {
    node: Node,
    count: usize,
    height: usize,
}

struct Anchor {
    node: Node,
    count: usize,
    height: usize,
}

struct Fatal;

struct Loader<'a> {
    index: &'a LineIndex<'a>,
    /// The text is ASCII, so positions need no character counting.
    ascii: bool,
    limits: Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchor>,
    root: Option<Node>,
    errors: Vec<YamlError>,
    nodes: usize,
    alias_nodes: usize,
}

/// Loads `text` as one YAML document.
pub fn parse(text: &str, limits: &Limits) -> Parsed {
    let index = LineIndex::new(text);
    parse_indexed(&index, limits)
}

/// Like [`parse`], reusing a [`LineIndex`] of the text.
pub fn parse_indexed(index: &LineIndex<'_>, limits: &Limits) -> Parsed {
    let mut loader = Loader {
        index,
        ascii: index.text().is_ascii(),
        limits: *limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        errors: Vec::new(),
        nodes: 0,
        alias_nodes: 0,
    };
    let ok = loader.run(index.text()).is_ok();
    // Partially built frames are dropped here; they are at most
    // `max_depth` deep, like the tree.
    loader.stack.clear();
    Parsed {
        root: if ok { loader.root } else { None },
        errors: loader.errors,
        node_count: loader.nodes,
        alias_node_count: loader.alias_nodes,
    }
}

impl Loader<'_> {
    fn pos(&self, marker: saphyr_parser::Marker) -> Pos {
        if self.ascii {
            // Characters are bytes: saphyr's character index is the offset.
            return Pos {
                offset: marker.index().min(self.index.text().len()),
                line: marker.line(),
                column: marker.col() + 1,
            };
        }
        self.index.pos_at(marker.line(), marker.col())
    }

    fn span(&self, span: saphyr_parser::Span) -> Span {
        Span::new(self.pos(span.start), self.pos(span.end))
    }

    fn error(&mut self, span: Span, message: impl Into<String>) -> &mut YamlError {
        self.errors.push(YamlError {
            span,
            message: message.into(),
            help: None,
            notes: Vec::new(),
        });
        self.errors.last_mut().expect("just pushed")
    }

    fn run(&mut self, text: &str) -> Result<(), Fatal> {
        let mut parser = Parser::new_from_str(text);
        let mut documents = 0;
        while let Some(event) = parser.next_event() {
            let (event, span) = match event {
                Ok(ev) => ev,
                Err(e) => return Err(self.syntax_error(&e)),
            };
            match event {
                Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
                Event::StreamEnd => break,
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        let span = self.span(span);
                        let first = self.root.as_ref().map_or(1, |r| r.span.start.line);
                        self.error(
                            span,
                            "a pipeline file holds one YAML document, found a second",
                        )
                        .help = Some(format!(
                            "remove this `---` and what follows, or move it to its own file (the first document starts at line {first})"
                        ));
                        return Ok(());
                    }
                }
                Event::Scalar(value, style, anchor, tag) => {
                    let span = self.span(span);
                    self.scalar(value.into_owned(), style, anchor, tag.as_deref(), span)?;
                }
                Event::SequenceStart(anchor, tag) => {
                    let span = self.span(span);
                    self.check_collection_tag(tag.as_deref(), "seq", span);
                    self.open(span)?;
                    let flow = text[span.start.offset..].starts_with('[');
                    self.stack.push(Frame::Seq {
                        start: span.start,
                        flow,
                        anchor,
                        items: Vec::new(),
                        count: 0,
                        height: 0,
                    });
                }
                Event::MappingStart(anchor, tag) => {
                    let span = self.span(span);
                    self.check_collection_tag(tag.as_deref(), "map", span);
                    self.open(span)?;
                    let flow = text[span.start.offset..].starts_with('{');
                    self.stack.push(Frame::Map {
                        start: span.start,
                        flow,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                        skip_value: false,
                        index: None,
                        count: 0,
                        height: 0,
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let end_span = self.span(span);
                    self.close(end_span)?;
                }
                Event::Alias(id) => {
                    let span = self.span(span);
                    self.alias(id, span)?;
                }
            }
        }
        Ok(())
    }

    fn syntax_error(&mut self, e: &ScanError) -> Fatal {
        let pos = self.pos(*e.marker());
        let info = e.info();
        if info == "recursion limit exceeded" {
            // The scanner's own flow-nesting limit, hit while scanning ahead.
            let max = self.limits.max_depth;
            let end = self.index.pos(pos.offset + 1);
            self.error(
                Span::new(pos, end),
                format!("nesting is deeper than {max} levels"),
            )
            .help = Some(DEPTH_HELP.into());
            return Fatal;
        }
        let mut help = syntax_help(info, self.index.line_text(pos.line).unwrap_or(""));
        let mut notes = Vec::new();
        // An unclosed `[` or `{` is usually the real cause of an error
        // reported further down.
        let open_flow = self.stack.iter().rev().find_map(|f| match f {
            Frame::Seq {
                start, flow: true, ..
            } => Some((*start, '[', ']')),
            Frame::Map {
                start, flow: true, ..
            } => Some((*start, '{', '}')),
            _ => None,
        });
        if let Some((start, open, close)) = open_flow
            && start.line < pos.line
        {
            notes.push(format!(
                "the `{open}` at line {}, column {} is still open",
                start.line, start.column
            ));
            help = Some(format!("close it with `{close}`"));
        }
        let end = self.index.pos(pos.offset + 1);
        let err = self.error(Span::new(pos, end), format!("YAML syntax error: {info}"));
        err.help = help;
        err.notes = notes;
        Fatal
    }

    /// Checks depth before a collection opens.
    fn open(&mut self, span: Span) -> Result<(), Fatal> {
        if self.stack.len() >= self.limits.max_depth {
            let max = self.limits.max_depth;
            self.error(span, format!("nesting is deeper than {max} levels"))
                .help = Some(DEPTH_HELP.into());
            return Err(Fatal);
        }
        self.count_nodes(1, span)
    }

    fn count_nodes(&mut self, n: usize, span: Span) -> Result<(), Fatal> {
        self.nodes += n;
        if self.nodes > self.limits.max_nodes {
            let max = self.limits.max_nodes;
            self.error(span, format!("the document has more than {max} values"))
                .help = Some("a pipeline file is far smaller; split the data out of it".into());
            return Err(Fatal);
        }
        Ok(())
    }

    fn check_collection_tag(&mut self, tag: Option<&Tag>, expected: &str, span: Span) {
        if let Some(tag) = tag
            && !(tag.is_yaml_core_schema() && tag.suffix == expected)
        {
            self.unsupported_tag(tag, span);
        }
    }

    fn unsupported_tag(&mut self, tag: &Tag, span: Span) {
        let shown = if tag.is_yaml_core_schema() {
            format!("!!{}", tag.suffix)
        } else {
            tag.to_string()
        };
        self.error(span, format!("unsupported YAML tag `{shown}`"))
            .help = Some("remove the tag; pipeline files use plain YAML values (`!!str` to force a string is fine)".into());
    }

    fn scalar(
        &mut self,
        text: String,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        span: Span,
    ) -> Result<(), Fatal> {
        self.count_nodes(1, span)?;
        // A key: kept as text.
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            let key = Key {
                name: text,
                span,
                plain: style == ScalarStyle::Plain && tag.is_none(),
            };
            if anchor != 0 {
                let node = Node {
                    value: Value::String(key.name.clone()),
                    span,
                };
                self.anchors.insert(
                    anchor,
                    Anchor {
                        node,
                        count: 1,
                        height: 0,
                    },
                );
            }
            self.set_key(key);
            return Ok(());
        }
        let value = self.resolve(text, style, tag, span);
        let span = if matches!(value, Value::Null) && span.start == span.end {
            // `key:` with nothing after it: point at the key.
            match self.stack.last() {
                Some(Frame::Map { key: Some(k), .. }) => k.span,
                _ => span,
            }
        } else {
            span
        };
        let built = Built {
            node: Node { value, span },
            count: 1,
            height: 0,
        };
        self.finish(built, anchor)
    }

    fn resolve(
        &mut self,
        text: String,
        style: ScalarStyle,
        tag: Option<&Tag>,
        span: Span,
    ) -> Value {
        if let Some(tag) = tag {
            if tag.is_yaml_core_schema() {
                let resolved = match tag.suffix.as_str() {
                    "str" => Some(Value::String(text.clone())),
                    "null" => matches!(resolve_plain(&text), Value::Null).then_some(Value::Null),
                    "bool" => {
                        let v = resolve_plain(&text);
                        matches!(v, Value::Bool(_)).then_some(v)
                    }
                    "int" => {
                        let v = resolve_plain(&text);
                        matches!(v, Value::Int(_)).then_some(v)
                    }
                    "float" => match resolve_plain(&text) {
                        Value::Int(i) => Some(Value::Float(i as f64)),
                        v @ Value::Float(_) => Some(v),
                        _ => None,
                    },
                    _ => {
                        self.unsupported_tag(tag, span);
                        return Value::String(text);
                    }
                };
                return resolved.unwrap_or_else(|| {
                    self.error(span, format!("`{text}` is not a valid `!!{}`", tag.suffix));
                    Value::String(text)
                });
            }
            if tag.handle.is_empty() && tag.suffix == "!" {
                // The non-specific tag `!`: a string.
                return Value::String(text);
            }
            self.unsupported_tag(tag, span);
        }
        if style == ScalarStyle::Plain {
            resolve_plain(&text).with_string(text)
        } else {
            Value::String(text)
        }
    }

    fn set_key(&mut self, key: Key) {
        let Some(Frame::Map {
            entries,
            key: slot,
            skip_value,
            index,
            ..
        }) = self.stack.last_mut()
        else {
            return;
        };
        let first = if let Some(index) = index {
            index.get(&key.name).map(|&i| entries[i].key.span)
        } else {
            entries
                .iter()
                .find(|e| e.key.name == key.name)
                .map(|e| e.key.span)
        };
        *skip_value = first.is_some();
        let duplicate = first.map(|f| (f, key.name.clone(), key.span));
        *slot = Some(key);
        if let Some((first, name, span)) = duplicate {
            self.error(span, format!("duplicate key `{name}`")).help = Some(format!(
                "`{name}` is already set at line {}; remove one of them",
                first.start.line
            ));
        }
    }

    fn alias(&mut self, id: usize, span: Span) -> Result<(), Fatal> {
        let Some(anchor) = self.anchors.get(&id) else {
            self.error(
                span,
                "alias refers to an anchor that is still being defined",
            )
            .help = Some("an anchored value cannot contain an alias to itself".into());
            return Err(Fatal);
        };
        let (count, height) = (anchor.count, anchor.height);
        self.alias_nodes += count;
        if self.alias_nodes > self.limits.max_alias_nodes {
            let max = self.limits.max_alias_nodes;
            self.error(
                span,
                format!("aliases expand to more than {max} values (an alias bomb?)"),
            )
            .help =
                Some("use fewer or smaller aliases; each alias copies its anchored value".into());
            return Err(Fatal);
        }
        if self.stack.len() + height > self.limits.max_depth {
            let max = self.limits.max_depth;
            self.error(
                span,
                format!("nesting is deeper than {max} levels once this alias is expanded"),
            );
            return Err(Fatal);
        }
        self.count_nodes(count, span)?;
        let node = self.anchors[&id].node.clone();
        // A key that is an alias: use its text.
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            match node.value {
                Value::String(name) => self.set_key(Key {
                    name,
                    span,
                    plain: false,
                }),
                _ => {
                    self.error(span, "mapping keys must be plain strings");
                    self.set_key(Key {
                        name: String::new(),
                        span,
                        plain: false,
                    });
                }
            }
            return Ok(());
        }
        self.finish(
            Built {
                node: Node {
                    value: node.value,
                    span: node.span,
                },
                count,
                height,
            },
            0,
        )
    }

    fn close(&mut self, end: Span) -> Result<(), Fatal> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let (built, anchor) = match frame {
            Frame::Seq {
                start,
                flow,
                anchor,
                items,
                count,
                height,
            } => {
                let last = items.last().map(|n| n.span.end);
                let end = if flow { end.end } else { last.unwrap_or(start) };
                (
                    Built {
                        node: Node {
                            value: Value::Seq(items),
                            span: Span::new(start, end),
                        },
                        count: count + 1,
                        height: height + 1,
                    },
                    anchor,
                )
            }
            Frame::Map {
                start,
                flow,
                anchor,
                entries,
                count,
                height,
                ..
            } => {
                let last = entries.last().map(|e| e.value.span.end.max(e.key.span.end));
                let end = if flow { end.end } else { last.unwrap_or(start) };
                let entries = self.merge_keys(entries);
                (
                    Built {
                        node: Node {
                            value: Value::Map(entries),
                            span: Span::new(start, end),
                        },
                        count: count + 1,
                        height: height + 1,
                    },
                    anchor,
                )
            }
        };
        self.finish(built, anchor)
    }

    /// Applies `<<` merge keys: entries of the merged mappings whose keys
    /// are not set explicitly are appended.
    fn merge_keys(&mut self, entries: Vec<Entry>) -> Vec<Entry> {
        if !entries.iter().any(|e| e.key.plain && e.key.name == "<<") {
            return entries;
        }
        let (merges, mut out): (Vec<Entry>, Vec<Entry>) = entries
            .into_iter()
            .partition(|e| e.key.plain && e.key.name == "<<");
        for merge in merges {
            let sources: Vec<Node> = match merge.value.value {
                Value::Map(_) => vec![merge.value],
                Value::Seq(items) => items,
                _ => {
                    self.error(
                        merge.value.span,
                        "a `<<` merge needs a mapping or a list of mappings",
                    )
                    .help = Some("write `<<: *anchor` where `&anchor` marks a mapping".into());
                    continue;
                }
            };
            for source in sources {
                match source.value {
                    Value::Map(merged) => {
                        for entry in merged {
                            if !out.iter().any(|e| e.key.name == entry.key.name) {
                                out.push(entry);
                            }
                        }
                    }
                    _ => {
                        self.error(source.span, "a `<<` merge list may only hold mappings");
                    }
                }
            }
        }
        out
    }

    /// Puts a finished node into its parent (or makes it the root).
    fn finish(&mut self, built: Built, anchor: usize) -> Result<(), Fatal> {
        if anchor != 0 {
            self.anchors.insert(
                anchor,
                Anchor {
                    node: built.node.clone(),
                    count: built.count,
                    height: built.height,
                },
            );
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(built.node);
            }
            Some(Frame::Seq {
                items,
                count,
                height,
                ..
            }) => {
                items.push(built.node);
                *count += built.count;
                *height = (*height).max(built.height);
            }
            Some(Frame::Map {
                entries,
                key,
                skip_value,
                index,
                count,
                height,
                ..
            }) => {
                *count += built.count;
                *height = (*height).max(built.height);
                match key.take() {
                    Some(key) => {
                        if !std::mem::take(skip_value) {
                            if let Some(index) = index {
                                index.insert(key.name.clone(), entries.len());
                            }
                            entries.push(Entry {
                                key,
                                value: built.node,
                            });
                            if index.is_none() && entries.len() >= 16 {
                                *index = Some(
                                    entries
                                        .iter()
                                        .enumerate()
                                        .map(|(i, e)| (e.key.name.clone(), i))
                                        .collect(),
                                );
                            }
                        }
                    }
                    None => {
                        // A mapping or sequence used as a key.
                        let span = built.node.span;
                        self.error(span, "mapping keys must be plain strings").help = Some(
                            "complex keys (`? ...`) are not supported in pipeline files".into(),
                        );
                        if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                            *key = Some(Key {
                                name: String::new(),
                                span,
                                plain: false,
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

trait WithString {
    fn with_string(self, text: String) -> Value;
}

impl WithString for Value {
    /// `resolve_plain` returns `String(String::new())` as a marker for
    /// "keep the text"; this swaps in the owned text without a copy.
    fn with_string(self, text: String) -> Value {
        match self {
            Value::String(_) => Value::String(text),
            other => other,
        }
    }
}

/// Resolves a plain scalar with the YAML 1.2 core schema. Strings are
/// returned as an empty `Value::String` marker (see [`WithString`]).
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let bytes = text.as_bytes();
    let first = bytes[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Value::String(String::new());
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if !oct.is_empty()
            && oct.bytes().all(|b| (b'0'..=b'7').contains(&b))
            && let Ok(v) = i128::from_str_radix(oct, 8)
        {
            return Value::Int(v);
        }
        return Value::String(String::new());
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if !hex.is_empty()
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && let Ok(v) = i128::from_str_radix(hex, 16)
        {
            return Value::Int(v);
        }
        return Value::String(String::new());
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i128>() {
            Ok(v) => Value::Int(v),
            Err(_) => text
                .parse::<f64>()
                .map_or(Value::String(String::new()), Value::Float),
        };
    }
    if is_core_float(digits)
        && let Ok(v) = text.parse::<f64>()
    {
        return Value::Float(v);
    }
    Value::String(String::new())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` (sign already removed).
fn is_core_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

/// A hint for common YAML syntax errors.
fn syntax_help(info: &str, line: &str) -> Option<String> {
    let info = info.to_ascii_lowercase();
    let help = if line.trim_start_matches(' ').starts_with('\t') || info.contains("tab") {
        "indent with spaces: YAML does not allow tabs for indentation"
    } else if info.contains("mapping values are not allowed") {
        "quote a value that contains `: `, or check the indentation of this line"
    } else if info.contains("did not find expected key") || info.contains("block mapping") {
        "check the indentation: keys of one mapping must start in the same column"
    } else if info.contains("did not find expected ',' or ']'") || info.contains("flow sequence") {
        "close the list with `]`, separating items with `,`"
    } else if info.contains("did not find expected ',' or '}'") || info.contains("flow mapping") {
        "close the mapping with `}`, separating entries with `,`"
    } else if info.contains("quoted scalar") {
        "close the quoted string with the same quote it starts with"
    } else if info.contains("anchor") || info.contains("alias") {
        "define the anchor (`&name`) before using the alias (`*name`)"
    } else if info.contains("block sequence") {
        "check the indentation of the list items (`- `)"
    } else {
        return None;
    };
    Some(help.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Parsed {
        parse(text, &Limits::default())
    }

    fn json(text: &str) -> serde_json::Value {
        let p = load(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        p.root.unwrap().to_json()
    }

    #[test]
    fn core_schema_resolution() {
        let v = json(
            "a: ~\nb: null\nc:\nd: true\ne: False\nf: 12\ng: -3\nh: 0x1F\ni: 0o17\nj: 1.5\nk: .5\nl: 1e3\nm: .inf\nn: yes\no: '12'\np: \"true\"\nq: 2024-10-21\nr: !!str 12\ns: 1_000\nt: 99999999999999999999\nu: 0.\nv: +12\n",
        );
        let want = serde_json::json!({
            "a": null, "b": null, "c": null, "d": true, "e": false, "f": 12, "g": -3,
            "h": 31, "i": 15, "j": 1.5, "k": 0.5, "l": 1000.0, "m": ".inf", "n": "yes",
            "o": "12", "p": "true", "q": "2024-10-21", "r": "12", "s": "1_000",
            "t": 99999999999999999999.0, "u": 0.0, "v": 12
        });
        assert_eq!(v, want);
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let p = load("name: x\nsource:\n  plugin: csv\n  path: \"a b\"\nempty:\nlist: [1, 2]\n");
        let root = p.root.unwrap();
        let source = root.entry("source").unwrap();
        assert_eq!(
            (source.key.span.start.line, source.key.span.start.column),
            (2, 1)
        );
        let path = root.get("source").unwrap().get("path").unwrap();
        assert_eq!((path.span.start.line, path.span.start.column), (4, 9));
        assert_eq!(path.span.end.column, 14);
        let empty = root.entry("empty").unwrap();
        assert_eq!(empty.value.span, empty.key.span);
        let list = root.get("list").unwrap();
        assert_eq!((list.span.start.column, list.span.end.column), (7, 13));
        // block mapping ends at its last value, not at the next key
        let src = root.get("source").unwrap();
        assert_eq!((src.span.end.line, src.span.end.column), (4, 14));
    }

    #[test]
    fn duplicate_keys_are_errors_at_the_second() {
        let p = load("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n");
        let msgs: Vec<_> = p
            .errors
            .iter()
            .map(|e| (e.span.start.line, e.span.start.column, e.message.clone()))
            .collect();
        assert_eq!(
            msgs,
            vec![
                (4, 3, "duplicate key `c`".to_string()),
                (5, 1, "duplicate key `a`".to_string())
            ]
        );
        assert!(p.errors[1].help.as_ref().unwrap().contains("line 1"));
        // the first value is kept
        let root = p.root.unwrap();
        assert_eq!(root.get("a").unwrap().value, Value::Int(1));
        // large mappings use an index; duplicates are still found
        let mut big: String = (0..40).map(|i| format!("k{i}: {i}\n")).collect();
        big.push_str("k7: 0\n");
        let p = load(&big);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].span.start.line, 41);
    }

    #[test]
    fn aliases_and_merge_keys() {
        let v = json("base: &b {host: h, x: 1}\nuse: *b\nmerged:\n  <<: *b\n  x: 2\n");
        assert_eq!(v["use"], serde_json::json!({"host": "h", "x": 1}));
        assert_eq!(v["merged"], serde_json::json!({"x": 2, "host": "h"}));
        let v = json("a: &a [1]\nb: {'<<': *a}\n");
        assert_eq!(v["b"], serde_json::json!({"<<": [1]}));
    }

    #[test]
    fn syntax_errors_are_located() {
        let p = load("a: 1\nb: [1, 2\nc: 3\n");
        assert!(p.root.is_none());
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].message.starts_with("YAML syntax error"));
        assert_eq!(
            p.errors[0].notes,
            ["the `[` at line 2, column 4 is still open"]
        );
        let p = load("a:\n\tb: 1\n");
        assert_eq!(p.errors[0].span.start.line, 2);
        assert!(p.errors[0].help.as_ref().unwrap().contains("tabs"));
    }

    #[test]
    fn second_document_and_tags() {
        let p = load("a: 1\n---\nb: 2\n");
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].span.start.line, 2);
        assert!(p.root.is_some());
        let p = load("a: !Ref x\nb: !!binary aGk=\nc: !!int x\n");
        let msgs: Vec<_> = p.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            msgs,
            vec![
                "unsupported YAML tag `!Ref`",
                "unsupported YAML tag `!!binary`",
                "`x` is not a valid `!!int`"
            ]
        );
    }

    #[test]
    fn depth_limit_is_enforced_without_recursion() {
        let deep_flow = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let p = load(&deep_flow);
        assert!(p.root.is_none());
        assert!(
            p.errors[0].message.contains("deeper than 64"),
            "{:?}",
            p.errors
        );
        let mut deep_block = String::new();
        for i in 0..10_000 {
            deep_block.push_str(&" ".repeat(i));
            deep_block.push_str("k:\n");
        }
        let p = load(&deep_block);
        assert!(
            p.errors[0].message.contains("deeper than 64"),
            "{:?}",
            p.errors
        );
        assert_eq!(p.errors[0].span.start.line, 65);
    }

    #[test]
    fn alias_bomb_is_rejected_by_the_node_budget() {
        let mut bomb = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            let refs = vec![format!("*{}", w[0]); 9].join(", ");
            bomb.push_str(&format!("{}: &{} [{refs}]\n", w[1], w[1]));
        }
        let limits = Limits::default();
        let p = parse(&bomb, &limits);
        assert!(p.root.is_none());
        assert!(p.errors[0].message.contains("alias bomb"), "{:?}", p.errors);
        // Values materialised are bounded by the budget, not by the bomb.
        assert!(p.node_count <= limits.max_alias_nodes + bomb.len());
    }

    #[test]
    fn node_limit() {
        let limits = Limits {
            max_nodes: 100,
            ..Limits::default()
        };
        let text = format!("[{}]", vec!["1"; 200].join(","));
        let p = parse(&text, &limits);
        assert!(p.errors[0].message.contains("more than 100 values"));
    }
}
