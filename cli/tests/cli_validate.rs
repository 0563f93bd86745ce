//! `elspeth validate` and `elspeth schema`, run as a user runs them.

use std::path::PathBuf;
use std::process::{Command, Output};

mod support;
use support::repo;

/// Runs `elspeth` in the repository root with a clean environment for the
/// variables the examples reference.
fn elspeth(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_elspeth"));
    cmd.args(args).current_dir(repo()).env("NO_COLOR", "1");
    for var in [
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_KEY",
        "OPENROUTER_API_KEY",
        "LANGFUSE_PUBLIC_KEY",
        "LANGFUSE_SECRET_KEY",
        "LANGFUSE_HOST",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run elspeth")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn examples() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("examples/pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            format!(
                "examples/pipelines/{}",
                p.file_name().unwrap().to_string_lossy()
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn valid_files_exit_0() {
    let files = examples();
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = elspeth(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{} files all valid\n", files.len()));
    assert_eq!(stderr(&out), "");
}

#[test]
fn an_invalid_file_exits_1_with_the_rendered_diagnostics() {
    let out = elspeth(
        &["validate", "examples/invalid/langfuse-missing-keys.yaml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let expected =
        std::fs::read_to_string(repo().join("examples/invalid/langfuse-missing-keys.expected"))
            .unwrap();
    assert_eq!(
        stderr(&out),
        format!("{expected}\nerror: 1 of 1 file invalid (2 errors)\n")
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn a_template_field_the_source_rows_lack_is_an_error_and_an_absent_source_a_note() {
    let out = elspeth(
        &["validate", "examples/invalid/unknown-template-field.yaml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let expected =
        std::fs::read_to_string(repo().join("examples/invalid/unknown-template-field.expected"))
            .unwrap();
    assert_eq!(
        stderr(&out),
        format!("{expected}\nerror: 1 of 1 file invalid (2 errors)\n")
    );

    // Without its rows the same file is checked for everything else, and
    // says that the fields were not.
    let dir = std::env::temp_dir().join(format!("elspeth-validate-norows-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = dir.join("triage.yaml");
    std::fs::copy(repo().join("examples/quickstart/ticket-triage.yaml"), &yaml).unwrap();
    let out = elspeth(&["validate", yaml.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1 file valid\n", "a note is not a warning");
    assert!(
        stderr(&out).starts_with(
            "note: the fields used in prompt templates were not checked: `tickets.jsonl` does not exist (yet)\n"
        ),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn all_problems_of_all_files_in_file_order() {
    let out = elspeth(
        &[
            "validate",
            "examples/invalid/unknown-provider.yaml",
            "examples/pipelines/azure_llm.none.yaml",
            "examples/invalid/wrong-types.yaml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let locations: Vec<&str> = err
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--> "))
        .collect();
    assert_eq!(
        locations,
        [
            "examples/invalid/unknown-provider.yaml:12:19",
            "examples/invalid/wrong-types.yaml:11:20",
            "examples/invalid/wrong-types.yaml:12:19",
        ]
    );
    assert!(
        err.ends_with("error: 2 of 3 files invalid (3 errors)\n"),
        "{err}"
    );
}

#[test]
fn missing_files_and_directories_exit_2() {
    let out = elspeth(&["validate", "examples/pipelines/nope.yaml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .starts_with("error: cannot read `examples/pipelines/nope.yaml`: file not found\n"),
        "{}",
        stderr(&out)
    );
    // A directory, next to an invalid file: still an I/O error (2), and the
    // invalid file is reported too.
    let out = elspeth(
        &[
            "validate",
            "examples/pipelines",
            "examples/invalid/empty.yaml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("error: `examples/pipelines` is a directory, not a pipeline file"));
    assert!(err.contains("error: empty pipeline file\n --> examples/invalid/empty.yaml:1:1"));
    assert!(
        err.ends_with("error: 1 of 2 files could not be read; 1 of 2 files invalid (1 error)\n")
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = elspeth(&["validate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("<FILE>"));
    let out = elspeth(&["validate", "--format", "xml", "x.yaml"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn json_format() {
    let out = elspeth(
        &[
            "validate",
            "--format",
            "json",
            "examples/invalid/langfuse-missing-keys.yaml",
            "examples/invalid/warning-literal-secret.yaml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "");
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON on stdout");
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0],
        serde_json::json!({
            "file": "examples/invalid/langfuse-missing-keys.yaml",
            "line": 12, "column": 9, "end_line": 12, "end_column": 27,
            "severity": "error",
            "message": "langfuse tracing requires public_key. Use ${LANGFUSE_PUBLIC_KEY} in YAML.",
            "help": "add `public_key: ${LANGFUSE_PUBLIC_KEY}` to this tracing block"
        })
    );
    assert_eq!(items[2]["severity"], "warning");
    // The literal secret is not in the output.
    assert!(!stdout(&out).contains("sk-live"));
}

#[test]
fn resolve_env_reports_each_missing_variable_and_never_prints_values() {
    let file = "examples/pipelines/azure_llm.langfuse.yaml";
    // Without --resolve-env, unset variables are fine.
    assert_eq!(elspeth(&["validate", file], &[]).status.code(), Some(0));
    let out = elspeth(
        &["validate", "--resolve-env", file],
        &[("LANGFUSE_PUBLIC_KEY", "pk-lf-1")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let missing = |severity: &str| -> Vec<String> {
        err.lines()
            .filter_map(|l| l.strip_prefix(&format!("{severity}: environment variable `")))
            .map(|l| l.split('`').next().unwrap().to_string())
            .collect()
    };
    // LANGFUSE_HOST has a default; LANGFUSE_PUBLIC_KEY is set. The missing
    // tracing secret only turns tracing off (a warning), the LLM settings
    // are errors.
    assert_eq!(
        missing("error"),
        ["AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_KEY"]
    );
    assert_eq!(missing("warning"), ["LANGFUSE_SECRET_KEY"]);
    assert!(err.contains("transforms[0] will run untraced"), "{err}");
    assert!(err.contains(&format!("--> {file}:12:17")), "{err}");

    let secret_endpoint = "sk-very-secret-not-a-url";
    let out = elspeth(
        &["validate", "--resolve-env", file],
        &[
            ("AZURE_OPENAI_ENDPOINT", secret_endpoint),
            ("AZURE_OPENAI_KEY", "k-123-secret"),
            ("LANGFUSE_PUBLIC_KEY", "pk-lf-1"),
            ("LANGFUSE_SECRET_KEY", "sk-lf-secret"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("error: `endpoint` does not resolve to an http(s) URL"),
        "{err}"
    );
    for value in [secret_endpoint, "k-123-secret", "sk-lf-secret", "pk-lf-1"] {
        assert!(
            !err.contains(value) && !stdout(&out).contains(value),
            "{value} leaked:\n{err}"
        );
    }
    let out = elspeth(
        &["validate", "--resolve-env", file],
        &[
            ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com"),
            ("AZURE_OPENAI_KEY", "k"),
            ("LANGFUSE_PUBLIC_KEY", "pk"),
            ("LANGFUSE_SECRET_KEY", "sk"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn schema_prints_and_writes_the_committed_schema() {
    let committed = std::fs::read_to_string(repo().join("schema/pipeline.schema.json")).unwrap();
    let out = elspeth(&["schema"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), committed);

    let dir: PathBuf =
        std::env::temp_dir().join(format!("elspeth-cli-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipeline.schema.json");
    let p = path.to_str().unwrap();
    let out = elspeth(&["schema", "--out", p], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), committed);
    assert_eq!(
        elspeth(&["schema", "--check", "--out", p], &[])
            .status
            .code(),
        Some(0)
    );
    std::fs::write(&path, "{}").unwrap();
    let out = elspeth(&["schema", "--check", "--out", p], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is out of date"));
    let out = elspeth(
        &[
            "schema",
            "--out",
            dir.join("no/such/dir.json").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn help_shows_examples() {
    for sub in ["validate", "schema"] {
        let out = elspeth(&[sub, "--help"], &[]);
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        assert!(text.contains("Examples:"), "{text}");
        assert!(text.contains(&format!("elspeth {sub}")), "{text}");
    }
    let text = stdout(&elspeth(&["validate", "--help"], &[]));
    assert!(text.contains("--resolve-env") && text.contains("--format"));
    assert!(text.contains("Exit codes: 0"));
}
