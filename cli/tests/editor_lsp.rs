//! Editor autocompletion, proven with the real yaml-language-server.
//!
//! Runs the node test suite in the repository's `tests/lsp/` (`node --test`), which starts
//! `yaml-language-server --stdio`, opens pipeline YAML files with the
//! `# yaml-language-server: $schema=` modeline pointing at the committed
//! `schema/pipeline.schema.json`, and checks completions, hover text and
//! diagnostics. Its node dependencies are installed by `npm ci --prefix
//! tests/lsp` (part of the README test command and of `.ci/run`).

use std::path::Path;
use std::process::Command;

#[test]
fn yaml_language_server_uses_the_committed_schema() {
    // The suite stays at the repository root, where the README's
    // `npm ci --prefix tests/lsp` installs it.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is inside the repository")
        .join("tests/lsp");
    if !dir.join("node_modules/yaml-language-server").is_dir() {
        let msg = "tests/lsp/node_modules is missing: run `npm ci --prefix tests/lsp` first";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("skipped: {msg}");
        return;
    }
    let output = Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .current_dir(&dir)
        .output()
        .expect("node is on PATH");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "yaml-language-server tests failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("pass 6"),
        "expected 6 passing editor tests:\n{stdout}"
    );
}
