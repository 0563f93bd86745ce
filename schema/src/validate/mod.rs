//! Validation of a pipeline file: every problem, located, in one pass.
//!
//! Phases, each reporting *all* its problems:
//! 1. file checks (exists, not a directory, size limit, UTF-8, not empty);
//! 2. YAML loading ([`crate::yaml`]): syntax errors, duplicate keys,
//!    nesting and alias limits;
//! 3. `${VAR}` references in the fields that expand them: syntax, and with
//!    [`ValidateOptions::resolve_env`] whether each variable is set; literal
//!    secrets are warned about (and masked in snippets);
//! 4. the generated JSON Schema (draft-07, compiled once per process), with
//!    each error translated and pointed at the offending key or value;
//! 5. semantic rules on the typed config, per transform, so one bad
//!    transform does not hide problems in the others; among them, with a
//!    base folder ([`ValidateOptions::base_dir`]), that each `{{ field }}`
//!    of a prompt template is a field of the source rows (read from the
//!    source file) or of an earlier transform.
//!
//! The same problem is never reported twice.
//!
//! ```
//! use elspeth_schema::validate::{validate_str, ValidateOptions};
//! let yaml = "\
//! name: triage
//! source: { plugin: jsonl, path: in.jsonl }
//! transforms:
//!   - plugin: openrouter_llm
//!     options:
//!       model: openai/gpt-4o-mini
//!       api_key: ${OPENROUTER_API_KEY}
//!       prompt_template: 'Classify: {{ text }}'
//!       tracing:
//!         provider: langfuse
//!         public_key: ${LANGFUSE_PUBLIC_KEY}
//! sink: { plugin: jsonl, path: out.jsonl }
//! ";
//! let v = validate_str("triage.yaml", yaml, &ValidateOptions::default());
//! assert!(v.has_errors());
//! assert_eq!(v.diagnostics[0].message,
//!     "langfuse tracing requires secret_key. Use ${LANGFUSE_SECRET_KEY} in YAML.");
//! assert_eq!((v.diagnostics[0].line, v.diagnostics[0].column), (10, 9));
//! assert!(v.render().contains("--> triage.yaml:10:9"));
//! ```

mod env;
mod fields;
mod instance;
pub(crate) mod locate;
pub(crate) mod nav;
mod rules;
mod schema;

use std::fmt;
use std::io::IsTerminal as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize as _;

use crate::config::{Env, PipelineConfig, ProcessEnv};
use crate::diagnostic::{Diagnostic, RenderOptions, Severity};
use crate::span::{LineIndex, Span};
use crate::yaml::{self, Limits, Node};

pub use locate::Seg;

/// How to validate.
#[derive(Clone)]
pub struct ValidateOptions {
    /// Also resolve every `${VAR}` reference (without a default) against
    /// [`ValidateOptions::env`] and report each variable that is not set.
    /// Resolved values are only checked (e.g. that an endpoint is a URL),
    /// never printed.
    pub resolve_env: bool,
    /// Where variables are looked up when `resolve_env` is set.
    pub env: Arc<dyn Env + Send + Sync>,
    /// Size, depth and alias limits.
    pub limits: Limits,
    /// The folder a relative source `path` resolves against, for the check
    /// that prompt templates name fields the source rows have. `None`:
    /// [`validate_file`] uses the pipeline file's folder (as the runtime
    /// does) and [`validate_str`], which has no file, skips the check.
    pub base_dir: Option<PathBuf>,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        Self {
            resolve_env: false,
            env: Arc::new(ProcessEnv),
            limits: Limits::default(),
            base_dir: None,
        }
    }
}

impl fmt::Debug for ValidateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateOptions")
            .field("resolve_env", &self.resolve_env)
            .field("limits", &self.limits)
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

/// The outcome of validating one file.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The typed config; `Some` only when there is no error (warnings allowed).
    pub config: Option<PipelineConfig>,
    /// Every problem, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// The file's text (lossily decoded when it is not UTF-8; empty when it
    /// could not be read), for rendering snippets.
    pub source: String,
    /// The loaded YAML document, with the span of every node, when the
    /// file could be parsed.
    document: Option<Node>,
    /// Byte ranges of literal secrets in `source`, masked in snippets.
    redact: Vec<Range<usize>>,
    /// The file could not be read (missing, a directory, I/O failure).
    io_error: bool,
    /// An output (sink, `error_path`) is the same file as an input.
    path_clash: bool,
}

impl Validated {
    /// The loaded YAML document (every node with its span in
    /// [`Validated::source`]), when the file could be parsed. Tools that
    /// report on the typed config (the build step) locate values here
    /// instead of parsing the file again.
    pub fn document(&self) -> Option<&Node> {
        self.document.as_ref()
    }

    /// The span of the value at `path` (e.g. `transforms`, `0`, `options`,
    /// `api_key`) in [`Validated::source`], when the document has it.
    ///
    /// ```
    /// use elspeth_schema::validate::{Seg, ValidateOptions, validate_str};
    /// let v = validate_str("p.yaml", "name: p\nsink: { path: out.jsonl }\n", &ValidateOptions::default());
    /// let span = v.span_at(&[Seg::Key("sink".into()), Seg::Key("path".into())]).unwrap();
    /// assert_eq!((span.start.line, span.start.column), (2, 15));
    /// assert!(v.span_at(&[Seg::Key("source".into())]).is_none());
    /// ```
    pub fn span_at(&self, path: &[Seg]) -> Option<Span> {
        locate::find(self.document.as_ref()?, path).map(|found| found.node.span)
    }

    /// Whether any diagnostic is an error (the file is invalid).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Whether the file could not be read at all (missing file, a
    /// directory, a read failure). The CLI exits with code 2 for these.
    pub fn is_io_error(&self) -> bool {
        self.io_error
    }

    /// Whether an error says that an output (the sink, `error_path`) is the
    /// same file as an input (the source, the pipeline file) or as the
    /// other output. `elspeth run` exits with code 2 for these: running
    /// would destroy a file.
    pub fn has_path_clash(&self) -> bool {
        self.path_clash
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// The notes: what was not checked, and why (neither errors nor
    /// warnings).
    pub fn notes(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Note)
    }

    /// Renders every diagnostic rustc-style, without colour, separated by
    /// blank lines. Empty when there is nothing to report.
    pub fn render(&self) -> String {
        self.render_with(false)
    }

    /// Like [`Validated::render`], with ANSI colours when `color` is set.
    pub fn render_with(&self, color: bool) -> String {
        let index = LineIndex::new(&self.source);
        let options = RenderOptions {
            color,
            redact: self.redact.clone(),
        };
        self.diagnostics
            .iter()
            .map(|d| d.render_with_index(&index, &options))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Renders with colours when stderr is a terminal and `NO_COLOR` is
    /// not set.
    pub fn render_for_stderr(&self) -> String {
        self.render_with(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
    }
}

/// Validates pipeline YAML `text`; `file_label` names it in diagnostics.
///
/// With no file behind the text, the source and sink paths are compared
/// (by [file identity](crate::paths)) relative to the current folder, and
/// the sink cannot be checked against the pipeline file:
/// [`validate_file`] does both against the file's folder.
pub fn validate_str(file_label: &str, text: &str, opts: &ValidateOptions) -> Validated {
    validate_text(file_label, text, opts, None)
}

/// [`validate_str`] for the text of the pipeline file at `file`, when known.
fn validate_text(
    file_label: &str,
    text: &str,
    opts: &ValidateOptions,
    file: Option<&Path>,
) -> Validated {
    let mut out = validate_parsed(file_label, text, opts, file);
    // Secrets are masked in every snippet, whatever else is wrong: the raw
    // text is scanned whether or not it parsed (a duplicate key's second
    // value, an unclosed quote). Only snippets need it, so a file without
    // diagnostics skips the scan.
    if !out.diagnostics.is_empty() {
        let lexical = env::lexical_secret_ranges(&out.source);
        out.redact.extend(lexical);
    }
    out
}

/// Parses and checks the text, every phase.
fn validate_parsed(
    file_label: &str,
    text: &str,
    opts: &ValidateOptions,
    file: Option<&Path>,
) -> Validated {
    // A UTF-8 byte order mark is invisible in editors: drop it so columns
    // on the first line match what the user sees.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Validated {
        config: None,
        diagnostics: Vec::new(),
        source: text.to_string(),
        document: None,
        redact: Vec::new(),
        io_error: false,
        path_clash: false,
    };
    if text.len() > opts.limits.max_file_bytes {
        out.diagnostics.push(too_large(
            file_label,
            text.len() as u64,
            opts.limits.max_file_bytes,
        ));
        return out;
    }
    let index = LineIndex::new(text);
    let parsed = yaml::parse_indexed(&index, &opts.limits);
    let mut findings: Vec<Finding> = parsed
        .errors
        .into_iter()
        .map(|e| Finding {
            span: e.span,
            severity: Severity::Error,
            message: e.message,
            help: e.help,
            notes: e.notes,
        })
        .collect();
    let Some(root) = parsed.root else {
        if findings.is_empty() {
            let start = index.pos(0);
            findings.push(Finding {
                span: Span::point(start),
                severity: Severity::Error,
                message: "empty pipeline file".into(),
                help: Some(
                    "a pipeline needs `name`, `source`, `transforms` and `sink`; see examples/pipelines/ or run `elspeth schema`".into(),
                ),
                notes: Vec::new(),
            });
        }
        out.diagnostics = to_diagnostics(file_label, findings);
        return out;
    };
    let mut phase = Phase {
        root: &root,
        index: &index,
        findings,
        bad_paths: Vec::new(),
        redact: Vec::new(),
        path_clash: false,
    };
    env::check(&mut phase, opts);
    schema::check(&mut phase);
    let typed = rules::check(&mut phase, opts, file);
    let has_errors = phase.findings.iter().any(|f| f.severity == Severity::Error);
    if !has_errors {
        match typed.map_or_else(|| PipelineConfig::deserialize(&root).map_err(|_| ()), Ok) {
            Ok(config) => out.config = Some(config),
            Err(_) => {
                // The schema and the types disagree: a bug, but say where.
                let span = root.span;
                phase.push(Finding::new(
                    span,
                    Severity::Error,
                    "the file matches the schema but could not be read as a pipeline (please report this)".into(),
                ));
            }
        }
    }
    out.redact.extend(phase.redact);
    out.path_clash = phase.path_clash;
    out.diagnostics = to_diagnostics(file_label, phase.findings);
    out.document = Some(root);
    out
}

/// Reads and validates the pipeline file at `path`.
///
/// A missing file, a directory or a read failure gives one diagnostic and
/// [`Validated::is_io_error`]; a file over the size limit is rejected before
/// it is read; non-UTF-8 content is reported at its first bad byte.
pub fn validate_file(path: &Path, opts: &ValidateOptions) -> Validated {
    let label = path.display().to_string();
    let io_failure = |message: String, help: Option<&str>| {
        let mut d = Diagnostic::whole_file(&label, message);
        d.help = help.map(str::to_string);
        Validated {
            config: None,
            diagnostics: vec![d],
            source: String::new(),
            document: None,
            redact: Vec::new(),
            io_error: true,
            path_clash: false,
        }
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return io_failure(
                format!("cannot read `{label}`: file not found"),
                Some("check the path; it is relative to the current directory"),
            );
        }
        Err(e) => return io_failure(format!("cannot read `{label}`: {e}"), None),
    };
    if meta.is_dir() {
        return io_failure(
            format!("`{label}` is a directory, not a pipeline file"),
            Some("pass the YAML files themselves, e.g. `pipelines/*.yaml`"),
        );
    }
    if meta.len() > opts.limits.max_file_bytes as u64 {
        return Validated {
            config: None,
            diagnostics: vec![too_large(&label, meta.len(), opts.limits.max_file_bytes)],
            source: String::new(),
            document: None,
            redact: Vec::new(),
            io_error: false,
            path_clash: false,
        };
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return io_failure(format!("cannot read `{label}`: {e}"), None),
    };
    match String::from_utf8(bytes) {
        Ok(text) if opts.base_dir.is_none() => {
            // Relative source paths resolve against the pipeline's folder.
            let folder = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let opts = ValidateOptions {
                base_dir: Some(folder),
                ..opts.clone()
            };
            validate_text(&label, &text, &opts, Some(path))
        }
        Ok(text) => validate_text(&label, &text, opts, Some(path)),
        Err(e) => {
            let bytes = e.into_bytes();
            let good =
                std::str::from_utf8(&bytes).map_or_else(|e| e.valid_up_to(), |_| bytes.len());
            let source = String::from_utf8_lossy(&bytes).into_owned();
            let prefix = std::str::from_utf8(&bytes[..good]).unwrap_or_default();
            let pos = LineIndex::new(prefix).pos(good);
            let lossy_index = LineIndex::new(&source);
            let at = lossy_index.pos_at(pos.line, pos.column - 1);
            let end = lossy_index.pos(at.offset + '\u{FFFD}'.len_utf8());
            let d = Diagnostic::at(
                &label,
                Span::new(at, end),
                Severity::Error,
                format!("the file is not valid UTF-8 (byte 0x{:02x})", bytes[good]),
            )
            .with_help("save the file as UTF-8");
            Validated {
                config: None,
                diagnostics: vec![d],
                source,
                document: None,
                redact: Vec::new(),
                io_error: false,
                path_clash: false,
            }
        }
    }
}

fn too_large(label: &str, len: u64, max: usize) -> Diagnostic {
    Diagnostic::whole_file(
        label,
        format!(
            "the file is too large: {} (the limit is {})",
            human_size(len),
            human_size(max as u64)
        ),
    )
    .with_help("a pipeline file describes the pipeline; keep rows in the source file it reads")
}

fn human_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / MIB)
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}

/// One problem, before it gets a file name.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub span: Span,
    pub severity: Severity,
    pub message: String,
    pub help: Option<String>,
    pub notes: Vec<String>,
}

impl Finding {
    pub(crate) fn new(span: Span, severity: Severity, message: String) -> Self {
        Self {
            span,
            severity,
            message,
            help: None,
            notes: Vec::new(),
        }
    }
}

/// State shared by the phases of one validation.
pub(crate) struct Phase<'a> {
    pub root: &'a Node,
    pub index: &'a LineIndex<'a>,
    pub findings: Vec<Finding>,
    /// Instance paths the schema phase found problems in.
    pub bad_paths: Vec<Vec<Seg>>,
    /// Byte ranges of literal secrets.
    pub redact: Vec<Range<usize>>,
    /// The rules found an output that is the same file as an input.
    pub path_clash: bool,
}

impl Phase<'_> {
    pub(crate) fn push(&mut self, finding: Finding) -> &mut Finding {
        self.findings.push(finding);
        self.findings.last_mut().expect("just pushed")
    }

    /// Whether the schema phase found no problem at or under `prefix`.
    pub(crate) fn is_clean(&self, prefix: &[Seg]) -> bool {
        !self.bad_paths.iter().any(|p| p.starts_with(prefix))
    }
}

/// Dedupes (same place, same message) and sorts by position, stably.
fn to_diagnostics(file: &str, findings: Vec<Finding>) -> Vec<Diagnostic> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<(Span, Diagnostic)> = Vec::with_capacity(findings.len());
    for f in findings {
        if !seen.insert((f.span, f.message.clone())) {
            continue;
        }
        let mut d = Diagnostic::at(file, f.span, f.severity, f.message);
        d.help = f.help;
        d.notes = f.notes;
        out.push((f.span, d));
    }
    out.sort_by_key(|(span, _)| (span.start.offset, span.end.offset));
    out.into_iter().map(|(_, d)| d).collect()
}
