//! The benchmarks report: runs every bench that measures a figure named in
//! the issues, each as its own `cargo bench` subprocess, one after the
//! other, collects their `figure` lines (format: `benches/support/figure.rs`)
//! and prints one table: each figure with its anchor (Python jsonschema,
//! the Langfuse Python SDK, the untraced run, the plain call, the ideal),
//! the ratio, the target and whether it is met.
//!
//! ```text
//! cargo bench --bench report                                  # print the table
//! cargo bench --bench report -- --write docs/benchmarks.md    # and record it
//! ```
//!
//! Options (after `--`):
//! - `--write FILE` (or `ELSPETH_BENCH_WRITE=FILE`): rewrite the generated
//!   section of FILE (relative to the workspace root) with the table, the
//!   date, the machine (nproc, CPU model, load average at start), the commit
//!   and the command;
//! - `--only TEXT`: run only the benches whose `package/name` contains TEXT
//!   (not with `--write`: the record is always the full report);
//! - `--quick`: shorter criterion warm-up and measurement times
//!   (`--warm-up-time 1 --measurement-time 2`), for a look, not a record;
//! - `--verbose`: echo each bench's own output as it runs.
//!
//! Each bench's full output goes to `target/bench-report/<package>-<name>.log`.
//! A bench that cannot measure (no Python, no PyPI, no /proc) reports its
//! figure as `skipped (why)`; a bench that fails leaves its figures
//! `missing` and the report exits non-zero after printing what it has.
//!
//! The report is `bench = false` (a plain `cargo bench` runs each bench
//! once, not twice) and `test = true`: `cargo test` runs it without
//! `--bench`, which only checks the line format, the table and the section
//! rewrite on built-in lines.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "support/figure.rs"]
mod figure;

use figure::{Figure, Status};

/// One bench run by the report, and the figures it must print.
struct Bench {
    package: &'static str,
    name: &'static str,
    /// Arguments after `--`.
    args: &'static [&'static str],
    /// Whether it is a criterion bench (takes `--quick`'s times).
    criterion: bool,
    figures: &'static [&'static str],
}

impl Bench {
    fn label(&self) -> String {
        let mut label = format!("{}/{}", self.package, self.name);
        for a in self.args {
            let _ = write!(label, " {a}");
        }
        label
    }

    /// The command that runs this bench alone (as the docs show it).
    fn command(&self) -> String {
        let mut cmd = String::from("cargo bench");
        if self.package != "elspeth" {
            let _ = write!(cmd, " -p {}", self.package);
        }
        let _ = write!(cmd, " --bench {}", self.name);
        if !self.args.is_empty() {
            let _ = write!(cmd, " -- {}", self.args.join(" "));
        }
        cmd
    }
}

/// Every bench behind a figure of issues 2–5, in the order they run.
const BENCHES: &[Bench] = &[
    Bench {
        package: "elspeth-schema",
        name: "validate",
        args: &[],
        criterion: true,
        figures: &["schema.validate"],
    },
    Bench {
        package: "elspeth-schema",
        name: "compare",
        args: &[],
        criterion: false,
        figures: &["schema.vs_python"],
    },
    Bench {
        package: "elspeth",
        name: "llm_transform",
        args: &[],
        criterion: true,
        figures: &["macro.added_none", "macro.added_active"],
    },
    Bench {
        package: "elspeth-telemetry",
        name: "record_cost",
        args: &[],
        criterion: true,
        figures: &[
            "telemetry.record_cost",
            "telemetry.record_cost_content_off",
            "telemetry.record_cost_saturated",
            "telemetry.record_allocations",
        ],
    },
    Bench {
        package: "elspeth-telemetry",
        name: "vs_langfuse_python",
        args: &[],
        criterion: false,
        figures: &["telemetry.vs_langfuse_python"],
    },
    Bench {
        package: "elspeth-cli",
        name: "tracing_cpu",
        args: &[],
        criterion: false,
        figures: &["telemetry.vs_langfuse_python_process"],
    },
    Bench {
        package: "elspeth-telemetry",
        name: "memory",
        args: &[],
        criterion: false,
        figures: &["telemetry.memory_growth", "telemetry.spans_accounted"],
    },
    Bench {
        package: "elspeth-runtime",
        name: "throughput",
        args: &[],
        criterion: false,
        figures: &[
            "runtime.throughput_untraced",
            "runtime.throughput_langfuse",
            "runtime.throughput_azure_ai",
        ],
    },
    Bench {
        package: "elspeth-cli",
        name: "shards",
        args: &[],
        criterion: false,
        figures: &["runtime.shards_speedup"],
    },
    Bench {
        package: "elspeth-runtime",
        name: "store",
        args: &[],
        criterion: false,
        figures: &[
            "runtime.throughput_store",
            "runtime.stored_rerun",
            "runtime.store_size",
        ],
    },
    Bench {
        package: "elspeth-runtime",
        name: "memory",
        args: &[],
        criterion: false,
        figures: &["runtime.memory"],
    },
    Bench {
        package: "elspeth-runtime",
        name: "memory",
        args: &["--traced"],
        criterion: false,
        figures: &["runtime.memory_traced"],
    },
];

/// Criterion flags `--quick` passes.
const QUICK_CRITERION: &[&str] = &["--warm-up-time", "1", "--measurement-time", "2"];

/// The env var that names the file to write, like `--write`.
const WRITE_ENV: &str = "ELSPETH_BENCH_WRITE";

/// The markers around the generated section of the docs file.
const BEGIN: &str = "<!-- BEGIN figures: generated by `cargo bench --bench report -- --write docs/benchmarks.md`; do not edit by hand -->";
const END: &str = "<!-- END figures -->";

#[derive(Default)]
struct Options {
    write: Option<PathBuf>,
    write_from_env: bool,
    only: Option<String>,
    quick: bool,
    verbose: bool,
    /// The arguments as given (without cargo's `--bench`), for the record.
    given: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--bench" {
            continue; // added by `cargo bench`
        }
        o.given.push(a.clone());
        let mut value = |flag: &str| -> Result<String, String> {
            let v = it
                .next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value, e.g. `{flag} docs/benchmarks.md`"))?;
            o.given.push(v.clone());
            Ok(v)
        };
        match a.as_str() {
            "--write" => o.write = Some(value("--write")?.into()),
            "--only" => o.only = Some(value("--only")?),
            "--quick" => o.quick = true,
            "--verbose" => o.verbose = true,
            s if s.starts_with("--write=") => o.write = Some(s["--write=".len()..].into()),
            s if s.starts_with("--only=") => o.only = Some(s["--only=".len()..].into()),
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: cargo bench --bench report -- [--write FILE] [--only TEXT] [--quick] [--verbose]"
                ));
            }
        }
    }
    if o.write.is_none()
        && let Some(path) = std::env::var_os(WRITE_ENV).filter(|p| !p.is_empty())
    {
        o.write = Some(path.into());
        o.write_from_env = true;
    }
    if o.write.is_some() && o.only.is_some() {
        return Err("--write records the full report: drop --only (or run without --write)".into());
    }
    if o.write.is_some() && o.quick {
        return Err(
            "--write records the full report with each bench's own criterion times: drop --quick"
                .into(),
        );
    }
    Ok(o)
}

/// The command line that produced the report, as the record shows it.
fn command_line(o: &Options) -> String {
    let mut cmd = String::new();
    if o.write_from_env
        && let Some(path) = &o.write
    {
        let _ = write!(cmd, "{WRITE_ENV}={} ", path.display());
    }
    cmd.push_str("cargo bench --bench report");
    if !o.given.is_empty() {
        cmd.push_str(" --");
        for a in &o.given {
            if a.contains(char::is_whitespace) {
                let _ = write!(cmd, " '{a}'");
            } else {
                let _ = write!(cmd, " {a}");
            }
        }
    }
    cmd
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// What one bench run produced.
struct Outcome {
    figures: Vec<Figure>,
    elapsed: Duration,
    /// Why the run failed (exit status, or the command could not start).
    failure: Option<String>,
    log: PathBuf,
}

/// Runs one bench as `cargo bench -p … --bench … [-- args]`, its output
/// going to a log file (and to the terminal with `--verbose`).
fn run(bench: &Bench, o: &Options, log_dir: &Path) -> Outcome {
    let started = Instant::now();
    let mut file_name = format!("{}-{}", bench.package, bench.name);
    for a in bench.args {
        file_name.push('-');
        file_name.push_str(a.trim_start_matches('-'));
    }
    let log = log_dir.join(format!("{file_name}.log"));
    let fail = |why: String, figures: Vec<Figure>| Outcome {
        figures,
        elapsed: started.elapsed(),
        failure: Some(why),
        log: log.clone(),
    };
    let mut log_file = match std::fs::File::create(&log) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot create {} ({e})", log.display()), vec![]),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["bench", "-p", bench.package, "--bench", bench.name]);
    let mut extra: Vec<&str> = bench.args.to_vec();
    if o.quick && bench.criterion {
        extra.extend_from_slice(QUICK_CRITERION);
    }
    if !extra.is_empty() {
        cmd.arg("--").args(&extra);
    }
    let _ = writeln!(log_file, "$ {cmd:?}");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    if o.verbose {
        cmd.stderr(Stdio::inherit());
    } else {
        match log_file.try_clone() {
            Ok(f) => cmd.stderr(f),
            Err(e) => return fail(format!("cannot share {} ({e})", log.display()), vec![]),
        };
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot run cargo ({e})"), vec![]),
    };
    let mut figures = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(log_file, "{line}");
            if o.verbose {
                println!("    {line}");
            }
            if let Some(f) = Figure::parse(&line) {
                figures.push(f);
            }
        }
    }
    match child.wait() {
        Ok(status) if status.success() => Outcome {
            figures,
            elapsed: started.elapsed(),
            failure: None,
            log,
        },
        Ok(status) => fail(format!("exited with {status}"), figures),
        Err(e) => fail(format!("could not be waited for ({e})"), figures),
    }
}

/// The figures of one bench run in the bench's order, with a `missing` row
/// for each expected figure it did not print.
fn rows_of(bench: &Bench, outcome: &Outcome, root: &Path) -> Vec<Figure> {
    let mut rows = outcome.figures.clone();
    for id in bench.figures {
        if !rows.iter().any(|f| f.id == *id) {
            let log = outcome.log.strip_prefix(root).unwrap_or(&outcome.log);
            let why = match &outcome.failure {
                Some(failure) => format!("the bench {failure}; see {}", log.display()),
                None => format!("the bench did not print it; see {}", log.display()),
            };
            let mut f = Figure::new(
                id,
                &format!("{} did not report it", bench.label()),
                "-",
                "-",
            );
            f.status = Status::Skipped(format!("missing: {why}"));
            rows.push(f);
        }
    }
    rows
}

fn value_cell(f: &Figure) -> String {
    match (f.value.as_str(), f.unit.as_str()) {
        ("-", _) => "-".into(),
        (v, "-") => v.into(),
        (v, u) => format!("{v} {u}"),
    }
}

fn anchor_cell(f: &Figure) -> String {
    match (f.anchor.as_str(), f.anchor_value.as_str()) {
        ("-", _) => "-".into(),
        (a, "-") => a.into(),
        (a, v) => format!("{a}: {v}"),
    }
}

fn status_cell(status: &Status, markdown: bool) -> String {
    match (status, markdown) {
        (Status::Ok, _) => "ok".into(),
        (Status::Below, false) => "BELOW TARGET".into(),
        (Status::Below, true) => "**below target**".into(),
        (Status::Info, _) => "info (no target)".into(),
        (Status::Skipped(why), _) if why.starts_with("missing: ") => {
            format!("MISSING ({})", &why["missing: ".len()..])
        }
        (Status::Skipped(why), _) => format!("skipped ({why})"),
    }
}

/// The aligned terminal table.
fn terminal_table(rows: &[Figure]) -> String {
    let header = ["figure", "value", "anchor", "ratio", "target", "result"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|f| {
            [
                f.id.clone(),
                value_cell(f),
                anchor_cell(f),
                f.ratio.clone(),
                f.target.clone(),
                status_cell(&f.status, false),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |row: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                l.push_str(c);
            } else {
                let pad = w - c.chars().count();
                let _ = write!(l, "{c}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    line(&widths.map(|w| "-".repeat(w)));
    for row in &cells {
        line(row);
    }
    out
}

fn md(cell: &str) -> String {
    cell.replace('|', "\\|")
}

/// The markdown table.
fn markdown_table(rows: &[Figure]) -> String {
    let mut out = String::from(
        "| Figure | Measured | Value | Anchor | Ratio | Target | Result |\n|---|---|---|---|---|---|---|\n",
    );
    for f in rows {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            f.id,
            md(&f.what),
            md(&value_cell(f)),
            md(&anchor_cell(f)),
            md(&f.ratio),
            md(&f.target),
            md(&status_cell(&f.status, true)),
        );
    }
    out
}

/// Facts about the machine and the tree, taken when the report starts.
struct Machine {
    date: String,
    nproc: String,
    cpu: String,
    memory: String,
    load: String,
    load_1m: Option<f64>,
    rustc: String,
    commit: String,
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Machine {
    fn now() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown CPU".into());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let kib: f64 = m
                    .lines()
                    .find(|l| l.starts_with("MemTotal:"))?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                Some(format!("{:.0} GiB RAM", kib / 1024.0 / 1024.0))
            })
            .unwrap_or_else(|| "RAM unknown".into());
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let fields: Vec<&str> = loadavg.split_whitespace().take(3).collect();
        let load = if fields.len() == 3 {
            fields.join(" ")
        } else {
            "unknown".into()
        };
        let nproc = command_output("nproc", &[]).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into())
        });
        let commit = match command_output("git", &["rev-parse", "--short", "HEAD"]) {
            Some(hash) => {
                let dirty =
                    command_output("git", &["status", "--porcelain", "--untracked-files=no"])
                        .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{hash} (with uncommitted changes in the tree)")
                } else {
                    hash
                }
            }
            None => "unknown (not a git checkout)".into(),
        };
        Self {
            date: utc_date(SystemTime::now()),
            nproc,
            cpu,
            memory,
            load_1m: fields.first().and_then(|f| f.parse().ok()),
            load,
            rustc: command_output("rustc", &["--version"]).unwrap_or_else(|| "rustc ?".into()),
            commit,
        }
    }
}

/// `YYYY-MM-DD HH:MM UTC` (civil date from days since 1970, H. Hinnant's algorithm).
fn utc_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60
    )
}

fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The generated section: markers, facts, command, table.
fn section(rows: &[Figure], m: &Machine, command: &str, took: Duration) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}");
    let _ = writeln!(s);
    let _ = writeln!(s, "- Date: {}", m.date);
    let _ = writeln!(
        s,
        "- Machine: nproc {}, {}, {}; load average at start {} (1, 5, 15 min)",
        m.nproc, m.cpu, m.memory, m.load
    );
    let _ = writeln!(s, "- Toolchain: {}; commit {}", m.rustc, m.commit);
    let _ = writeln!(s, "- Command: `{command}` (took {})", duration_text(took));
    let _ = writeln!(s);
    s.push_str(&markdown_table(rows));
    let _ = writeln!(s);
    let _ = writeln!(s, "{END}");
    s
}

/// `doc` with its generated section replaced by `section` (appended when
/// the markers are missing).
fn replace_section(doc: &str, section: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => {
            let rest = doc[e + END.len()..].trim_start_matches('\n');
            let mut out = format!("{}{section}", &doc[..b]);
            if !rest.is_empty() {
                out.push('\n');
                out.push_str(rest);
            }
            out
        }
        _ => {
            let mut out = doc.trim_end().to_string();
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str("## Latest figures\n\n");
            out.push_str(section);
            out
        }
    }
}

fn write_doc(path: &Path, section: &str) -> Result<(), String> {
    let doc = match std::fs::read_to_string(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::from("# Benchmarks\n"),
        Err(e) => return Err(format!("cannot read {} ({e})", path.display())),
    };
    std::fs::write(path, replace_section(&doc, section))
        .map_err(|e| format!("cannot write {} ({e})", path.display()))
}

fn report(o: &Options) -> ExitCode {
    let root = workspace_root();
    let machine = Machine::now();
    let started = Instant::now();
    let log_dir = target_dir().join("bench-report");
    if let Err(e) = std::fs::create_dir_all(&log_dir) {
        eprintln!("report: cannot create {} ({e})", log_dir.display());
        return ExitCode::FAILURE;
    }
    eprintln!(
        "report: nproc {}, {}, load average {} at start",
        machine.nproc, machine.cpu, machine.load
    );
    if machine.load_1m.is_some_and(|l| l > 1.0) {
        eprintln!(
            "report: note: the 1-minute load is above 1.0: other work shares the CPU, figures may be pessimistic"
        );
    }
    let selected: Vec<&Bench> = BENCHES
        .iter()
        .filter(|b| o.only.as_deref().is_none_or(|t| b.label().contains(t)))
        .collect();
    if selected.is_empty() {
        eprintln!(
            "report: no bench matches --only {:?}; the benches are: {}",
            o.only.as_deref().unwrap_or_default(),
            BENCHES
                .iter()
                .map(Bench::label)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::FAILURE;
    }
    let mut rows = Vec::new();
    let mut failed = false;
    for (i, bench) in selected.iter().enumerate() {
        eprintln!(
            "report: [{}/{}] {} …",
            i + 1,
            selected.len(),
            bench.command()
        );
        let outcome = run(bench, o, &log_dir);
        let bench_rows = rows_of(bench, &outcome, &root);
        eprintln!(
            "report: [{}/{}] {} in {}: {}",
            i + 1,
            selected.len(),
            bench.label(),
            duration_text(outcome.elapsed),
            match &outcome.failure {
                None => format!("{} figure(s)", outcome.figures.len()),
                Some(why) => format!("FAILED ({why}); log {}", outcome.log.display()),
            }
        );
        failed |= outcome.failure.is_some();
        rows.extend(bench_rows);
    }
    let took = started.elapsed();
    println!();
    println!(
        "Benchmarks report ({}; nproc {}, {}; load average at start {}; took {})",
        machine.date,
        machine.nproc,
        machine.cpu,
        machine.load,
        duration_text(took)
    );
    println!();
    print!("{}", terminal_table(&rows));
    let below: Vec<&str> = rows
        .iter()
        .filter(|f| f.status == Status::Below)
        .map(|f| f.id.as_str())
        .collect();
    println!();
    if below.is_empty() {
        println!("every measured figure meets its target");
    } else {
        println!("below target: {}", below.join(", "));
    }
    if let Some(path) = &o.write {
        let path = if path.is_absolute() {
            path.clone()
        } else {
            root.join(path)
        };
        let text = section(&rows, &machine, &command_line(o), took);
        match write_doc(&path, &text) {
            Ok(()) => println!("recorded in {}", path.display()),
            Err(e) => {
                eprintln!("report: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if failed {
        eprintln!("report: some benches failed; their figures are marked MISSING");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Under `cargo test` (no `--bench`): checks the format, the table and the
/// section rewrite on built-in lines, without running any bench.
fn self_check() {
    let ok = Figure::new("x.ok", "a\tb", "1.50", "ms")
        .anchor("Python | baseline", "30.00 ms")
        .ratio("20.0×")
        .target("≥ 10×", true);
    let below = Figure::new("x.below", "slow", "25", "ms").target("≤ 20 ms", false);
    let skipped = Figure::skipped(
        "x.skipped",
        "needs python",
        "≥ 50×",
        "python3 not found (os error 2)",
    );
    let info = Figure::new("x.info", "context", 3, "µs");
    for f in [&ok, &below, &skipped, &info] {
        assert_eq!(
            Figure::parse(&f.line()).as_ref(),
            Some(f),
            "round trip of {}",
            f.line()
        );
    }
    assert_eq!(ok.what, "a b", "tabs never reach the line");
    assert_eq!(ok.line().split('\t').count(), 10);
    assert!(Figure::parse("figure\tonly\tthree").is_none());
    assert!(Figure::parse("time: [1.2 ms 1.3 ms 1.4 ms]").is_none());
    assert!(Figure::parse(&ok.line().replace("\tok", "\tmaybe")).is_none());

    let rows = vec![ok, below, skipped, info];
    let table = terminal_table(&rows);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + rows.len());
    let value_col = lines[0].find("value").expect("header");
    assert!(
        lines
            .iter()
            .skip(2)
            .all(|l| { l.chars().nth(value_col).is_some_and(|c| !c.is_whitespace()) }),
        "values aligned:\n{table}"
    );
    assert!(table.contains("BELOW TARGET") && table.contains("skipped (python3 not found"));

    let markdown = markdown_table(&rows);
    assert!(
        markdown.contains("Python \\| baseline: 30.00 ms"),
        "{markdown}"
    );
    assert!(markdown.contains("**below target**"));

    let m = Machine {
        date: utc_date(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_600 + 120)),
        nproc: "2".into(),
        cpu: "Test CPU".into(),
        memory: "1 GiB RAM".into(),
        load: "0.10 0.20 0.30".into(),
        load_1m: Some(0.1),
        rustc: "rustc 1.95.0".into(),
        commit: "abc1234".into(),
    };
    assert_eq!(m.date, "2000-02-29 01:02 UTC");
    assert_eq!(utc_date(UNIX_EPOCH), "1970-01-01 00:00 UTC");
    let new = section(
        &rows,
        &m,
        "cargo bench --bench report",
        Duration::from_secs(75),
    );
    assert!(new.contains("took 1 min 15 s") && new.contains("nproc 2, Test CPU"));
    let doc = format!("# Benchmarks\n\nprose\n\n{BEGIN}\nold table\n{END}\n\n## After\n");
    let rewritten = replace_section(&doc, &new);
    assert!(rewritten.starts_with("# Benchmarks\n\nprose\n\n"));
    assert!(
        !rewritten.contains("old table") && rewritten.ends_with(&format!("{END}\n\n## After\n"))
    );
    assert_eq!(
        replace_section(&rewritten, &new),
        rewritten,
        "rewriting is idempotent"
    );
    let appended = replace_section("# Benchmarks\n", &new);
    assert!(appended.contains("## Latest figures") && appended.contains(BEGIN));

    let args = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let o = parse_args(&args(&["--write", "docs/benchmarks.md", "--bench"])).expect("valid");
    assert_eq!(o.write.as_deref(), Some(Path::new("docs/benchmarks.md")));
    assert_eq!(
        command_line(&o),
        "cargo bench --bench report -- --write docs/benchmarks.md"
    );
    assert!(parse_args(&args(&["--write"])).is_err());
    assert!(parse_args(&args(&["--write", "x.md", "--only", "schema"])).is_err());
    assert!(parse_args(&args(&["--frobnicate"])).is_err());
    assert!(
        BENCHES
            .iter()
            .all(|b| b.command().starts_with("cargo bench")),
        "every bench has a command"
    );
    println!("report: self-check passed (`cargo bench --bench report` runs the benches)");
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !figure::bench_mode() {
        self_check();
        return ExitCode::SUCCESS;
    }
    match parse_args(&args) {
        Ok(o) => report(&o),
        Err(e) => {
            eprintln!("report: {e}");
            ExitCode::from(2)
        }
    }
}
