//! `Build::run` as a library: what it reports and writes, without Cargo.
//! (The end-to-end `cargo build` of a user crate is the root crate's
//! `tests/codegen_build.rs`.)

use std::path::{Path, PathBuf};

use elspeth_codegen::{Build, GENERATED_FILE};

const GOOD: &str = "\
name: ticket-triage
source: { plugin: jsonl, path: data/in.jsonl }
transforms:
  - plugin: openrouter_llm
    options:
      model: openai/gpt-4o-mini
      api_key: ${OPENROUTER_API_KEY}
      prompt_template: 'Classify: {{ text }}'
sink: { plugin: jsonl, path: out.jsonl }
";

/// Source rows of `GOOD` (at `data/in.jsonl` next to the YAML file).
const ROWS: &str = "{\"id\": 1, \"text\": \"refund please\"}\n";

/// A scratch crate root with the given files.
fn crate_root(case: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("build_api")
        .join(case);
    let _ = std::fs::remove_dir_all(&root);
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::create_dir_all(&root).unwrap();
    root
}

fn build(root: &Path) -> Build {
    Build::new().crate_root(root).out_dir(root.join("out"))
}

#[test]
fn valid_files_generate_code_and_rerun_triggers_only() {
    let root = crate_root(
        "valid",
        &[
            ("pipelines/b.yaml", GOOD),
            ("pipelines/a.yml", &GOOD.replace("ticket-triage", "Other")),
            ("pipelines/notes.txt", "not a pipeline"),
            ("extra/one.yaml", &GOOD.replace("ticket-triage", "one")),
            // The rows the templates read (checked by the build step).
            ("pipelines/data/in.jsonl", ROWS),
            ("extra/data/in.jsonl", ROWS),
        ],
    );
    let report = build(&root)
        .pipelines("pipelines")
        .pipeline("extra/one.yaml")
        .run();
    assert!(!report.has_errors(), "{:?}", report.errors());
    assert!(report.warnings().is_empty());
    assert_eq!(
        report.rerun_paths(),
        [
            "pipelines",
            "pipelines/a.yml",
            "pipelines/b.yaml",
            "extra/one.yaml"
        ]
    );
    assert_eq!(
        report.directives(),
        [
            "cargo::rerun-if-changed=pipelines",
            "cargo::rerun-if-changed=pipelines/a.yml",
            "cargo::rerun-if-changed=pipelines/b.yaml",
            "cargo::rerun-if-changed=extra/one.yaml",
        ],
        "a valid build prints nothing but its rerun triggers"
    );
    let (path, names) = report.generated().expect("generated");
    assert_eq!(path, &root.join("out").join(GENERATED_FILE));
    assert_eq!(names, ["Other", "ticket-triage", "one"]);
    let code = std::fs::read_to_string(path).unwrap();
    for module in [
        "pub mod other {",
        "pub mod ticket_triage {",
        "pub mod one {",
    ] {
        assert!(code.contains(module), "{module} missing");
    }
    assert!(code.contains("pub const SOURCE_FILE: &str = \"extra/one.yaml\";"));
    assert!(code.contains("\"${OPENROUTER_API_KEY}\""));
    syn::parse_file(&code).expect("the generated file is Rust");

    // Unchanged output is not rewritten (its mtime drives recompilation).
    let before = std::fs::metadata(path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = build(&root)
        .pipelines("pipelines")
        .pipeline("extra/one.yaml")
        .run();
    assert!(!again.has_errors());
    assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), before);
}

#[test]
fn every_problem_of_every_file_is_reported_and_nothing_is_written() {
    let missing_secret = GOOD.replace(
        "      prompt_template: 'Classify: {{ text }}'\n",
        "      prompt_template: 'Classify: {{ text }}'\n      tracing: { provider: langfuse, public_key: '${PK}' }\n",
    );
    let root = crate_root(
        "invalid",
        &[
            ("pipelines/a.yaml", &missing_secret),
            ("pipelines/b.yaml", "name: [unclosed\n"),
            ("pipelines/c.yaml", GOOD),
            ("pipelines/data/in.jsonl", ROWS),
        ],
    );
    let report = build(&root).pipelines("pipelines").run();
    assert!(report.has_errors());
    assert_eq!(
        report.errors().len(),
        2,
        "one report per invalid file: {:#?}",
        report.errors()
    );
    assert!(report.errors()[0].starts_with(
        "error: langfuse tracing requires secret_key. Use ${LANGFUSE_SECRET_KEY} in YAML.\n --> pipelines/a.yaml:9:18\n"
    ));
    assert!(
        report.errors()[1].contains("--> pipelines/b.yaml:"),
        "{}",
        report.errors()[1]
    );
    assert!(report.generated().is_none());
    assert!(!root.join("out").join(GENERATED_FILE).exists());
    let directives = report.directives();
    assert!(
        directives
            .iter()
            .all(|d| d.starts_with("cargo::rerun-if-changed=") || d.starts_with("cargo::error="))
    );
    assert!(directives.contains(&"cargo::error=error: langfuse tracing requires secret_key. Use ${LANGFUSE_SECRET_KEY} in YAML.".to_string()));
}

#[test]
fn literal_secrets_are_errors_and_masked() {
    let root = crate_root(
        "literal",
        &[(
            "p.yaml",
            &GOOD.replace("${OPENROUTER_API_KEY}", "sk-or-v1-abcdef123456"),
        )],
    );
    let report = build(&root).pipeline("p.yaml").run();
    assert!(report.has_errors());
    let text = report.errors().join("\n");
    assert!(!text.contains("sk-or-v1-abcdef123456"), "{text}");
    assert!(text.contains("--> p.yaml:7:16"), "{text}");
    assert!(text.contains("literal secret"), "{text}");
    assert!(report.generated().is_none());
}

#[test]
fn secret_defaults_are_located_in_flattened_and_nested_blocks() {
    // A BOM and a default in a tracing block: located in the document the
    // validator loaded, at the value itself.
    let yaml = format!(
        "\u{feff}{}      tracing:\n        provider: langfuse\n        public_key: ${{PK}}\n        secret_key: \"${{SK:-sk-lf-default}}\"\n{}",
        GOOD.split("sink:").next().unwrap(),
        "sink: { plugin: jsonl, path: out.jsonl }\n"
    );
    let root = crate_root("defaults", &[("p.yaml", &yaml), ("data/in.jsonl", ROWS)]);
    let report = build(&root).pipeline("p.yaml").run();
    let text = report.errors().join("\n");
    assert!(
        text.contains(
            "error: `transforms[0].options.tracing.secret_key` gives its secret a default value"
        ),
        "{text}"
    );
    assert!(text.contains("--> p.yaml:12:21"), "{text}");
    assert!(!text.contains("sk-lf-default"), "{text}");
    assert!(report.generated().is_none());
}

#[test]
fn folder_and_setup_problems() {
    let root = crate_root("setup", &[("empty/.keep", "")]);
    let report = build(&root).pipelines("missing").run();
    assert_eq!(
        report.errors(),
        [
            "error: cannot read the pipelines folder `missing`: folder not found (it is relative to the crate root)"
        ]
    );

    let report = build(&root).pipelines("empty").run();
    assert!(!report.has_errors());
    assert_eq!(
        report.warnings(),
        ["warning: no pipeline files (`*.yaml`, `*.yml`) in `empty`"]
    );
    assert_eq!(report.generated().map(|(_, n)| n.len()), Some(0));

    let report = build(&root)
        .pipelines("empty")
        .crate_path("not a path")
        .run();
    assert!(report.errors()[0].contains("is not a Rust path"));

    let report = Build::new()
        .crate_root(&root)
        .out_dir(root.join("o"))
        .pipeline("x.yaml")
        .run();
    assert!(
        report.errors()[0].contains("x.yaml"),
        "{:?}",
        report.errors()
    );
}

#[test]
fn crate_path_changes_the_generated_paths() {
    let root = crate_root("krate", &[("p.yaml", GOOD)]);
    let report = build(&root)
        .pipeline("p.yaml")
        .crate_path("::my_elspeth")
        .run();
    let (path, _) = report.generated().expect("generated");
    let code = std::fs::read_to_string(path).unwrap();
    assert!(code.contains("pub fn config() -> ::my_elspeth::config::PipelineConfig"));
    assert!(code.contains("pub fn pipeline() -> ::my_elspeth::pipeline::Pipeline"));
    assert!(!code.contains("::elspeth::"));
}

#[test]
fn warnings_of_valid_files_are_cargo_warnings_and_do_not_fail_the_build() {
    let root = crate_root(
        "warnings",
        &[(
            "p.yaml",
            &GOOD.replace("'Classify: {{ text }}'", "'Classify this.'"),
        )],
    );
    let report = build(&root).pipeline("p.yaml").run();
    assert!(!report.has_errors(), "{:?}", report.errors());
    assert!(report.generated().is_some());
    assert_eq!(report.warnings().len(), 1);
    let warning = &report.warnings()[0];
    assert!(
        warning.starts_with("warning: `prompt_template` uses no row field, so every row gets the same prompt\n --> p.yaml:8:24"),
        "{warning}"
    );
    let directives = report.directives();
    assert!(directives.contains(
        &"cargo::warning=warning: `prompt_template` uses no row field, so every row gets the same prompt".to_string()
    ));
    assert!(!directives.iter().any(|d| d.starts_with("cargo::error=")));
}

#[test]
fn a_template_field_the_rows_lack_fails_the_build() {
    let root = crate_root(
        "row-fields",
        &[
            (
                "p.yaml",
                &GOOD.replace("'Classify: {{ text }}'", "'Classify: {{ txet }}'"),
            ),
            ("data/in.jsonl", ROWS),
        ],
    );
    let report = build(&root).pipeline("p.yaml").run();
    assert!(report.has_errors());
    let text = report.errors().join("\n");
    assert!(
        text.starts_with("error: unknown field `txet` in `prompt_template`\n --> p.yaml:8:35\n"),
        "{text}"
    );
    assert!(text.contains("= help: did you mean `text`?"), "{text}");
    assert!(report.generated().is_none());
}

#[test]
fn a_source_absent_at_build_time_is_a_note_not_an_error() {
    let root = crate_root("no-rows-yet", &[("p.yaml", GOOD)]);
    let report = build(&root).pipeline("p.yaml").run();
    assert!(!report.has_errors(), "{:?}", report.errors());
    assert!(report.generated().is_some(), "the code is generated");
    assert_eq!(report.warnings().len(), 1, "{:?}", report.warnings());
    assert!(
        report.warnings()[0].starts_with(
            "note: the fields used in prompt templates were not checked: `data/in.jsonl` does not exist (yet)\n --> p.yaml:2:32\n"
        ),
        "{}",
        report.warnings()[0]
    );
    assert!(report.directives().contains(
        &"cargo::warning=note: the fields used in prompt templates were not checked: `data/in.jsonl` does not exist (yet)".to_string()
    ));
}
