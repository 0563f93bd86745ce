//! Diagnostics: one problem found in a pipeline file, located at
//! `file:line:column`, and its rustc-style and JSON renderings.
//!
//! ```
//! use elspeth_schema::diagnostic::{Diagnostic, RenderOptions, Severity};
//! let source = "name: demo\nsource: 7\n";
//! let d = Diagnostic {
//!     file: "demo.yaml".into(),
//!     line: 2, column: 9, end_line: 2, end_column: 10,
//!     severity: Severity::Error,
//!     message: "invalid type for `source`: expected a mapping, found integer `7`".into(),
//!     help: Some("write `source: { plugin: jsonl, path: rows.jsonl }`".into()),
//!     notes: vec![],
//! };
//! assert_eq!(d.render(source, &RenderOptions::default()), "\
//! error: invalid type for `source`: expected a mapping, found integer `7`
//!  --> demo.yaml:2:9
//!   |
//! 2 | source: 7
//!   |         ^
//!   |
//!   = help: write `source: { plugin: jsonl, path: rows.jsonl }`
//! ");
//! ```

use std::fmt::Write as _;
use std::ops::Range;

use serde::Serialize;

use crate::span::{LineIndex, Span};

/// How serious a problem is. Only errors make a file invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is invalid.
    Error,
    /// The file is valid, but probably not what was meant.
    Warning,
    /// Information: something was not checked, and why. Not a problem.
    Note,
}

impl Severity {
    /// `error`, `warning` or `note`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Note => "note",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in one file.
///
/// `line`/`column` (1-based, columns in characters) locate the start of the
/// offending key or value and `end_line`/`end_column` the position just after
/// it. A problem with the file as a whole (it cannot be read) has `line` 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file, as given by the user.
    pub file: String,
    /// Start line, 1-based; 0 when the problem has no location in the file.
    pub line: usize,
    /// Start column, 1-based, in characters.
    pub column: usize,
    /// End line (inclusive), 1-based.
    pub end_line: usize,
    /// End column (exclusive), 1-based, in characters.
    pub end_column: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in one line.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Extra context (e.g. the valid values).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// How to render diagnostics for people.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Use ANSI colours (for a terminal).
    pub color: bool,
    /// Byte ranges of the source to mask with `*` in snippets (literal secrets).
    pub redact: Vec<Range<usize>>,
}

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

const BOLD_RED: &str = "1;31";
const BOLD_YELLOW: &str = "1;33";
const BOLD_BLUE: &str = "1;34";
const BOLD: &str = "1";

impl Diagnostic {
    /// A diagnostic covering `span` of `file`.
    pub fn at(
        file: impl Into<String>,
        span: Span,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line: span.start.line,
            column: span.start.column,
            end_line: span.end.line,
            end_column: span.end.column,
            severity,
            message: message.into(),
            help: None,
            notes: Vec::new(),
        }
    }

    /// A diagnostic about the whole file (no location).
    pub fn whole_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: 0,
            column: 0,
            end_line: 0,
            end_column: 0,
            severity: Severity::Error,
            message: message.into(),
            help: None,
            notes: Vec::new(),
        }
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Whether this is an error (not a warning or a note).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:column`, or just `file` for a whole-file problem.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}:{}", self.file, self.line, self.column)
        }
    }

    /// Renders the diagnostic like rustc: the message, the location, the
    /// source line with a caret underline of the span, then help and notes.
    /// `source` is the text of `self.file`. Ends with a newline.
    pub fn render(&self, source: &str, options: &RenderOptions) -> String {
        self.render_with_index(&LineIndex::new(source), options)
    }

    /// Like [`Diagnostic::render`], reusing a [`LineIndex`] of the source.
    pub fn render_with_index(&self, index: &LineIndex<'_>, options: &RenderOptions) -> String {
        let style = Style { on: options.color };
        let (level_color, caret_color) = match self.severity {
            Severity::Error => (BOLD_RED, BOLD_RED),
            Severity::Warning => (BOLD_YELLOW, BOLD_YELLOW),
            Severity::Note => (BOLD, BOLD_BLUE),
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}{}",
            style.paint(level_color, self.severity.as_str()),
            style.paint(BOLD, &format!(": {}", self.message))
        );
        let line_text = (self.line > 0)
            .then(|| index.line_text(self.line))
            .flatten();
        let width = if line_text.is_some() {
            self.line.to_string().len()
        } else {
            1
        };
        let gutter = |s: &str| style.paint(BOLD_BLUE, s);
        let _ = writeln!(out, "{:width$}{} {}", "", gutter("-->"), self.location());
        if let Some(text) = line_text {
            let line_start = index.line_start(self.line).unwrap_or(0);
            let shown = redact_line(text, line_start, &options.redact);
            let (display, col_map) = expand_tabs(&shown);
            let start_col = self.column.max(1) - 1;
            let end_col = if self.end_line == self.line && self.end_column > self.column {
                self.end_column - 1
            } else if self.end_line > self.line {
                // Multi-line span: underline to the end of the first line.
                text.chars().count().max(start_col + 1)
            } else {
                start_col + 1
            };
            let from = col_map(start_col);
            let to = col_map(end_col).max(from + 1);
            let (display, from, to) = window(&display, from, to);
            let _ = writeln!(out, "{:width$} {}", "", gutter("|"));
            let _ = writeln!(
                out,
                "{} {} {}",
                gutter(&format!("{:>width$}", self.line)),
                gutter("|"),
                display
            );
            let _ = writeln!(
                out,
                "{:width$} {} {}{}",
                "",
                gutter("|"),
                " ".repeat(from),
                style.paint(caret_color, &"^".repeat(to - from))
            );
            if self.help.is_some() || !self.notes.is_empty() {
                let _ = writeln!(out, "{:width$} {}", "", gutter("|"));
            }
        }
        let footer = self
            .help
            .iter()
            .map(|h| ("help", h))
            .chain(self.notes.iter().map(|n| ("note", n)));
        for (label, text) in footer {
            let _ = writeln!(
                out,
                "{:width$} {} {}",
                "",
                gutter("="),
                indent_continuation(&format!("{}: {text}", style.paint(BOLD, label)), width)
            );
        }
        out
    }
}

/// Indents the lines after the first of a multi-line help or note so they
/// line up under its text (after `= help: ` / `= note: `).
fn indent_continuation(text: &str, width: usize) -> String {
    text.replace('\n', &format!("\n{:w$}", "", w = width + 9))
}

/// Replaces the characters of `line` that fall in a redacted byte range with `*`.
fn redact_line(line: &str, line_start: usize, redact: &[Range<usize>]) -> String {
    let line_end = line_start + line.len();
    let hits: Vec<&Range<usize>> = redact
        .iter()
        .filter(|r| r.start < line_end && r.end > line_start)
        .collect();
    if hits.is_empty() {
        return line.to_string();
    }
    line.char_indices()
        .map(|(i, c)| {
            let at = line_start + i;
            if hits.iter().any(|r| r.contains(&at)) {
                '*'
            } else {
                c
            }
        })
        .collect()
}

/// Longest source line shown in full; longer ones are cut around the span.
const MAX_LINE: usize = 120;

/// Cuts a long display line to a window around columns `from..to`
/// (marking the cuts with `...`); returns the text and the shifted columns.
fn window(display: &str, from: usize, to: usize) -> (String, usize, usize) {
    let chars: Vec<char> = display.chars().collect();
    if chars.len() <= MAX_LINE {
        return (display.to_string(), from, to);
    }
    let span = (to - from).min(MAX_LINE - 40);
    let start = from.saturating_sub(20).min(chars.len());
    let end = (from + span + 20).min(chars.len());
    let mut out = String::new();
    let mut shift = start;
    if start > 0 {
        out.push_str("...");
        shift = start.saturating_sub(3);
    }
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push_str("...");
    }
    (out, from - shift, from - shift + span.max(1))
}

/// Expands tabs to 4 spaces; returns the text and a map from character
/// column (0-based) to display column.
fn expand_tabs(line: &str) -> (String, impl Fn(usize) -> usize) {
    let mut display = String::with_capacity(line.len());
    let mut cols = Vec::with_capacity(line.len() + 1);
    let mut width = 0;
    for c in line.chars() {
        cols.push(width);
        if c == '\t' {
            display.push_str("    ");
            width += 4;
        } else {
            display.push(c);
            width += 1;
        }
    }
    cols.push(width);
    let last = width;
    let map = move |col: usize| match cols.get(col) {
        Some(&c) => c,
        None => last + (col + 1 - cols.len()),
    };
    (display, map)
}

/// Renders diagnostics as the JSON array printed by `elspeth validate --format json`:
/// `[{file, line, column, end_line, end_column, severity, message, help, notes?}]`.
pub fn to_json(diagnostics: &[Diagnostic]) -> serde_json::Value {
    serde_json::to_value(diagnostics).unwrap_or(serde_json::Value::Array(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(line: usize, col: usize, end_line: usize, end_col: usize) -> Diagnostic {
        Diagnostic {
            file: "pipelines/triage.yaml".into(),
            line,
            column: col,
            end_line,
            end_column: end_col,
            severity: Severity::Error,
            message: "azure_ai tracing requires connection_string. Use ${APPLICATIONINSIGHTS_CONNECTION_STRING} in YAML.".into(),
            help: Some("add `connection_string: ${APPLICATIONINSIGHTS_CONNECTION_STRING}`".into()),
            notes: vec![],
        }
    }

    #[test]
    fn renders_the_design_shape() {
        let mut source = String::new();
        for i in 1..14 {
            source.push_str(&format!("# line {i}\n"));
        }
        source.push_str("        provider: azure_ai\n");
        let got = diag(14, 9, 14, 27).render(&source, &RenderOptions::default());
        assert_eq!(
            got,
            "error: azure_ai tracing requires connection_string. Use ${APPLICATIONINSIGHTS_CONNECTION_STRING} in YAML.
  --> pipelines/triage.yaml:14:9
   |
14 |         provider: azure_ai
   |         ^^^^^^^^^^^^^^^^^^
   |
   = help: add `connection_string: ${APPLICATIONINSIGHTS_CONNECTION_STRING}`
"
        );
    }

    #[test]
    fn tabs_multiline_spans_redaction_and_whole_file() {
        let source = "a:\tsk-secret\nb: 2\n";
        let mut d = diag(1, 4, 2, 3);
        d.help = None;
        d.notes = vec!["first\nsecond".into()];
        let got = d.render(
            source,
            &RenderOptions {
                color: false,
                redact: std::iter::once(3..12).collect(),
            },
        );
        assert!(!got.contains("sk-secret"), "{got}");
        assert!(got.contains("1 | a:    *********\n"), "{got}");
        assert!(got.contains("  |       ^^^^^^^^^\n"), "{got}");
        assert!(got.contains("  = note: first\n          second\n"), "{got}");

        let whole = Diagnostic::whole_file("x.yaml", "cannot read `x.yaml`: not found");
        assert_eq!(
            whole.render("", &RenderOptions::default()),
            "error: cannot read `x.yaml`: not found\n --> x.yaml\n"
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_span() {
        let line = format!("key: {}NEEDLE{}", "a".repeat(500), "b".repeat(500));
        let col = line.find("NEEDLE").unwrap() + 1;
        let mut d = diag(1, col, 1, col + 6);
        d.help = None;
        let got = d.render(&line, &RenderOptions::default());
        let snippet = got.lines().nth(3).unwrap();
        let carets = got.lines().nth(4).unwrap();
        assert!(snippet.len() < 130, "{snippet}");
        assert!(
            snippet.starts_with("1 | ...") && snippet.ends_with("..."),
            "{snippet}"
        );
        let at = carets.find('^').unwrap();
        assert_eq!(&snippet[at..at + 6], "NEEDLE", "{got}");
        assert_eq!(carets.matches('^').count(), 6);
    }

    #[test]
    fn colour_only_when_asked() {
        let source = "        provider: azure_ai\n";
        let plain = diag(1, 9, 1, 27).render(source, &RenderOptions::default());
        assert!(!plain.contains('\x1b'));
        let color = diag(1, 9, 1, 27).render(
            source,
            &RenderOptions {
                color: true,
                redact: vec![],
            },
        );
        assert!(color.contains("\x1b[1;31merror\x1b[0m"));
    }

    #[test]
    fn json_shape() {
        let v = to_json(&[diag(14, 9, 14, 27)]);
        assert_eq!(v[0]["file"], "pipelines/triage.yaml");
        assert_eq!(v[0]["line"], 14);
        assert_eq!(v[0]["column"], 9);
        assert_eq!(v[0]["severity"], "error");
        assert!(v[0]["help"].is_string());
        assert!(v[0].get("notes").is_none());
    }
}
