//! Outputs of a run: never the same file as an input, replaced atomically
//! (the previous content stays until the run commits, and when it writes
//! nothing).

use std::path::{Path, PathBuf};

use elspeth_runtime::pipeline::{CancelToken, Pipeline, RunError, RunOptions};
use elspeth_schema::config::PipelineConfig;
use elspeth_schema::paths::PathClash;
use serde_json::{Value, json};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("elspeth-outputs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(source: Value, sink: Value) -> PipelineConfig {
    serde_json::from_value(json!({"name": "t", "source": source, "transforms": [], "sink": sink}))
        .unwrap()
}

fn rows(n: usize) -> String {
    (0..n).map(|i| format!("{{\"n\":{i}}}\n")).collect()
}

/// Files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn an_output_that_is_an_input_is_refused_before_anything_is_written() {
    let dir = tmpdir("clash");
    let input = rows(20);
    std::fs::write(dir.join("in.jsonl"), &input).unwrap();
    std::fs::write(dir.join("p.yaml"), "# the pipeline\n").unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let abs = dir.join("in.jsonl").canonicalize().unwrap();
    let abs = abs.to_str().unwrap();
    let cases = [
        json!({"plugin": "jsonl", "path": "out/../in.jsonl"}),
        json!({"plugin": "jsonl", "path": ".//in.jsonl"}),
        json!({"plugin": "jsonl", "path": abs}),
        json!({"plugin": "csv", "path": abs}),
        json!({"plugin": "jsonl", "path": "out.jsonl", "error_path": "in.jsonl"}),
        json!({"plugin": "jsonl", "path": "p.yaml"}),
        json!({"plugin": "jsonl", "path": "o.jsonl", "error_path": "./o.jsonl"}),
    ];
    for sink in cases {
        let e = Pipeline::new(
            config(json!({"plugin": "jsonl", "path": "in.jsonl"}), sink.clone()),
            &dir,
        )
        .with_file(dir.join("p.yaml"))
        .run(RunOptions::default())
        .await
        .unwrap_err();
        assert!(matches!(e, RunError::PathClash(_)), "{sink}: {e}");
        assert_eq!(
            std::fs::read_to_string(dir.join("in.jsonl")).unwrap(),
            input,
            "{sink}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("p.yaml")).unwrap(),
            "# the pipeline\n"
        );
        assert_eq!(
            names(&dir),
            ["in.jsonl", "out", "p.yaml"],
            "{sink}: nothing created"
        );
    }
    // The hook for more outputs (the run store).
    let p = Pipeline::new(
        config(
            json!({"plugin": "jsonl", "path": "in.jsonl"}),
            json!({"plugin": "jsonl", "path": "out.jsonl"}),
        ),
        &dir,
    );
    let store = dir.join("out/../out.jsonl");
    assert!(matches!(
        p.check_outputs(&[("run store", &store)]),
        Err(PathClash::Outputs {
            output_index: 1,
            ..
        })
    ));
    assert!(
        p.check_outputs(&[("run store", &dir.join("store.db"))])
            .is_ok()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_or_hard_link_to_the_source_is_refused() {
    let dir = tmpdir("links");
    let input = "a,b\n1,2\n3,4\n";
    std::fs::write(dir.join("in.csv"), input).unwrap();
    std::os::unix::fs::symlink(dir.join("in.csv"), dir.join("sym.csv")).unwrap();
    std::fs::hard_link(dir.join("in.csv"), dir.join("hard.csv")).unwrap();
    for path in ["sym.csv", "hard.csv"] {
        let e = Pipeline::new(
            config(
                json!({"plugin": "csv", "path": "in.csv"}),
                json!({"plugin": "csv", "path": path}),
            ),
            &dir,
        )
        .run(RunOptions::default())
        .await
        .unwrap_err();
        assert!(matches!(e, RunError::PathClash(_)), "{path}: {e}");
        assert_eq!(std::fs::read_to_string(dir.join("in.csv")).unwrap(), input);
    }
}

#[tokio::test]
async fn limit_0_and_a_cancel_before_the_first_row_keep_the_previous_output() {
    let dir = tmpdir("limit0");
    std::fs::write(dir.join("in.jsonl"), rows(10)).unwrap();
    std::fs::write(dir.join("out.jsonl"), "previous\n").unwrap();
    let cfg = config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        json!({"plugin": "jsonl", "path": "out.jsonl", "error_path": "errors.jsonl"}),
    );
    let summary = Pipeline::new(cfg.clone(), &dir)
        .run(RunOptions::default().with_limit(Some(0)))
        .await
        .unwrap();
    assert_eq!(summary.rows_read, 0);
    assert_eq!(
        std::fs::read_to_string(dir.join("out.jsonl")).unwrap(),
        "previous\n"
    );
    assert_eq!(
        names(&dir),
        ["in.jsonl", "out.jsonl"],
        "no error file, no temp file"
    );

    let cancel = CancelToken::new();
    cancel.cancel();
    let summary = Pipeline::new(cfg.clone(), &dir)
        .run(RunOptions::default().with_cancel(cancel))
        .await
        .unwrap();
    assert!(summary.interrupted);
    assert_eq!(
        std::fs::read_to_string(dir.join("out.jsonl")).unwrap(),
        "previous\n"
    );

    // A whole run replaces it.
    let summary = Pipeline::new(cfg, &dir)
        .run(RunOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.rows_ok, 10);
    assert_eq!(
        std::fs::read_to_string(dir.join("out.jsonl")).unwrap(),
        rows(10)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("errors.jsonl")).unwrap(),
        ""
    );
    assert_eq!(names(&dir), ["errors.jsonl", "in.jsonl", "out.jsonl"]);
}

#[tokio::test]
async fn a_source_failing_after_the_start_keeps_the_previous_output() {
    let dir = tmpdir("badsource");
    // A folder opens like a file on unix, and fails at the first read.
    std::fs::create_dir_all(dir.join("in.jsonl")).unwrap();
    std::fs::write(dir.join("out.jsonl"), "previous\n").unwrap();
    let cfg = config(
        json!({"plugin": "jsonl", "path": "in.jsonl"}),
        json!({"plugin": "jsonl", "path": "out.jsonl"}),
    );
    let e = Pipeline::new(cfg, &dir)
        .run(RunOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e.cause(), RunError::Source { .. }), "{e}");
    assert_eq!(
        std::fs::read_to_string(dir.join("out.jsonl")).unwrap(),
        "previous\n"
    );
    assert_eq!(names(&dir), ["in.jsonl", "out.jsonl"]);
}
