//! What the CLI test files share: the cloud variables a new user's shell
//! does not have, and a command that runs without them (so a developer's own
//! keys never leak into, or change, a test).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

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

/// `program args…` in `dir`, without colour and without any of [`CLOUD_VARS`].
pub(crate) fn clean_command(program: impl AsRef<OsStr>, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1");
    for var in CLOUD_VARS {
        cmd.env_remove(var);
    }
    cmd
}
