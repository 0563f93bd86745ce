//! The elspeth build step: validates a crate's pipeline YAML files and
//! generates typed Rust for them, from the crate's `build.rs`.
//!
//! ```no_run
//! // build.rs, in `fn main()`:
//! elspeth_codegen::Build::new().pipelines("pipelines").compile();
//! ```
//! ```ignore
//! // src/lib.rs (or main.rs)
//! elspeth::include_pipelines!();
//! let config = pipelines::ticket_triage::config();
//! ```
//!
//! Every file is validated with the same validator as `elspeth validate`.
//! When any is invalid, every problem of every file is printed rustc-style
//! (`file:line:col` relative to the crate root, snippet, help) as
//! `cargo::error=` lines and `cargo build` fails with "build script logged
//! errors"; nothing else is printed for valid files. A secret written as a
//! literal, or a `${VAR:-default}` secret with a default, is a build error:
//! generated code holds only `${VAR}` references, resolved at run time, so no
//! secret value reaches `OUT_DIR` or the binary.
//!
//! The generated file (`$OUT_DIR/elspeth_pipelines.rs`) has a `pipelines`
//! module with, per pipeline, a module named after the pipeline's `name` in
//! snake case holding `NAME`, `SOURCE_FILE`, `SOURCE_DIR`,
//! `config() -> elspeth::config::PipelineConfig` (the values written out as
//! Rust, no parsing at run time) and
//! `pipeline() -> elspeth::pipeline::Pipeline` (ready to run, relative paths
//! resolved against `SOURCE_DIR`); plus `pipelines::NAMES` and
//! `pipelines::config(name)`.

pub mod generate;
pub mod names;
pub mod report;
pub mod secrets;
pub mod to_rust;

use std::path::{Component, Path, PathBuf};

use elspeth_schema::config::PipelineConfig;
use elspeth_schema::validate::{ValidateOptions, Validated, validate_file};
use proc_macro2::TokenStream;
use quote::quote;

use crate::generate::PipelineCode;
use crate::report::Report;
use crate::to_rust::{Cx, ToRust};

/// Name of the generated file inside `OUT_DIR` (what
/// `elspeth::include_pipelines!()` includes).
pub const GENERATED_FILE: &str = "elspeth_pipelines.rs";

/// Configures and runs the build step. See the crate docs.
#[derive(Debug, Clone, Default)]
pub struct Build {
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
    out_dir: Option<PathBuf>,
    crate_root: Option<PathBuf>,
    krate: Option<String>,
}

impl Build {
    /// A build with no pipelines yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every `*.yaml` / `*.yml` file directly inside `dir` (relative to
    /// the crate root). Adding or removing a file there reruns the build.
    pub fn pipelines(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dirs.push(dir.into());
        self
    }

    /// Adds one pipeline file (relative to the crate root).
    pub fn pipeline(mut self, file: impl Into<PathBuf>) -> Self {
        self.files.push(file.into());
        self
    }

    /// Where the generated file goes. Default: `$OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The crate root that paths and diagnostics are relative to.
    /// Default: `$CARGO_MANIFEST_DIR`.
    pub fn crate_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.crate_root = Some(dir.into());
        self
    }

    /// Path of the elspeth facade in the generated code. Default
    /// `::elspeth`; a crate depending on it under another name sets it.
    pub fn crate_path(mut self, path: impl Into<String>) -> Self {
        self.krate = Some(path.into());
        self
    }

    /// Runs the build step from a build script: prints the `cargo::`
    /// directives (rerun triggers, and errors or warnings) and writes the
    /// generated file. Never panics and never exits: when a file is invalid
    /// the errors are printed as `cargo::error=` lines, which fail the build.
    pub fn compile(self) {
        let report = self.run();
        for line in report.directives() {
            println!("{line}");
        }
    }

    /// Runs the build step and returns what it found and did, printing
    /// nothing (for tests and tools).
    pub fn run(self) -> Report {
        let mut report = Report::default();
        let Some(settings) = self.settings(&mut report) else {
            return report;
        };
        let files = self.collect_files(&settings.root, &mut report);
        let mut code = Vec::with_capacity(files.len());
        for file in files {
            let label = label_for(&settings.root, &file);
            report.rerun(&label);
            let mut validated =
                validate_file(&settings.root.join(&file), &ValidateOptions::default());
            for d in &mut validated.diagnostics {
                d.file = label.clone();
            }
            match validated.config.take() {
                Some(config) => {
                    if let Some(pipeline) =
                        pipeline_code(&label, &config, &validated, &settings, &code, &mut report)
                    {
                        code.push(pipeline);
                    }
                }
                None => report.file_problems(&validated.render(), validated.has_errors()),
            }
        }
        if report.has_errors() {
            return report;
        }
        match generate::render(&code, &settings.krate) {
            Ok(text) => {
                let path = settings.out_dir.join(GENERATED_FILE);
                match write_if_changed(&path, &text) {
                    Ok(()) => {
                        report.set_generated(path, code.into_iter().map(|c| c.name).collect())
                    }
                    Err(e) => report.fail_plain(format!("cannot write `{}`: {e}", path.display())),
                }
            }
            Err(e) => report.fail_plain(e.to_string()),
        }
        report
    }

    /// The crate root, output folder and facade path, from the builder or
    /// Cargo's environment; `None` (with an error) when one is missing.
    fn settings(&self, report: &mut Report) -> Option<Settings> {
        let root = self
            .crate_root
            .clone()
            .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from));
        let Some(root) = root else {
            report.fail_plain("elspeth_codegen::Build needs the crate root: run it from build.rs (CARGO_MANIFEST_DIR is not set) or call `.crate_root(..)`");
            return None;
        };
        let out_dir = self
            .out_dir
            .clone()
            .or_else(|| std::env::var_os("OUT_DIR").map(PathBuf::from));
        let Some(out_dir) = out_dir else {
            report.fail_plain("elspeth_codegen::Build needs an output folder: run it from build.rs (OUT_DIR is not set) or call `.out_dir(..)`");
            return None;
        };
        let krate = match self.krate.as_deref().map(syn::parse_str::<syn::Path>) {
            None => quote!(::elspeth),
            Some(Ok(path)) => quote!(#path),
            Some(Err(_)) => {
                report.fail_plain(format!(
                    "elspeth_codegen::Build::crate_path({:?}) is not a Rust path; write e.g. \"::elspeth\"",
                    self.krate.as_deref().unwrap_or_default()
                ));
                return None;
            }
        };
        Some(Settings {
            root,
            out_dir,
            krate,
        })
    }

    /// The pipeline files, in order: each directory's `*.yaml` / `*.yml`
    /// (sorted), then the single files; duplicates once.
    fn collect_files(&self, root: &Path, report: &mut Report) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = Vec::new();
        for dir in &self.dirs {
            let label = label_for(root, dir);
            report.rerun(&label);
            let entries = match std::fs::read_dir(root.join(dir)) {
                Ok(entries) => entries,
                Err(e) => {
                    let why = if e.kind() == std::io::ErrorKind::NotFound {
                        "folder not found".to_string()
                    } else {
                        e.to_string()
                    };
                    report.fail_plain(format!(
                        "cannot read the pipelines folder `{label}`: {why} (it is relative to the crate root)"
                    ));
                    continue;
                }
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .map(|p| p.strip_prefix(root).map(Path::to_path_buf).unwrap_or(p))
                .collect();
            found.sort();
            if found.is_empty() {
                report.warn_plain(format!(
                    "no pipeline files (`*.yaml`, `*.yml`) in `{label}`"
                ));
            }
            files.extend(found);
        }
        files.extend(self.files.iter().cloned());
        let mut seen = Vec::new();
        files.retain(|f| {
            let key = normalize(&root.join(f));
            if seen.contains(&key) {
                false
            } else {
                seen.push(key);
                true
            }
        });
        files
    }
}

/// Where the build step reads and writes.
struct Settings {
    root: PathBuf,
    out_dir: PathBuf,
    krate: TokenStream,
}

/// The code of one valid pipeline, or `None` when it cannot be generated
/// (a secret would be compiled in, or its module name is taken); problems
/// and warnings go to `report`.
fn pipeline_code(
    label: &str,
    config: &PipelineConfig,
    validated: &Validated,
    settings: &Settings,
    done: &[PipelineCode],
    report: &mut Report,
) -> Option<PipelineCode> {
    let mut cx = Cx::new(settings.krate.clone());
    let expr = config.to_rust(&mut cx);
    let checked = secrets::check(label, validated, cx.secret_issues());
    report.file_problems(&checked.render(&validated.source), checked.has_errors());
    let module = names::module_name(&config.name);
    if let Some(other) = done.iter().find(|c| c.module == module) {
        report.fail_plain(format!(
            "pipelines `{}` ({}) and `{}` ({label}) both become the Rust module `pipelines::{module}`; give one of them another `name`",
            other.name, other.file, config.name
        ));
        return None;
    }
    (!checked.has_errors()).then(|| PipelineCode {
        module,
        name: config.name.clone(),
        file: label.to_string(),
        source_dir: source_dir_expr(label),
        config: expr,
    })
}

/// `path` relative to `root` with `/` separators when it is inside it,
/// else as given.
fn label_for(root: &Path, path: &Path) -> String {
    let abs = normalize(&root.join(path));
    let rel = abs
        .strip_prefix(normalize(root))
        .map(Path::to_path_buf)
        .unwrap_or(abs);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if rel.is_absolute() {
        rel.display().to_string()
    } else {
        parts.join("/")
    }
}

/// Removes `.` and resolves `..` lexically (no file system access).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `SOURCE_DIR`: the YAML file's folder, through `CARGO_MANIFEST_DIR` when
/// it is inside the crate (so the value follows the crate if it moves).
fn source_dir_expr(label: &str) -> TokenStream {
    let label_path = Path::new(label);
    if label_path.is_absolute() {
        let dir = label_path
            .parent()
            .unwrap_or(label_path)
            .display()
            .to_string();
        return quote!(#dir);
    }
    let dir = label
        .rsplit_once('/')
        .map(|(d, _)| format!("/{d}"))
        .unwrap_or_default();
    quote!(::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), #dir))
}

/// Writes `text` to `path` unless it already holds exactly that (an
/// unchanged file keeps its mtime, so the crate is not recompiled).
fn write_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_relative_to_the_crate_root() {
        let root = Path::new("/work/crate");
        assert_eq!(
            label_for(root, Path::new("pipelines/a.yaml")),
            "pipelines/a.yaml"
        );
        assert_eq!(
            label_for(root, Path::new("./pipelines/../p/a.yaml")),
            "p/a.yaml"
        );
        assert_eq!(label_for(root, Path::new("/work/crate/x.yaml")), "x.yaml");
        assert_eq!(
            label_for(root, Path::new("/elsewhere/x.yaml")),
            "/elsewhere/x.yaml"
        );
    }

    #[test]
    fn source_dir_follows_the_manifest_dir() {
        assert_eq!(
            source_dir_expr("pipelines/a.yaml").to_string(),
            quote!(::core::concat!(
                ::core::env!("CARGO_MANIFEST_DIR"),
                "/pipelines"
            ))
            .to_string()
        );
        assert_eq!(
            source_dir_expr("a.yaml").to_string(),
            quote!(::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "")).to_string()
        );
    }
}
