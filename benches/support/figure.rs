//! The machine-readable figure line every bench prints next to its human
//! output, and its parser (used by `benches/report.rs`).
//!
//! One line per figure, on stdout, ten tab-separated fields:
//!
//! ```text
//! figure <id> <what> <value> <unit> <anchor> <anchor value> <ratio> <target> <status>
//! ```
//!
//! - `id`: stable dotted name, e.g. `schema.vs_python`;
//! - `what`: one-line description of what was measured;
//! - `value` and `unit`: the measured figure (`-` when skipped);
//! - `anchor` and `anchor value`: what the figure is compared with (Python
//!   jsonschema, the Langfuse Python SDK, the untraced run, the plain call,
//!   the ideal, …) and its value with its unit, or `-` when there is none;
//! - `ratio`: the comparison the target is stated in (`21.3×`, `98.7%`), or `-`;
//! - `target`: the target as stated in the issue (`≤ 20 ms`), or `-`;
//! - `status`: `ok`, `below` (the target is missed, whichever direction it
//!   points), `info` (no target: context only) or `skipped (why)`.
//!
//! Fields never hold tabs or newlines (they are replaced by spaces).
//!
//! The file lives in the root crate's `benches/support/` (a folder, so cargo
//! does not take it for a bench target); every bench includes it with
//! `#[path = "…/benches/support/figure.rs"] mod figure;`, so there is one
//! definition of the format. Each bench uses a part of it.
#![allow(dead_code)]

use std::fmt::Display;
use std::path::PathBuf;
use std::time::SystemTime;

/// Whether the binary runs as `cargo bench` (which passes `--bench`), not as
/// a smoke run under `cargo test --benches`.
pub(crate) fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Runs criterion groups as `criterion_main!` does; then, under `cargo
/// bench`, returns when the run started (for [`criterion_median_ns`]), and
/// `None` under `cargo test --benches`.
pub(crate) fn criterion_main(groups: impl FnOnce()) -> Option<SystemTime> {
    let started = SystemTime::now();
    groups();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    bench_mode().then_some(started)
}

/// Whether a figure meets its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// The target is met.
    Ok,
    /// The target is missed.
    Below,
    /// No target: the figure is context for the others.
    Info,
    /// Not measured, with the reason.
    Skipped(String),
}

impl Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Ok => f.write_str("ok"),
            Status::Below => f.write_str("below"),
            Status::Info => f.write_str("info"),
            Status::Skipped(why) => write!(f, "skipped ({why})"),
        }
    }
}

/// One figure: built with [`Figure::new`] and the setters, printed with
/// [`Figure::print`].
///
/// ```ignore
/// Figure::new("schema.validate", "validate 1,000 transforms", format!("{ms:.2}"), "ms")
///     .target("≤ 20 ms", ms <= 20.0)
///     .print();
/// ```
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Figure {
    /// Stable dotted name, e.g. `schema.vs_python`.
    pub id: String,
    /// What was measured, one line.
    pub what: String,
    /// The measured value (`-` when skipped).
    pub value: String,
    /// The value's unit.
    pub unit: String,
    /// What the figure is compared with, or `-`.
    pub anchor: String,
    /// The anchor's value with its unit, or `-`.
    pub anchor_value: String,
    /// The comparison the target is stated in, or `-`.
    pub ratio: String,
    /// The target as stated in the issue, or `-`.
    pub target: String,
    /// Whether the target is met.
    pub status: Status,
}

/// A field as printed: `-` when empty, no tabs or newlines.
fn field(s: impl Display) -> String {
    let s = s.to_string().replace(['\t', '\n', '\r'], " ");
    if s.trim().is_empty() {
        "-".into()
    } else {
        s.trim().to_string()
    }
}

impl Figure {
    /// A figure with no anchor and no target (status `info` until
    /// [`Figure::target`] is called).
    pub(crate) fn new(id: &str, what: &str, value: impl Display, unit: &str) -> Self {
        Self {
            id: field(id),
            what: field(what),
            value: field(value),
            unit: field(unit),
            anchor: "-".into(),
            anchor_value: "-".into(),
            ratio: "-".into(),
            target: "-".into(),
            status: Status::Info,
        }
    }

    /// A figure that could not be measured, and why.
    pub(crate) fn skipped(id: &str, what: &str, target: &str, why: impl Display) -> Self {
        let mut f = Self::new(id, what, "-", "-");
        f.target = field(target);
        f.status = Status::Skipped(field(why));
        f
    }

    /// What the figure is compared with, and its value (with its unit).
    pub(crate) fn anchor(mut self, name: &str, value: impl Display) -> Self {
        self.anchor = field(name);
        self.anchor_value = field(value);
        self
    }

    /// The comparison the target is stated in, formatted (`21.3×`, `98.7%`).
    pub(crate) fn ratio(mut self, ratio: impl Display) -> Self {
        self.ratio = field(ratio);
        self
    }

    /// The target as stated, and whether the figure meets it.
    pub(crate) fn target(mut self, target: &str, ok: bool) -> Self {
        self.target = field(target);
        self.status = if ok { Status::Ok } else { Status::Below };
        self
    }

    /// The line, without a trailing newline.
    pub(crate) fn line(&self) -> String {
        [
            "figure",
            &self.id,
            &self.what,
            &self.value,
            &self.unit,
            &self.anchor,
            &self.anchor_value,
            &self.ratio,
            &self.target,
            &self.status.to_string(),
        ]
        .join("\t")
    }

    /// Prints the line on stdout.
    pub(crate) fn print(&self) {
        println!("{}", self.line());
    }

    /// Parses a line printed by [`Figure::print`]; `None` for any other line.
    pub(crate) fn parse(line: &str) -> Option<Self> {
        let parts: Vec<&str> = line.trim_end_matches(['\r', '\n']).split('\t').collect();
        let [
            "figure",
            id,
            what,
            value,
            unit,
            anchor,
            anchor_value,
            ratio,
            target,
            status,
        ] = parts.as_slice()
        else {
            return None;
        };
        let status = match *status {
            "ok" => Status::Ok,
            "below" => Status::Below,
            "info" => Status::Info,
            s => Status::Skipped(s.strip_prefix("skipped (")?.strip_suffix(')')?.to_string()),
        };
        Some(Self {
            id: id.to_string(),
            what: what.to_string(),
            value: value.to_string(),
            unit: unit.to_string(),
            anchor: anchor.to_string(),
            anchor_value: anchor_value.to_string(),
            ratio: ratio.to_string(),
            target: target.to_string(),
            status,
        })
    }
}

/// Where criterion keeps its results, found the way criterion finds it:
/// `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else the target
/// directory `cargo metadata` names, else `target/criterion`.
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("criterion");
    }
    let from_metadata = std::env::var_os("CARGO").and_then(|cargo| {
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(PathBuf::from(v["target_directory"].as_str()?))
    });
    from_metadata
        .map(|d| d.join("criterion"))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median time per iteration, in ns, of the criterion benchmark whose
/// results folder is `dir` (criterion's id with `?"/\*<>:|^` in each part
/// replaced by `_`, e.g. `validate 1000 transforms/end to end (validate_file)`),
/// as measured by this process: a result older than `since` (left by an
/// earlier run, e.g. when a filter skipped the benchmark) is an error.
pub(crate) fn criterion_median_ns(dir: &str, since: SystemTime) -> Result<f64, String> {
    let path = criterion_home()
        .join(dir)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("no criterion result at {} ({e})", path.display()))?;
    if modified < since {
        return Err(format!(
            "criterion result at {} is from an earlier run (filtered out?)",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {} ({e})", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("bad {} ({e})", path.display()))?;
    v["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("no median in {}", path.display()))
}
