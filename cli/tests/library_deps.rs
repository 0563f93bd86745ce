//! The `elspeth` library stays apart from the command line: a crate that
//! depends on it compiles none of the CLI's crates (argument parsing,
//! progress bars, log formatting) nor the mock backends and their HTTP
//! server. Checked on the resolved dependency graph (`cargo tree`, offline:
//! the lock file and the local registry cache are enough).

use std::path::Path;
use std::process::Command;

/// Crates only the binary (this package) or the tests may pull in.
const CLI_ONLY: [&str; 5] = [
    "axum",
    "clap",
    "indicatif",
    "tracing-subscriber",
    "elspeth-mock",
];

/// Package names in `cargo tree --prefix none --format {p}` output.
fn packages(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[test]
fn tree_lines_are_parsed_by_name() {
    let tree = "elspeth v0.1.0 (/repo)\nclap v4.5.0\nclap v4.5.0 (*)\n\n";
    assert_eq!(packages(tree), ["elspeth", "clap", "clap"]);
}

/// `cargo tree` of `package`'s normal dependencies, one package per line
/// (`extra` adds arguments); fails the test when cargo does.
fn cargo_tree(package: &str, extra: &[&str]) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is inside the repository");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "-p", package, "-e", "normal"])
        .args(extra)
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(repo)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_library_depends_on_no_cli_crate() {
    // The host's graph: `--target all` would need every platform's crates
    // in the local cache, which a fresh clone's build never downloads (and
    // the tree runs `--offline`: tests never reach the network).
    let stdout = cargo_tree("elspeth", &[]);
    let names = packages(&stdout);
    // The graph really is the library's (an empty or wrong tree proves nothing).
    for needed in ["elspeth", "elspeth-runtime", "elspeth-telemetry", "tokio"] {
        assert!(names.contains(&needed), "{needed} missing from:\n{stdout}");
    }
    let found: Vec<&str> = CLI_ONLY.into_iter().filter(|c| names.contains(c)).collect();
    assert!(
        found.is_empty(),
        "the elspeth library pulls in {found:?}; see `cargo tree -p elspeth -e normal -i {}`",
        found.first().copied().unwrap_or_default()
    );
}

/// The same check is not vacuous: the binary's own graph has them all.
#[test]
fn the_binary_depends_on_the_cli_crates() {
    let stdout = cargo_tree("elspeth-cli", &[]);
    let names = packages(&stdout);
    for c in CLI_ONLY {
        assert!(names.contains(&c), "{c} missing from:\n{stdout}");
    }
}
