//! `elspeth validate FILE...`: check pipeline files, report every problem.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use elspeth_schema::diagnostic::{self, Diagnostic};
use elspeth_schema::{ValidateOptions, Validated, validate_file};

use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

const EXAMPLES: &str = "\
Examples:
  elspeth validate pipelines/triage.yaml
  elspeth validate pipelines/*.yaml --format json
  AZURE_OPENAI_KEY=... elspeth validate --resolve-env pipelines/triage.yaml

Exit codes: 0 every file is valid (warnings allowed), 1 a file is invalid,
2 usage or I/O error (a missing file, a directory).";

/// Check pipeline YAML files against the schema and the semantic rules.
///
/// Every problem of every file is reported, in file order, rustc-style:
/// `file:line:col`, the source line with a caret, and a help line.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ValidateArgs {
    /// Pipeline YAML files to check.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// How to print problems: `human` (rustc-style, on stderr) or `json`
    /// (an array of {file, line, column, severity, message, help} on stdout).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Also resolve `${VAR}` references against the environment and report
    /// each variable that is not set. Values are checked, never printed.
    #[arg(long)]
    resolve_env: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
}

/// Runs `elspeth validate`.
pub(crate) fn run(args: ValidateArgs) -> ExitCode {
    let options = ValidateOptions {
        resolve_env: args.resolve_env,
        ..ValidateOptions::default()
    };
    let results: Vec<Validated> = args
        .files
        .iter()
        .map(|f| validate_file(f, &options))
        .collect();
    let io_error = results.iter().any(Validated::is_io_error);
    let invalid = results.iter().filter(|r| r.has_errors()).count();
    match args.format {
        Format::Json => {
            let all: Vec<Diagnostic> = results
                .iter()
                .flat_map(|r| r.diagnostics.iter().cloned())
                .collect();
            let json = diagnostic::to_json(&all);
            let mut stdout = std::io::stdout().lock();
            let text = serde_json::to_string_pretty(&json).unwrap_or_else(|_| "[]".into());
            let _ = writeln!(stdout, "{text}");
        }
        Format::Human => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let mut stderr = std::io::stderr().lock();
            let mut first = true;
            for r in &results {
                if r.diagnostics.is_empty() {
                    continue;
                }
                if !first {
                    let _ = writeln!(stderr);
                }
                first = false;
                let _ = write!(stderr, "{}", r.render_with(color));
            }
            let unreadable = results.iter().filter(|r| r.is_io_error()).count();
            let errors: usize = results
                .iter()
                .filter(|r| !r.is_io_error())
                .map(|r| r.errors().count())
                .sum();
            let warnings: usize = results.iter().map(|r| r.warnings().count()).sum();
            let files = results.len();
            if invalid == 0 {
                let extra = if warnings > 0 {
                    format!(" ({})", plural(warnings, "warning"))
                } else {
                    String::new()
                };
                let all = if files == 1 { "" } else { "all " };
                let _ = writeln!(
                    std::io::stdout(),
                    "{} {all}valid{extra}",
                    plural(files, "file")
                );
            } else {
                if !first {
                    let _ = writeln!(stderr);
                }
                let mut parts = Vec::new();
                if unreadable > 0 {
                    parts.push(format!(
                        "{unreadable} of {} could not be read",
                        plural(files, "file")
                    ));
                }
                let bad = invalid - unreadable;
                if bad > 0 {
                    parts.push(format!(
                        "{bad} of {} invalid ({})",
                        plural(files, "file"),
                        counts(errors, warnings)
                    ));
                }
                let _ = writeln!(stderr, "error: {}", parts.join("; "));
            }
        }
    }
    if io_error {
        ExitCode::from(EXIT_USAGE)
    } else if invalid > 0 {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::from(EXIT_OK)
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn counts(errors: usize, warnings: usize) -> String {
    match (errors, warnings) {
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}
