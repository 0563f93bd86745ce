//! The row-field check: each `{{ field }}` of a prompt template must be a
//! field the rows will have when they reach that transform, i.e. a field of
//! the source file (its CSV header, or the keys of its first JSONL rows) or
//! one written by an earlier transform (`output_field`, `output_fields`,
//! each prefixed with `<query>_` by a multi-query transform).
//!
//! The runtime renders templates in strict mode, so such a field fails
//! every row; catching it here costs no LLM call. The check needs the
//! source file: when it is absent or cannot be read (yet), a note says the
//! check was skipped and why.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;

use super::Finding;
use super::locate::{Found, scalar_range};
use crate::config::{SourceConfig, TransformConfig};
use crate::diagnostic::Severity;
use crate::span::{LineIndex, Span};
use crate::suggest::{did_you_mean, list};
use crate::template;

/// JSONL rows read for their keys (fields present only in later rows are
/// rare, and reading the whole file would make validation as slow as the
/// file is large).
pub(crate) const JSONL_SAMPLE_ROWS: usize = 100;

/// Bytes read at most from the source (a header or the first rows).
const MAX_SAMPLE_BYTES: u64 = 8 * 1024 * 1024;

/// Why the source's fields could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unreadable {
    /// No file at the path.
    #[error("`{0}` does not exist (yet)")]
    Missing(String),
    /// A directory, a pipe, a device: not read ahead (reading a pipe would
    /// consume its rows).
    #[error("`{0}` is not a regular file")]
    NotAFile(String),
    /// Opening or reading failed.
    #[error("`{path}` cannot be read: {source}")]
    Io {
        /// The path as written.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An empty file, or one with blank lines only.
    #[error("`{0}` has no rows yet")]
    NoRows(String),
    /// A CSV file whose first line names no column.
    #[error("`{0}` has no CSV header row")]
    NoHeader(String),
    /// A CSV header that does not parse.
    #[error("the CSV header of `{path}` cannot be read: {message}")]
    BadHeader {
        /// The path as written.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// None of the first rows is a JSON object.
    #[error("none of the first {JSONL_SAMPLE_ROWS} lines of `{0}` is a JSON object")]
    NoObjects(String),
}

/// The fields of the source rows and where they were read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceFields {
    /// In first-seen order.
    pub names: Vec<String>,
    /// The path as written, for the notes.
    pub path: String,
    /// `its header` or `its first N rows`, for the notes.
    pub from: String,
}

/// Reads the fields of `source`, whose file is at `path` (`written` is the
/// path as written in the YAML, for messages).
pub(crate) fn source_fields(
    source: &SourceConfig,
    path: &Path,
    written: &str,
) -> Result<SourceFields, Unreadable> {
    let io = |source: std::io::Error| Unreadable::Io {
        path: written.to_string(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Unreadable::Missing(written.into()));
        }
        Err(e) => return Err(io(e)),
    };
    if !meta.is_file() {
        return Err(Unreadable::NotAFile(written.into()));
    }
    let file = File::open(path).map_err(io)?.take(MAX_SAMPLE_BYTES);
    match source {
        SourceConfig::Csv { delimiter, .. } => {
            // An invalid delimiter is reported by the rules; `,` keeps the
            // check going meanwhile.
            let d = match delimiter.as_bytes() {
                [b] if b.is_ascii() => *b,
                _ => b',',
            };
            // The csv reader drops a UTF-8 byte order mark, as at run time.
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(d)
                .has_headers(true)
                .from_reader(file);
            let headers = reader.headers().map_err(|e| {
                let message = e.to_string();
                match e.into_kind() {
                    csv::ErrorKind::Io(e) => io(e),
                    _ => Unreadable::BadHeader {
                        path: written.into(),
                        message,
                    },
                }
            })?;
            let names: Vec<String> = headers.iter().map(str::to_string).collect();
            if names.iter().all(String::is_empty) {
                return Err(if meta.len() == 0 {
                    Unreadable::NoRows(written.into())
                } else {
                    Unreadable::NoHeader(written.into())
                });
            }
            Ok(SourceFields {
                names,
                path: written.into(),
                from: "its header".into(),
            })
        }
        SourceConfig::Jsonl { .. } => {
            let mut reader = BufReader::new(file);
            let (mut names, mut seen) = (Vec::new(), HashSet::new());
            let (mut lines, mut objects) = (0usize, 0usize);
            let mut buf = Vec::new();
            let mut first = true;
            while lines < JSONL_SAMPLE_ROWS {
                buf.clear();
                if reader.read_until(b'\n', &mut buf).map_err(io)? == 0 {
                    break;
                }
                let mut text = buf.trim_ascii();
                if first {
                    // A byte order mark is skipped at run time too.
                    text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
                    text = text.trim_ascii();
                    first = false;
                }
                if text.is_empty() {
                    continue;
                }
                lines += 1;
                // Lines that are not objects fail at run time on their own;
                // they add no field.
                if let Ok(serde_json::Value::Object(row)) =
                    serde_json::from_slice::<serde_json::Value>(text)
                {
                    objects += 1;
                    for key in row.keys() {
                        if seen.insert(key.clone()) {
                            names.push(key.clone());
                        }
                    }
                }
            }
            match (lines, objects) {
                (0, _) => Err(Unreadable::NoRows(written.into())),
                (_, 0) => Err(Unreadable::NoObjects(written.into())),
                (1, _) => Ok(SourceFields {
                    names,
                    path: written.into(),
                    from: "its first row".into(),
                }),
                (n, _) => Ok(SourceFields {
                    names,
                    path: written.into(),
                    from: format!("its first {n} rows"),
                }),
            }
        }
    }
}

/// The fields a transform adds to its rows, or `None` when they cannot be
/// known (a JSON reply without `output_fields` adds whatever keys the model
/// returns; with `json_schema`, the schema's properties). Mirrors the
/// runtime's reply mapping.
pub(crate) fn output_fields(t: &TransformConfig) -> Option<Vec<String>> {
    let fields = t.prompt().reply_fields()?;
    match t.queries() {
        None => Some(fields),
        Some(q) => {
            let names = q.query_names()?;
            Some(
                names
                    .iter()
                    .flat_map(|n| fields.iter().map(move |f| format!("{n}_{f}")))
                    .collect(),
            )
        }
    }
}

/// One transform to check: its typed config and its template's node.
pub(crate) struct Checked<'n> {
    /// The transform's config.
    pub config: &'n TransformConfig,
    /// The `prompt_template` value.
    pub template: Option<Found<'n>>,
}

/// The findings of the row-field check over `transforms` (in pipeline
/// order, `None` for one that could not be read), given how to read the
/// source fields (called only when a template reads a row field).
/// `source_span` locates the note when they cannot be read.
pub(crate) fn check(
    index: &LineIndex<'_>,
    transforms: &[Option<Checked<'_>>],
    fields: impl FnOnce() -> Result<SourceFields, Unreadable>,
    source_span: Span,
) -> Vec<Finding> {
    // The row fields each template reads, up to the first transform whose
    // outputs cannot be known: later templates may read anything it adds.
    let mut plans = Vec::new();
    for t in transforms {
        let Some(t) = t else { break };
        plans.push(t);
        if output_fields(t.config).is_none() {
            break;
        }
    }
    // Each template is analysed once, here.
    let analyses: Vec<template::Analysis> = plans
        .iter()
        .map(|t| template::analyze(&t.config.prompt().prompt_template))
        .collect();
    let uses_row_fields = analyses
        .iter()
        .any(|a| a.fields.iter().any(|f| f.segments.len() == 1));
    if !uses_row_fields {
        return Vec::new();
    }
    let fields = match fields() {
        Ok(f) => f,
        Err(why) => {
            let mut f = Finding::new(
                source_span,
                Severity::Note,
                format!("the fields used in prompt templates were not checked: {why}"),
            );
            f.help = Some(
                "validate again once the source file is in place to check every `{{ field }}` against its rows".into(),
            );
            return vec![f];
        }
    };
    let mut findings = Vec::new();
    let mut known: Vec<String> = fields.names.clone();
    // The same names, for lookups: a long chain adds a field per transform.
    let mut is_known: std::collections::HashSet<String> = known.iter().cloned().collect();
    let mut added: Vec<String> = Vec::new();
    for (t, analysis) in plans.into_iter().zip(analyses) {
        let text = &t.config.prompt().prompt_template;
        let dimensions = t.config.queries().map(|q| &q.0);
        if let Some(found) = t.template {
            for field in analysis.fields {
                let [name] = field.segments.as_slice() else {
                    continue; // dotted: query dimensions, checked by the rules
                };
                if is_known.contains(name.as_str())
                    || dimensions.is_some_and(|d| d.contains_key(name))
                {
                    continue;
                }
                // `{{#if x}}` on a missing field renders its `else` (strict
                // mode spares helpers), so it is legitimate for optional
                // fields; a missing field in `{{ x }}` fails every row.
                let in_block = text[field.range.clone()]
                    .trim_start_matches('{')
                    .trim_start_matches('~')
                    .trim_start()
                    .starts_with('#');
                let span = scalar_range(index, found.node, field.range.clone());
                let mut f = if in_block {
                    Finding::new(
                        span,
                        Severity::Warning,
                        format!("no row has the field `{name}`, so this condition is always false"),
                    )
                } else {
                    Finding::new(
                        span,
                        Severity::Error,
                        format!("unknown field `{name}` in `prompt_template`"),
                    )
                };
                f.help = Some(match did_you_mean(name, known.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "use one of the fields listed below, or add the field to the source".into()
                    }
                });
                f.notes.push(format!(
                    "the rows of `{}` have {} (read from {})",
                    fields.path,
                    list(&fields.names),
                    fields.from
                ));
                if !added.is_empty() {
                    f.notes
                        .push(format!("earlier transforms add {}", list(&added)));
                }
                findings.push(f);
            }
        }
        for out in output_fields(t.config).unwrap_or_default() {
            if is_known.insert(out.clone()) {
                known.push(out.clone());
                added.push(out);
            }
        }
    }
    findings
}
