//! Secrets that would end up in generated code: a literal secret, or a
//! `${VAR:-default}` secret with a non-empty default. Both are build errors,
//! located in the document the validator loaded (no second parse) and
//! rendered with the secret's value masked.

use std::ops::Range;

use elspeth_schema::diagnostic::{Diagnostic, RenderOptions, Severity};
use elspeth_schema::validate::Validated;

use crate::to_rust::{SecretIssue, SecretIssueKind, display_path};

/// A valid file's diagnostics after the secret check.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The validator's diagnostics plus the secret errors, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Byte ranges of the flagged secrets' values, masked in snippets.
    pub redact: Vec<Range<usize>>,
}

impl Checked {
    /// Whether the file cannot be compiled in.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Every diagnostic rendered rustc-style, the secrets masked.
    pub fn render(&self, source: &str) -> String {
        let options = RenderOptions {
            color: false,
            redact: self.redact.clone(),
        };
        self.diagnostics
            .iter()
            .map(|d| d.render(source, &options))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The diagnostics of a valid file plus one error per secret that would be
/// compiled in. A literal secret the validator warned about becomes that
/// warning, promoted to an error.
pub fn check(label: &str, validated: &Validated, issues: &[SecretIssue]) -> Checked {
    let mut diagnostics = validated.diagnostics.clone();
    let mut redact = Vec::new();
    if issues.is_empty() {
        return Checked {
            diagnostics,
            redact,
        };
    }
    for issue in issues {
        let field = format!("`{}`", display_path(&issue.path));
        let Some(span) = validated.span_at(&issue.path) else {
            let mut d = Diagnostic::whole_file(label, secret_message(&field, issue.kind));
            d.help = Some(secret_help(issue.kind).into());
            diagnostics.push(d);
            continue;
        };
        redact.push(span.range());
        let start = (span.start.line, span.start.column);
        let promoted = diagnostics.iter_mut().find(|d| {
            issue.kind == SecretIssueKind::Literal
                && d.severity == Severity::Warning
                && (d.line, d.column) == start
        });
        match promoted {
            Some(d) => {
                d.severity = Severity::Error;
                d.notes.push(
                    "generated code never holds a secret value, so the build stops here".into(),
                );
            }
            None => {
                let d = Diagnostic::at(
                    label,
                    span,
                    Severity::Error,
                    secret_message(&field, issue.kind),
                )
                .with_help(secret_help(issue.kind));
                diagnostics.push(d);
            }
        }
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Checked {
        diagnostics,
        redact,
    }
}

fn secret_message(field: &str, kind: SecretIssueKind) -> String {
    match kind {
        SecretIssueKind::Literal => {
            format!("{field} holds a literal secret, which would be compiled into the binary")
        }
        SecretIssueKind::Default => format!(
            "{field} gives its secret a default value, which would be compiled into the binary"
        ),
    }
}

fn secret_help(kind: SecretIssueKind) -> &'static str {
    match kind {
        SecretIssueKind::Literal => {
            "write a `${VAR}` reference and set the variable where the pipeline runs"
        }
        SecretIssueKind::Default => {
            "remove the `:-...` default (write `${VAR}`) and set the variable where the pipeline runs"
        }
    }
}
