//! The Langfuse Python SDK the comparisons run against: a virtualenv under
//! `target/langfuse-py-venv` (created on first use with `python3 -m venv`
//! and `pip install langfuse==5.0.4`, the version the reference captures
//! come from). Shared by `telemetry/benches/vs_langfuse_python.rs` and
//! `cli/benches/tracing_cpu.rs` through `#[path]`, like `figure.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The SDK version installed.
pub(crate) const LANGFUSE_VERSION: &str = "5.0.4";

/// The workspace's target directory (`CARGO_TARGET_DIR`, else `target/`
/// beside the including crate's folder).
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        })
}

/// The virtualenv's folder.
pub(crate) fn venv() -> PathBuf {
    target_dir().join("langfuse-py-venv")
}

/// The venv's python with langfuse installed (installing it when missing),
/// or why not.
pub(crate) fn python() -> Result<PathBuf, String> {
    let venv = venv();
    let python = venv.join("bin").join("python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", &format!("import langfuse, sys; sys.exit(0 if langfuse.__version__ == '{LANGFUSE_VERSION}' else 1)")])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Ok(python);
    }
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("python3 is not available ({e})"))?;
    if !status.success() {
        return Err("`python3 -m venv` failed (is the venv module installed?)".into());
    }
    let status = Command::new(venv.join("bin").join("pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("langfuse=={LANGFUSE_VERSION}"),
        ])
        .status()
        .map_err(|e| format!("pip could not run ({e})"))?;
    if !status.success() {
        return Err(format!(
            "`pip install langfuse=={LANGFUSE_VERSION}` failed (no access to PyPI?)"
        ));
    }
    Ok(python)
}
