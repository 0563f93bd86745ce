//! What one run of the build step found and did, and the `cargo::`
//! directives that tell Cargo about it.
//!
//! Errors go out as `cargo::error=` lines, one per rendered line, and the
//! build script returns normally: Cargo then shows each line as
//! `error: <crate>@<version>: <line>` and stops with "build script logged
//! errors" (exiting non-zero or panicking would bury the report under
//! "failed to run custom build command").

use std::path::PathBuf;

/// The outcome of [`Build::run`](crate::Build::run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    rerun: Vec<String>,
    errors: Vec<String>,
    warnings: Vec<String>,
    generated: Option<(PathBuf, Vec<String>)>,
}

impl Report {
    /// Whether the build must fail.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Rendered error reports (rustc-style, one block per file or problem).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Rendered warnings of valid files.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Paths (files and folders) whose change reruns the build script.
    pub fn rerun_paths(&self) -> &[String] {
        &self.rerun
    }

    /// The generated file and the pipelines in it, when generation ran.
    pub fn generated(&self) -> Option<(&PathBuf, &[String])> {
        self.generated.as_ref().map(|(p, n)| (p, n.as_slice()))
    }

    /// The `cargo::` directives, one per line: rerun triggers, then every
    /// error line (or warning line).
    pub fn directives(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .rerun
            .iter()
            .map(|p| format!("cargo::rerun-if-changed={p}"))
            .collect();
        for block in &self.warnings {
            out.extend(block.lines().map(|l| format!("cargo::warning={l}")));
        }
        for block in &self.errors {
            out.extend(block.lines().map(|l| format!("cargo::error={l}")));
        }
        if self.has_errors() {
            let n: usize = self
                .errors
                .iter()
                .map(|block| block.lines().filter(|l| l.starts_with("error")).count())
                .sum::<usize>()
                .max(1);
            let (errors, them) = if n == 1 {
                ("1 error".to_string(), "it")
            } else {
                (format!("{n} errors"), "them")
            };
            out.push(format!(
                "cargo::error=elspeth: {errors} in the pipeline YAML above; fix {them} and build again (`elspeth validate <file>` shows the same report)"
            ));
        }
        out
    }

    pub(crate) fn rerun(&mut self, path: &str) {
        if !self.rerun.iter().any(|p| p == path) {
            self.rerun.push(path.to_string());
        }
    }

    /// A file's rendered diagnostics; errors when `has_errors`, else warnings.
    pub(crate) fn file_problems(&mut self, rendered: &str, has_errors: bool) {
        let text = rendered.trim_end();
        if text.is_empty() {
            return;
        }
        if has_errors {
            self.errors.push(text.to_string());
        } else {
            self.warnings.push(text.to_string());
        }
    }

    pub(crate) fn fail_plain(&mut self, message: impl Into<String>) {
        self.errors.push(format!("error: {}", message.into()));
    }

    pub(crate) fn warn_plain(&mut self, message: impl Into<String>) {
        self.warnings.push(format!("warning: {}", message.into()));
    }

    pub(crate) fn set_generated(&mut self, path: PathBuf, pipelines: Vec<String>) {
        self.generated = Some((path, pipelines));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_one_per_line() {
        let mut r = Report::default();
        r.rerun("pipelines");
        r.rerun("pipelines/a.yaml");
        r.rerun("pipelines");
        assert!(!r.has_errors());
        assert_eq!(
            r.directives(),
            [
                "cargo::rerun-if-changed=pipelines",
                "cargo::rerun-if-changed=pipelines/a.yaml"
            ]
        );
        r.file_problems("", true);
        assert!(!r.has_errors(), "nothing rendered, nothing reported");
        r.file_problems("error: bad\n --> a.yaml:1:1\n", true);
        r.fail_plain("other");
        let d = r.directives();
        assert_eq!(
            &d[2..5],
            [
                "cargo::error=error: bad",
                "cargo::error= --> a.yaml:1:1",
                "cargo::error=error: other"
            ]
        );
        assert!(
            d[5].starts_with("cargo::error=elspeth: 2 errors in the pipeline YAML above; fix them")
        );
    }
}
