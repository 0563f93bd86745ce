//! The README's first command, run exactly as written, in a clean copy of
//! the repository: the guard that keeps the quick start from drifting.
//!
//! The command is read out of README.md's "Quick start" block (its first
//! line), so editing the README changes what is tested. The copy holds the
//! files git knows (tracked, plus untracked ones that are not ignored), as a
//! fresh `git clone` would, with their modification times, so the shared
//! target folder (`target/fixtures-target`, also used by the build-step
//! tests) does not rebuild what has not changed.

use std::path::Path;
use std::process::{Command, Stdio};

mod support;
use support::repo;

/// The first command of the first fenced block under `## Quick start`.
fn first_quick_start_command(readme: &str) -> Option<String> {
    let section = readme.split("\n## Quick start").nth(1)?;
    let section = section.split("\n## ").next()?;
    let block = section.split("```").nth(1)?;
    block
        .lines()
        .skip(1) // the fence's info string (`bash`)
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
}

/// Copies the files git lists (working-tree content, times kept) to `dest`.
fn clean_copy(dest: &Path) {
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest).unwrap();
    let script = format!(
        "git ls-files -z --cached --others --exclude-standard \
         | while IFS= read -r -d '' f; do [ -e \"$f\" ] && printf '%s\\0' \"$f\"; done \
         | tar --null -T - -cf - | tar -xf - -C '{}'",
        dest.display()
    );
    let status = Command::new("bash")
        .args(["-c", &script])
        .current_dir(repo())
        .status()
        .expect("git and tar run");
    assert!(status.success(), "copying the repository failed");
    assert!(dest.join("README.md").is_file() && dest.join("Cargo.toml").is_file());
}

/// `name N` in the summary's `mocks received:` line.
fn received(summary: &str, name: &str) -> Option<u64> {
    let line = summary.lines().find(|l| l.contains("mocks received:"))?;
    let rest = &line[line.find(name)? + name.len()..];
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn readme_block_parsing() {
    let readme = "# x\n\n## Quick start\n\n```bash\n# comment\ncargo run -- run a.yaml   # note\nnpm test\n```\n\n## Next\n```sh\nother\n```\n";
    assert_eq!(
        first_quick_start_command(readme).as_deref(),
        Some("cargo run -- run a.yaml   # note")
    );
    assert_eq!(first_quick_start_command("# no quick start\n"), None);
    let summary = "  mocks received: Langfuse 24, Application Insights 7, OTLP collector 0 (spans / envelopes)";
    assert_eq!(received(summary, "Langfuse"), Some(24));
    assert_eq!(received(summary, "Application Insights"), Some(7));
    assert_eq!(received("nothing", "Langfuse"), None);
}

#[test]
fn readme_first_command_runs_verbatim_in_a_clean_copy() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let command = first_quick_start_command(&readme).expect("README.md has a quick start block");
    assert!(
        command.starts_with("cargo run -- run "),
        "the quick start's first command runs a pipeline: {command}"
    );

    let target = repo().join("target/fixtures-target");
    let copy = repo().join("target/elspeth-fixtures/quickstart-clone");
    clean_copy(&copy);

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cargo_dir = Path::new(&cargo)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(cargo_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    // The user's shell has none of the variables the mocks stand in for.
    let mut cmd = support::clean_command("bash", &copy, &["-c", &command]);
    cmd.env("PATH", path)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_PKG_NAME")
        .stdin(Stdio::null());
    let out = cmd.output().expect("bash runs the README command");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`{command}` failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    let summary = format!("{stdout}\n{stderr}");
    let langfuse = received(&summary, "Langfuse");
    let appinsights = received(&summary, "Application Insights");
    assert!(
        langfuse.is_some_and(|n| n > 0) && appinsights.is_some_and(|n| n > 0),
        "the summary reports spans received by the mock Langfuse and Application Insights \
         (got {langfuse:?} / {appinsights:?}):\n{summary}"
    );
}
