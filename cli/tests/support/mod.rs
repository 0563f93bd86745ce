//! What the CLI test files share: the cloud variables a new user's shell
//! does not have, a command that runs without them (so a developer's own
//! keys never leak into, or change, a test), and the quick-start fixture.

// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the CLI package is `cli/` inside it).
pub(crate) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is inside the repository")
}

/// Process output as text.
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `n` quick-start tickets as JSONL (ids `0..n`, one invoice complaint
/// each); `odd` gives row `at` another body.
pub(crate) fn tickets(n: usize, odd: Option<(usize, &str)>) -> String {
    (0..n)
        .map(|i| {
            let body = match odd {
                Some((at, body)) if at == i => body.to_string(),
                _ => format!("I was charged twice for invoice {i}"),
            };
            format!(
                "{}\n",
                serde_json::json!({"id": i, "subject": format!("ticket {i}"), "body": body})
            )
        })
        .collect()
}

/// The quick start's pipeline YAML, as shipped.
pub(crate) fn quickstart_yaml() -> String {
    std::fs::read_to_string(repo().join("examples/quickstart/ticket-triage.yaml")).unwrap()
}

/// A fresh folder `<temp>/elspeth-<name>-<pid>` holding `yaml` as
/// `ticket-triage.yaml` and `tickets` as `tickets.jsonl`.
pub(crate) fn quickstart_dir(name: &str, yaml: &str, tickets: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elspeth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ticket-triage.yaml"), yaml).unwrap();
    std::fs::write(dir.join("tickets.jsonl"), tickets).unwrap();
    dir
}

/// Every variable the bundled mocks stand in for.
pub(crate) const CLOUD_VARS: [&str; 9] = [
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_KEY",
    "OPENROUTER_API_KEY",
    "OPENROUTER_BASE_URL",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_HOST",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// `elspeth args…` in the repository, as [`clean_command`] makes it.
pub(crate) fn command(args: &[&str]) -> Command {
    clean_command(env!("CARGO_BIN_EXE_elspeth"), repo(), args)
}

/// Runs [`command`] to its end.
pub(crate) fn elspeth(args: &[&str]) -> Output {
    command(args).output().expect("run elspeth")
}

/// The JSON file at `path` (a `--summary-json`).
pub(crate) fn json_file(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `program args…` in `dir`, without colour and without any of [`CLOUD_VARS`].
pub(crate) fn clean_command(program: impl AsRef<OsStr>, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1");
    for var in CLOUD_VARS {
        cmd.env_remove(var);
    }
    cmd
}
