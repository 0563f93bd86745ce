//! Compares elspeth's end-to-end validation with Python `jsonschema`
//! (Draft7Validator) + PyYAML on the same 1,000-transform file and the same
//! schema, and prints both timings and the ratio.
//!
//! `cargo bench -p elspeth-schema --bench compare`
//!
//! PyYAML and jsonschema are installed into a virtualenv under
//! `target/bench-venv` on first use (pip); when that is not possible the
//! Python side is skipped with a message.
//!
//! Under `cargo bench` it also prints the `figure` line of
//! `benches/support/figure.rs` (`schema.vs_python`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use elspeth_schema::{ValidateOptions, validate_file};

#[path = "common.rs"]
mod common;
#[path = "../../benches/support/figure.rs"]
mod figure;

const ITERATIONS: usize = 40;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it too: keep that quick.
    let quick = std::env::args().any(|a| a == "--test") || std::env::args().all(|a| a != "--bench");
    let iterations = if quick { 2 } else { ITERATIONS };
    let path = common::pipeline_file();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline.schema.json");
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "validating {} ({} KiB, 1000 transforms), {iterations} iterations",
        path.display(),
        size / 1024
    );

    let opts = ValidateOptions::default();
    let warm = validate_file(&path, &opts); // compiles the schema once
    assert!(warm.diagnostics.is_empty(), "{}", warm.render());
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let v = validate_file(&path, &opts);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(v.config.is_some());
    }
    let rust = median(&mut times);
    println!(
        "elspeth  (read + YAML + ${{VAR}} + JSON Schema + semantic rules): median {rust:.2} ms, min {:.2} ms",
        times[0]
    );

    if quick {
        println!("python   skipped (not run as `cargo bench`)");
        return;
    }
    let (id, target) = ("schema.vs_python", "≥ 10×");
    let what = format!(
        "validate the same 1,000-transform file, elspeth end to end vs Python schema only, median of {iterations}"
    );
    match python(&path, &schema, iterations) {
        Ok(py) => {
            println!(
                "python   (PyYAML {} + jsonschema Draft7Validator, schema only): median {:.2} ms ({} errors)",
                py.loader, py.median_ms, py.errors
            );
            let ratio = py.median_ms / rust;
            println!("ratio    python / elspeth = {ratio:.1}x");
            figure::Figure::new(id, &what, format!("{rust:.2}"), "ms")
                .anchor(
                    &format!(
                        "Python jsonschema {} Draft7Validator + PyYAML {} {}",
                        py.jsonschema, py.pyyaml, py.loader
                    ),
                    format!("{:.2} ms", py.median_ms),
                )
                .ratio(format!("{ratio:.1}×"))
                .target(target, ratio >= 10.0)
                .print();
        }
        Err(why) => {
            println!("python   skipped: {why}");
            let mut skipped = figure::Figure::skipped(id, &what, target, &why);
            skipped.value = format!("{rust:.2}");
            skipped.unit = "ms".into();
            skipped.print();
        }
    }
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// What the Python baseline reports.
struct Baseline {
    loader: String,
    jsonschema: String,
    pyyaml: String,
    median_ms: f64,
    errors: u64,
}

/// Why the Python baseline could not be measured.
#[derive(Debug, thiserror::Error)]
enum BaselineError {
    #[error("python3 not found ({0})")]
    NoPython(#[source] std::io::Error),
    #[error("`python3 -m venv` failed")]
    Venv,
    #[error("cannot run the venv's python: {0}")]
    Run(#[source] std::io::Error),
    #[error("pip could not install pyyaml and jsonschema")]
    Pip,
    #[error("the baseline failed: {0}")]
    Failed(String),
    #[error("bad output: {0}")]
    Output(#[source] serde_json::Error),
}

/// Runs the Python baseline.
fn python(file: &Path, schema: &Path, iterations: usize) -> Result<Baseline, BaselineError> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-venv");
    let py = venv.join("bin/python");
    if !py.exists() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map_err(BaselineError::NoPython)?;
        if !status.success() {
            return Err(BaselineError::Venv);
        }
    }
    let have = Command::new(&py)
        .args(["-c", "import yaml, jsonschema"])
        .output()
        .map_err(BaselineError::Run)?;
    if !have.status.success() {
        println!(
            "python   installing pyyaml and jsonschema into {}",
            venv.display()
        );
        let pip = Command::new(&py)
            .args(["-m", "pip", "install", "--quiet", "pyyaml", "jsonschema"])
            .status()
            .map_err(BaselineError::Run)?;
        if !pip.success() {
            return Err(BaselineError::Pip);
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python_baseline.py");
    let out = Command::new(&py)
        .arg(script)
        .arg(file)
        .arg(schema)
        .arg(iterations.to_string())
        .output()
        .map_err(BaselineError::Run)?;
    if !out.status.success() {
        return Err(BaselineError::Failed(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(BaselineError::Output)?;
    let text = |key: &str| v[key].as_str().unwrap_or("?").to_string();
    Ok(Baseline {
        loader: text("loader"),
        jsonschema: text("jsonschema"),
        pyyaml: text("pyyaml"),
        median_ms: v["median_ms"].as_f64().unwrap_or(f64::NAN),
        errors: v["errors"].as_u64().unwrap_or(0),
    })
}
