//! The example pipelines: every file in `examples/pipelines/` is valid with
//! no diagnostic at all, and every file in `examples/invalid/` produces
//! exactly the diagnostics in its `.expected` file.
//!
//! To update the `.expected` files after an intended change to messages:
//! `ELSPETH_BLESS=1 cargo test -p elspeth-schema --test examples`, then
//! review the diff.

use std::path::{Path, PathBuf};

use elspeth_schema::config::{TracingProvider, TransformConfig};
use elspeth_schema::{ValidateOptions, validate_file};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_pipeline_is_valid_without_warnings() {
    let dir = repo().join("examples/pipelines");
    let files = yaml_files(&dir);
    let mut combos = std::collections::BTreeSet::new();
    for file in &files {
        let v = validate_file(file, &ValidateOptions::default());
        assert!(
            v.diagnostics.is_empty(),
            "{} is not clean:\n{}",
            file.display(),
            v.render()
        );
        let config = v.config.expect("valid config");
        let text = std::fs::read_to_string(file).unwrap();
        // The config assembled part by part equals a whole-document read.
        let json = elspeth_schema::yaml::parse(&text, &Default::default())
            .root
            .unwrap()
            .to_json();
        let whole: elspeth_schema::config::PipelineConfig = serde_json::from_value(json).unwrap();
        assert_eq!(config, whole, "{}", file.display());
        assert!(
            text.starts_with("# yaml-language-server: $schema=../../schema/pipeline.schema.json\n"),
            "{} lacks the schema modeline",
            file.display()
        );
        for t in &config.transforms {
            let provider = t.tracing().map_or(TracingProvider::None, |c| c.provider());
            combos.insert((t.plugin(), provider));
        }
    }
    for plugin in TransformConfig::PLUGINS {
        for provider in TracingProvider::ALL {
            assert!(
                combos.contains(&(plugin, provider)),
                "no example for {plugin} with tracing provider {provider}"
            );
        }
    }
}

#[test]
fn every_invalid_example_gives_its_expected_diagnostics() {
    let dir = repo().join("examples/invalid");
    let bless = std::env::var_os("ELSPETH_BLESS").is_some();
    let files = yaml_files(&dir);
    assert!(files.len() >= 25, "only {} invalid examples", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let v = validate_file(file, &ValidateOptions::default());
        // Render with the path as written from the repository root.
        let label = format!("examples/invalid/{name}");
        let mut got = v.render().replace(&file.display().to_string(), &label);
        if !got.ends_with('\n') {
            got.push('\n');
        }
        if name.starts_with("warning-") {
            assert!(!v.has_errors(), "{name} should only warn:\n{got}");
            assert!(v.config.is_some(), "{name}: warnings keep the config");
        } else {
            assert!(v.has_errors(), "{name} is valid but should not be");
            assert!(v.config.is_none());
        }
        let expected_path = file.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == got => {}
            Ok(expected) => failures.push(format!(
                "{name}: diagnostics differ\n--- expected\n{expected}--- got\n{got}"
            )),
            Err(_) => failures.push(format!("{name}: no {}", expected_path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(run with ELSPETH_BLESS=1 to update the .expected files, then review the diff)",
        failures.join("\n")
    );
}
