//! The build step end to end: a user crate (`tests/fixtures/pipelines_crate`)
//! with `build.rs` → `elspeth_codegen::Build` and `include_pipelines!()`,
//! built with `cargo build`.
//!
//! Each test copies the fixture under `target/elspeth-fixtures/<case>`
//! (path dependencies pointed at this workspace, this workspace's
//! `Cargo.lock`) and builds it with one shared target folder,
//! `target/fixtures-target`, so dependencies compile once. Tests take a
//! lock: cargo would serialise them on the target folder anyway.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use elspeth::schema::validate::{ValidateOptions, validate_file};
use serde_json::Value;

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    workspace().join("target/fixtures-target")
}

/// A copy of the fixture crate, as package `elspeth-fixture-<case>` (one
/// binary per case in the shared target folder).
struct Fixture {
    dir: PathBuf,
    package: String,
}

/// What `cargo build` did.
struct Build {
    ok: bool,
    stderr: String,
    package: String,
}

impl Build {
    /// Whether the fixture's build script ran in this build.
    fn ran_build_script(&self) -> bool {
        let dir = format!("/{}-", self.package);
        self.stderr.lines().any(|l| {
            l.contains("Running `") && l.contains(&dir) && l.contains("build-script-build")
        })
    }

    /// The lines the build script reported as errors, without Cargo's
    /// `error: elspeth-fixture-<case>@0.1.0: ` prefix.
    fn reported(&self) -> Vec<&str> {
        let prefix = format!("error: {}@0.1.0: ", self.package);
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .collect()
    }

    fn reported_text(&self) -> String {
        self.reported().join("\n")
    }
}

impl Fixture {
    fn new(case: &str) -> Self {
        let src = workspace().join("tests/fixtures/pipelines_crate");
        let dir = workspace().join("target/elspeth-fixtures").join(case);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        let ws = workspace().display().to_string();
        let package = format!("elspeth-fixture-{case}");
        let manifest = std::fs::read_to_string(src.join("Cargo.toml"))
            .unwrap()
            .replace("name = \"elspeth-fixture\"", &format!("name = {package:?}"))
            .replace("path = \"../../..\"", &format!("path = {ws:?}"))
            .replace(
                "path = \"../../../codegen\"",
                &format!(
                    "path = {:?}",
                    workspace().join("codegen").display().to_string()
                ),
            );
        write_if_changed(&dir.join("Cargo.toml"), &manifest);
        for file in ["build.rs", "src/main.rs"] {
            write_if_changed(
                &dir.join(file),
                &std::fs::read_to_string(src.join(file)).unwrap(),
            );
        }
        if !dir.join("Cargo.lock").exists() {
            std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        }
        // The source rows the templates read (the build step checks their
        // fields); not pipelines, so `set_pipelines` leaves them alone.
        for file in ["pipelines/in.jsonl", "pipelines/data/tickets.csv"] {
            std::fs::create_dir_all(dir.join(file).parent().unwrap()).unwrap();
            write_if_changed(
                &dir.join(file),
                &std::fs::read_to_string(src.join(file)).unwrap(),
            );
        }
        let fixture = Self { dir, package };
        let originals: Vec<(String, String)> = std::fs::read_dir(src.join("pipelines"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| is_pipeline(p))
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect();
        let originals: Vec<(&str, &str)> = originals
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        fixture.set_pipelines(&originals);
        fixture
    }

    /// Makes `pipelines/` hold exactly `files` as its pipeline files
    /// (unchanged files keep their modification time).
    fn set_pipelines(&self, files: &[(&str, &str)]) {
        let dir = self.dir.join("pipelines");
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if is_pipeline(&path) && !files.iter().any(|(n, _)| *n == name) {
                std::fs::remove_file(path).unwrap();
            }
        }
        for (name, text) in files {
            write_if_changed(&dir.join(name), text);
        }
    }

    fn build(&self, env: &[(&str, &str)]) -> Build {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-v", "--color", "never"])
            .current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", target_dir())
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let Output { status, stderr, .. } = cmd.output().expect("cargo runs");
        Build {
            ok: status.success(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            package: self.package.clone(),
        }
    }

    fn binary(&self) -> PathBuf {
        target_dir().join("debug").join(&self.package)
    }

    fn run(&self, env: &[(&str, &str)]) -> Value {
        let out = Command::new(self.binary())
            .envs(env.iter().copied())
            .output()
            .expect("fixture binary runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the fixture prints JSON")
    }

    /// The configs the validator reads from the fixture's YAML files now.
    fn expected_configs(&self) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        for entry in std::fs::read_dir(self.dir.join("pipelines")).unwrap() {
            let path = entry.unwrap().path();
            if !is_pipeline(&path) {
                continue; // the source rows
            }
            let v = validate_file(&path, &ValidateOptions::default());
            let config = v.config.expect("fixture pipelines are valid");
            out.insert(config.name.clone(), serde_json::to_value(&config).unwrap());
        }
        out
    }
}

/// A `*.yaml` or `*.yml` file (what the build step reads in `pipelines/`).
fn is_pipeline(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    std::fs::write(path, text).unwrap();
}

fn triage_yaml() -> String {
    std::fs::read_to_string(
        workspace().join("tests/fixtures/pipelines_crate/pipelines/triage.yaml"),
    )
    .unwrap()
}

fn batch_yaml() -> String {
    std::fs::read_to_string(workspace().join("tests/fixtures/pipelines_crate/pipelines/batch.yml"))
        .unwrap()
}

/// A random-enough marker that appears nowhere else.
fn marker(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{:x}{:x}", nanos, std::process::id())
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ------------------------------------------------------------------ valid

#[test]
fn valid_pipelines_compile_and_the_binary_holds_the_same_configs() {
    let _guard = lock();
    let fixture = Fixture::new("valid");
    let build = fixture.build(&[]);
    assert!(build.ok, "{}", build.stderr);
    assert!(
        build.reported().is_empty(),
        "valid files print nothing: {}",
        build.stderr
    );
    assert!(
        !build.stderr.contains("warning: elspeth-fixture-valid"),
        "valid files print nothing: {}",
        build.stderr
    );

    let out = fixture.run(&[]);
    assert_eq!(
        out["names"],
        serde_json::json!(["NightlyBatch", "ticket-triage"])
    );
    assert_eq!(
        out["configs"],
        Value::Object(fixture.expected_configs()),
        "generated config() == the YAML as the validator reads it, field for field"
    );
    assert_eq!(out["triage"]["name"], "ticket-triage");
    assert_eq!(out["triage"]["source_file"], "pipelines/triage.yaml");
    assert_eq!(
        out["triage"]["source_dir"],
        fixture.dir.join("pipelines").display().to_string()
    );
    assert_eq!(
        out["api_key_len_at_run_time"],
        Value::Null,
        "the variable is not set"
    );
}

#[test]
fn untouched_tree_does_not_rerun_the_build_script_and_edits_do() {
    let _guard = lock();
    let fixture = Fixture::new("rerun");
    let triage = triage_yaml();
    let batch = batch_yaml();
    fixture.set_pipelines(&[("triage.yaml", &triage), ("batch.yml", &batch)]);
    assert!(fixture.build(&[]).ok);

    let again = fixture.build(&[]);
    assert!(again.ok);
    assert!(
        !again.ran_build_script(),
        "untouched tree reran the build script:\n{}",
        again.stderr
    );

    // An edited YAML reruns it, and the binary sees the edit.
    let edited = triage.replace("Classify: {{ text }}", "Triage: {{ text }}");
    fixture.set_pipelines(&[("triage.yaml", &edited), ("batch.yml", &batch)]);
    let build = fixture.build(&[]);
    assert!(build.ok, "{}", build.stderr);
    assert!(
        build.ran_build_script(),
        "an edited YAML must rerun the build script"
    );
    let out = fixture.run(&[]);
    assert_eq!(
        out["configs"]["ticket-triage"]["transforms"][0]["options"]["prompt_template"],
        "Triage: {{ text }}"
    );

    // A new file in the folder reruns it; so does removing it.
    let extra = batch.replace("name: NightlyBatch", "name: extra-one");
    fixture.set_pipelines(&[
        ("triage.yaml", &edited),
        ("batch.yml", &batch),
        ("extra.yaml", &extra),
    ]);
    let build = fixture.build(&[]);
    assert!(build.ok && build.ran_build_script(), "{}", build.stderr);
    assert_eq!(
        fixture.run(&[])["names"],
        serde_json::json!(["NightlyBatch", "extra-one", "ticket-triage"])
    );
    fixture.set_pipelines(&[("triage.yaml", &edited), ("batch.yml", &batch)]);
    let build = fixture.build(&[]);
    assert!(build.ok && build.ran_build_script(), "{}", build.stderr);
    assert_eq!(
        fixture.run(&[])["names"],
        serde_json::json!(["NightlyBatch", "ticket-triage"])
    );
}

#[test]
fn a_secret_set_at_build_time_reaches_neither_out_dir_nor_the_binary() {
    let _guard = lock();
    let fixture = Fixture::new("canary");
    let canary = marker("canary");
    // A new value in the YAML forces the build script to run with the
    // canary in its environment.
    let run = marker("run");
    let triage = triage_yaml().replace(
        "Classify: {{ text }}",
        &format!("Classify ({run}): {{{{ text }}}}"),
    );
    fixture.set_pipelines(&[("triage.yaml", &triage), ("batch.yml", &batch_yaml())]);
    let env = [("ELSPETH_CANARY_SECRET", canary.as_str())];
    let build = fixture.build(&env);
    assert!(build.ok, "{}", build.stderr);
    assert!(build.ran_build_script());
    assert!(!build.stderr.contains(&canary));

    let mut files = Vec::new();
    for entry in std::fs::read_dir(target_dir().join("debug/build")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("elspeth-fixture-")
        {
            files_under(&path, &mut files);
        }
    }
    for entry in std::fs::read_dir(target_dir().join("debug/deps")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("elspeth_fixture")
        {
            files.push(path);
        }
    }
    files.push(fixture.binary());
    let generated: Vec<String> = files
        .iter()
        .filter(|f| f.ends_with("out/elspeth_pipelines.rs"))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .filter(|text| text.contains(&run))
        .collect();
    assert_eq!(
        generated.len(),
        1,
        "this build's generated file is among the scanned files"
    );
    assert!(
        generated[0].contains("\"${ELSPETH_CANARY_SECRET}\""),
        "the reference is kept"
    );
    assert!(files.len() >= 4, "scanned {files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !contains(&bytes, canary.as_bytes()),
            "the build-time secret leaked into {}",
            file.display()
        );
    }
    let binary = std::fs::read(fixture.binary()).unwrap();
    assert!(
        contains(&binary, b"${ELSPETH_CANARY_SECRET}"),
        "the binary holds the reference"
    );

    // At run time the reference resolves from the environment.
    let out = fixture.run(&env);
    assert_eq!(out["api_key_len_at_run_time"], canary.len());
}

// ---------------------------------------------------------------- invalid

const GOOD: &str = "\
name: good
source: { plugin: jsonl, path: in.jsonl }
transforms:
  - plugin: openrouter_llm
    options:
      model: openai/gpt-4o-mini
      api_key: ${OPENROUTER_API_KEY}
      prompt_template: 'Classify: {{ text }}'
sink: { plugin: jsonl, path: out.jsonl }
";

/// Builds the `invalid` copy with exactly `files` as its pipelines and
/// expects the build to fail in the build script.
fn build_invalid(files: &[(&str, &str)]) -> Build {
    let fixture = Fixture::new("invalid");
    fixture.set_pipelines(files);
    let build = fixture.build(&[]);
    assert!(
        !build.ok,
        "an invalid pipeline must fail the build:\n{}",
        build.stderr
    );
    assert!(
        build.stderr.contains("build script logged errors"),
        "{}",
        build.stderr
    );
    assert!(
        !build.stderr.contains("failed to run custom build command"),
        "errors are logged, not a crashed build script:\n{}",
        build.stderr
    );
    build
}

/// Asserts that the report holds `message` located at `location`
/// (` --> file:line:col`) on the next line.
fn assert_reported(build: &Build, message: &str, location: &str) {
    let lines = build.reported();
    let at = lines.iter().position(|l| *l == message).unwrap_or_else(|| {
        panic!(
            "`{message}` not reported; report:\n{}",
            build.reported_text()
        )
    });
    assert_eq!(
        lines.get(at + 1).map(|l| l.trim_start()),
        Some(location),
        "report:\n{}",
        build.reported_text()
    );
}

#[test]
fn invalid_yaml_fails_the_build_with_every_problem_of_every_file() {
    let _guard = lock();
    let missing_key = GOOD.replace(
        "      prompt_template: 'Classify: {{ text }}'\n",
        "      prompt_template: 'Classify: {{ text }}'\n      tracing:\n        provider: langfuse\n        public_key: ${LANGFUSE_PUBLIC_KEY}\n",
    );
    let unknown_provider = GOOD
        .replace("name: good", "name: other")
        .replace(
            "      prompt_template: 'Classify: {{ text }}'\n",
            "      prompt_template: 'Classify: {{ text }}'\n      temprature: 0.5\n      tracing: { provider: langfus }\n",
        );
    let build = build_invalid(&[
        ("a.yaml", &missing_key),
        ("b.yaml", &unknown_provider),
        ("c.yaml", GOOD),
    ]);
    assert_reported(
        &build,
        "error: langfuse tracing requires secret_key. Use ${LANGFUSE_SECRET_KEY} in YAML.",
        "--> pipelines/a.yaml:10:9",
    );
    let report = build.reported_text();
    assert!(
        report.contains("--> pipelines/b.yaml:9:7"),
        "unknown field located:\n{report}"
    );
    assert!(
        report.contains("temperature"),
        "did you mean `temperature`:\n{report}"
    );
    assert!(
        report.contains("--> pipelines/b.yaml:10:28"),
        "unknown provider located:\n{report}"
    );
    assert!(
        report.contains("langfuse"),
        "did you mean `langfuse`:\n{report}"
    );
    assert!(
        !report.contains("c.yaml"),
        "a valid file adds nothing:\n{report}"
    );
    // The closing line counts the errors reported above it.
    let errors = build
        .reported()
        .iter()
        .filter(|l| l.starts_with("error: "))
        .count();
    assert!(
        report.ends_with(&format!(
            "elspeth: {errors} errors in the pipeline YAML above; fix them and build again (`elspeth validate <file>` shows the same report)"
        )),
        "{report}"
    );
}

#[test]
fn yaml_syntax_errors_fail_the_build() {
    let _guard = lock();
    let broken = GOOD.replace(
        "sink: { plugin: jsonl, path: out.jsonl }",
        "sink: { plugin: jsonl, path: out.jsonl",
    );
    let build = build_invalid(&[("broken.yaml", &broken)]);
    let report = build.reported_text();
    assert!(
        report
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("error: ")),
        "{report}"
    );
    assert!(report.contains("--> pipelines/broken.yaml:"), "{report}");
}

#[test]
fn literal_secrets_and_secret_defaults_are_build_errors_and_never_printed() {
    let _guard = lock();
    let literal = marker("sk-live");
    let default = marker("sk-default");
    let with_literal = GOOD.replace("${OPENROUTER_API_KEY}", &literal);
    let with_default = GOOD.replace("name: good", "name: defaulted").replace(
        "${OPENROUTER_API_KEY}",
        &format!("${{OPENROUTER_API_KEY:-{default}}}"),
    );
    let build = build_invalid(&[
        ("literal.yaml", &with_literal),
        ("default.yaml", &with_default),
    ]);
    assert!(
        !build.stderr.contains(&literal),
        "a literal secret was printed:\n{}",
        build.stderr
    );
    assert!(
        !build.stderr.contains(&default),
        "a secret default was printed:\n{}",
        build.stderr
    );
    let report = build.reported_text();
    assert!(
        report.contains("--> pipelines/literal.yaml:7:16"),
        "{report}"
    );
    assert!(report.contains("literal secret"), "{report}");
    assert!(
        report.contains("generated code never holds a secret value"),
        "{report}"
    );
    assert_reported(
        &build,
        "error: `transforms[0].options.api_key` gives its secret a default value, which would be compiled into the binary",
        "--> pipelines/default.yaml:7:16",
    );
    assert!(
        !report.contains("warning:"),
        "a promoted warning is not also a warning:\n{report}"
    );
}

#[test]
fn two_pipelines_with_one_module_name_fail_the_build() {
    let _guard = lock();
    let a = GOOD.replace("name: good", "name: ticket-triage");
    let b = GOOD.replace("name: good", "name: ticket_triage");
    let build = build_invalid(&[("a.yaml", &a), ("b.yaml", &b)]);
    assert_eq!(
        build.reported()[0],
        "error: pipelines `ticket-triage` (pipelines/a.yaml) and `ticket_triage` (pipelines/b.yaml) both become the Rust module `pipelines::ticket_triage`; give one of them another `name`"
    );
}
