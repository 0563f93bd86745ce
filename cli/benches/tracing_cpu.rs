//! Whole-process tracing CPU per call: `elspeth run` with Langfuse tracing
//! vs the official Langfuse Python SDK recording the same trace +
//! generation, side by side in one run. Target: elspeth ≥ 50× lower.
//!
//! `cargo bench -p elspeth-cli --bench tracing_cpu`
//!
//! - **elspeth**: the real binary runs a pipeline of one `azure_llm`
//!   transform over `CALLS` rows against `elspeth mock-server` (a separate
//!   process, so the mocks' CPU is not counted), once with `tracing:
//!   langfuse` (environment, release and tags set, content recorded) and
//!   once without tracing; each run's CPU is the child's user + system time
//!   (`getrusage(RUSAGE_CHILDREN)` around its `wait`). Tracing CPU per call =
//!   (traced − untraced) / calls: recording, encoding, compressing and
//!   sending the spans, on every thread of the process.
//! - **Python**: the script of `vs_langfuse_python` (same span, same
//!   generation, same metadata, plus the generation's cost details, which
//!   elspeth sends too) runs `CALLS` times in a process that records with
//!   the SDK and flushes it, and in one that runs the same loop without the
//!   SDK (both import `langfuse`, so the import is not counted); the
//!   difference of their process CPU, per call, is the SDK's. The SDK's
//!   span queue holds `SDK_QUEUE` spans, elspeth's default queue: with the
//!   OpenTelemetry default of 2,048 the SDK dropped ~8% of the 10,000 spans
//!   of a run, which it then never encoded or sent. The script counts the
//!   spans the SDK exported, and the figure is only reported when that is
//!   every span, as elspeth's side is only counted when every span arrived.
//!
//! Each side runs `REPS` (Python: `PY_REPS`) times, interleaved, the
//! Python pairs spread among elspeth's so both sides see the same machine;
//! the figure is the median of the paired differences (each traced run
//! minus the untraced run just before it), per call. The Python
//! side runs in `target/langfuse-py-venv` (see `benches/support/langfuse_py.rs`);
//! without Python it prints why and reports the figure as skipped (the
//! elspeth side is still printed). Without `--bench` (a smoke run under
//! `cargo test --benches`) it runs a few rows and prints no figure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[path = "../../benches/support/figure.rs"]
mod figure;
#[path = "../../benches/support/langfuse_py.rs"]
mod langfuse_py;

/// Rows per run: enough that the run's fixed costs (start, flush) and its
/// jitter (scheduling, the store's writes) weigh little per row.
const CALLS: usize = 5_000;
/// Interleaved traced / untraced pairs: a single pair's difference varies
/// by ±10 µs per row on a shared 2-core machine (the untraced run alone
/// varies by ~8% from run to run); the median of many varies much less.
/// The quartiles of the differences are printed with the figure.
const REPS: usize = 31;
/// Python pairs. With 5, the SDK's median moved between 445 and 535 µs per
/// call from one report to the next; 11 narrow that by about a third
/// (√(11/5)) for ~25 s more. Their quartiles are printed too.
const PY_REPS: usize = 11;
/// The Python SDK's span queue (`OTEL_BSP_MAX_QUEUE_SIZE`): elspeth's
/// default `max_queue`, enough for every span of a run.
const SDK_QUEUE: usize = 10_000;
const FIGURE_ID: &str = "telemetry.vs_langfuse_python_process";
const FIGURE_TARGET: &str = "≥ 50×";

/// The trace + generation of `vs_langfuse_python` plus the cost details
/// (elspeth sends them for every priced generation); `plain` runs the same
/// loop (building the same values) without the SDK. The `sdk` run prints
/// how many spans the SDK exported.
const SCRIPT: &str = r#"
import json, sys
import langfuse
from langfuse import Langfuse, propagate_attributes

mode, host, pk, sk, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])

exported = 0
if mode == "sdk":
    # Counts the spans the SDK's exporter delivered (one call per batch).
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult
    _export = OTLPSpanExporter.export

    def export(self, spans):
        global exported
        result = _export(self, spans)
        if result == SpanExportResult.SUCCESS:
            exported += len(spans)
        return result

    OTLPSpanExporter.export = export
    lf = Langfuse(public_key=pk, secret_key=sk, host=host, environment="bench", release="1.2.3")

    def one(i):
        meta = {"token_id": f"row-{i}", "plugin": "azure_llm", "deployment": "gpt-4o"}
        with propagate_attributes(trace_name="elspeth.azure_llm", metadata=meta, tags=["bench"]):
            with lf.start_as_current_observation(as_type="span", name="elspeth.azure_llm", metadata=meta):
                with lf.start_as_current_observation(as_type="generation", name="llm_call", model="gpt-4o", input=f"Classify: ticket {i}") as gen:
                    gen.update(output="positive", usage_details={"input": 12, "output": 3, "total": 15}, cost_details={"input": 0.00003, "output": 0.00003, "total": 0.00006}, metadata={"latency_ms": 123.4})
else:
    def one(i):
        meta = {"token_id": f"row-{i}", "plugin": "azure_llm", "deployment": "gpt-4o"}
        out = (meta, f"Classify: ticket {i}", "positive", {"input": 12, "output": 3, "total": 15}, {"input": 0.00003, "output": 0.00003, "total": 0.00006}, {"latency_ms": 123.4})
        return out

for i in range(n):
    one(i)
if mode == "sdk":
    lf.flush()
    lf.shutdown()
print(json.dumps({"version": langfuse.__version__, "exported": exported}))
"#;

/// CPU time (user + system) of the children waited for so far.
#[cfg(target_os = "linux")]
fn children_cpu() -> Duration {
    // `struct rusage` on Linux: two `struct timeval` (seconds, microseconds,
    // both `long`), then 14 `long`s.
    #[repr(C)]
    struct Rusage {
        fields: [i64; 18],
    }
    unsafe extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    const RUSAGE_CHILDREN: i32 = -1;
    let mut r = Rusage { fields: [0; 18] };
    // SAFETY: `r` is a writable `struct rusage`-sized buffer.
    let rc = unsafe { getrusage(RUSAGE_CHILDREN, &mut r) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |s: i64, us: i64| Duration::from_secs(s as u64) + Duration::from_micros(us as u64);
    tv(r.fields[0], r.fields[1]) + tv(r.fields[2], r.fields[3])
}

/// Runs `cmd` to its end; its CPU time (user + system).
#[cfg(target_os = "linux")]
fn cpu_of(cmd: &mut Command) -> Result<(Duration, String), String> {
    let before = children_cpu();
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not start {cmd:?}: {e}"))?;
    let cpu = children_cpu() - before;
    if !output.status.success() {
        return Err(format!(
            "{:?} failed ({}):\n{}",
            cmd.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok((cpu, String::from_utf8_lossy(&output.stdout).into_owned()))
}

/// `elspeth mock-server` and the variables that point a pipeline at it.
struct Mocks {
    child: Child,
    env: Vec<(String, String)>,
}

impl Mocks {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_elspeth"))
            .arg("mock-server")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start elspeth mock-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut env = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("mock-server output");
            if let Some((name, value)) =
                line.strip_prefix("export ").and_then(|l| l.split_once('='))
            {
                env.push((name.to_string(), value.trim_matches('\'').to_string()));
            }
            if line.starts_with("export OTEL_EXPORTER_OTLP_ENDPOINT") {
                break;
            }
        }
        assert!(
            env.iter().any(|(k, _)| k == "LANGFUSE_HOST"),
            "mock-server printed no LANGFUSE_HOST"
        );
        Self { child, env }
    }

    fn get(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

impl Drop for Mocks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder with `rows` tickets and the pipeline, traced or not.
fn workdir(rows: usize) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("elspeth-bench-tracing-cpu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tickets: String = (0..rows)
        .map(|i| {
            format!(
                "{}\n",
                serde_json::json!({"id": i, "body": format!("ticket {i}")})
            )
        })
        .collect();
    std::fs::write(dir.join("tickets.jsonl"), tickets).unwrap();
    for (name, tracing) in [
        (
            "traced.yaml",
            "{provider: langfuse, public_key: '${LANGFUSE_PUBLIC_KEY}', secret_key: '${LANGFUSE_SECRET_KEY}', host: '${LANGFUSE_HOST}', environment: bench, release: '1.2.3', tags: [bench]}",
        ),
        ("untraced.yaml", "{provider: none}"),
    ] {
        let yaml = format!(
            "name: tracing-cpu
source: {{ plugin: jsonl, path: tickets.jsonl }}
transforms:
  - plugin: azure_llm
    options:
      deployment_name: gpt-4o
      endpoint: ${{AZURE_OPENAI_ENDPOINT}}
      api_key: ${{AZURE_OPENAI_KEY}}
      prompt_template: 'Classify: {{{{ body }}}}'
      output_field: category
      pool_size: 8
      tracing: {tracing}
sink: {{ plugin: jsonl, path: out/{name}.jsonl }}
"
        );
        std::fs::write(dir.join(name), yaml).unwrap();
    }
    dir
}

/// One `elspeth run` of `pipeline`; its CPU time and the spans it sent.
#[cfg(target_os = "linux")]
fn elspeth_run(dir: &Path, mocks: &Mocks, pipeline: &str, i: usize) -> (Duration, u64) {
    let summary = dir.join(format!("summary-{pipeline}-{i}.json"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_elspeth"));
    cmd.current_dir(dir)
        .args(["run", pipeline, "--no-cache", "--store"])
        .arg(dir.join(format!("store-{pipeline}-{i}.db")))
        .arg("--summary-json")
        .arg(&summary)
        .envs(mocks.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stderr(Stdio::piped());
    let (cpu, _) = cpu_of(&mut cmd).unwrap_or_else(|e| panic!("{e}"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("summary JSON");
    let sent = json["tracing"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["sent"].as_u64()).sum())
        .unwrap_or(0);
    (cpu, sent)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn what(spread: &str) -> String {
    format!(
        "whole-process tracing CPU per call: elspeth run with Langfuse tracing minus without, {CALLS} rows, median of {REPS} interleaved pairs{spread} (mocks in another process)"
    )
}

/// The paired differences of two sides' run CPU (seconds), in µs per call.
fn per_call_us(with: &[f64], without: &[f64], calls: usize) -> Vec<f64> {
    with.iter()
        .zip(without)
        .map(|(w, o)| (w - o) / calls as f64 * 1e6)
        .collect()
}

/// The first and third quartiles of `v`.
fn quartiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 4], v[(3 * v.len()) / 4])
}

#[cfg(not(target_os = "linux"))]
fn main() {
    figure::Figure::skipped(FIGURE_ID, &what(""), FIGURE_TARGET, "needs Linux getrusage").print();
}

/// The Python side: the SDK script run with and without the SDK against
/// the same mock server.
#[cfg(target_os = "linux")]
struct PythonSide {
    python: PathBuf,
    script: PathBuf,
    host: String,
    pk: String,
    sk: String,
    calls: usize,
    /// Process CPU of each run with the SDK and without it, in pairs.
    sdk: Vec<f64>,
    plain: Vec<f64>,
    version: String,
}

#[cfg(target_os = "linux")]
impl PythonSide {
    fn new(mocks: &Mocks, calls: usize) -> Result<Self, String> {
        let python = langfuse_py::python()?;
        let script = langfuse_py::venv().join("bench_process.py");
        std::fs::write(&script, SCRIPT).map_err(|e| format!("could not write the script: {e}"))?;
        Ok(Self {
            python,
            script,
            host: mocks.get("LANGFUSE_HOST").to_string(),
            pk: mocks.get("LANGFUSE_PUBLIC_KEY").to_string(),
            sk: mocks.get("LANGFUSE_SECRET_KEY").to_string(),
            calls,
            sdk: Vec::new(),
            plain: Vec::new(),
            version: String::from("?"),
        })
    }

    fn run(&self, mode: &str) -> Result<(Duration, String), String> {
        let run = cpu_of(
            Command::new(&self.python)
                .arg(&self.script)
                .args([
                    mode,
                    &self.host,
                    &self.pk,
                    &self.sk,
                    &self.calls.to_string(),
                ])
                .env("OTEL_BSP_MAX_QUEUE_SIZE", SDK_QUEUE.to_string()),
        );
        run.map_err(|e| format!("the Python script failed: {e}"))
    }

    /// One run without the SDK, then one with it; an error says why the
    /// figure cannot be reported.
    fn pair(&mut self) -> Result<(), String> {
        let (plain, _) = self.run("plain")?;
        let (sdk, out) = self.run("sdk")?;
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
        self.version = v["version"].as_str().unwrap_or("?").to_string();
        let exported = v["exported"].as_u64().unwrap_or(0);
        if exported != 2 * self.calls as u64 {
            return Err(format!(
                "the SDK exported {exported} of {} spans (its queue: {SDK_QUEUE})",
                2 * self.calls
            ));
        }
        self.plain.push(plain.as_secs_f64());
        self.sdk.push(sdk.as_secs_f64());
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn main() {
    let bench = figure::bench_mode();
    let (calls, reps) = if bench { (CALLS, REPS) } else { (20, 1) };
    let dir = workdir(calls);
    let mocks = Mocks::start();
    // Python SDK, same mock server. Its pairs run between elspeth's, spread
    // evenly over the whole run, so that a machine that gets slower or
    // faster during the bench moves both sides alike.
    let mut python = if bench {
        PythonSide::new(&mocks, calls)
    } else {
        Err("not a --bench run".to_string())
    };

    // elspeth: one warm-up run each (page cache, mock connections), then
    // interleaved measured runs.
    let _ = elspeth_run(&dir, &mocks, "untraced.yaml", 0);
    let _ = elspeth_run(&dir, &mocks, "traced.yaml", 0);
    let (mut traced, mut untraced) = (Vec::new(), Vec::new());
    for i in 1..=reps {
        let (cpu, sent) = elspeth_run(&dir, &mocks, "untraced.yaml", i);
        assert_eq!(sent, 0, "the untraced run sent spans");
        untraced.push(cpu.as_secs_f64());
        let (cpu, sent) = elspeth_run(&dir, &mocks, "traced.yaml", i);
        assert_eq!(
            sent,
            2 * calls as u64,
            "the traced run did not deliver every span"
        );
        traced.push(cpu.as_secs_f64());
        if let Ok(py) = &mut python
            && py.sdk.len() * reps < i * PY_REPS
            && let Err(why) = py.pair()
        {
            python = Err(why);
        }
    }
    let (t, u) = (median(traced.clone()), median(untraced.clone()));
    // Median of the paired differences (each traced run against the
    // untraced run just before it): drift of the machine hits both alike.
    let per_call = per_call_us(&traced, &untraced, calls);
    let ours_us = median(per_call.clone());
    let (q1, q3) = quartiles(per_call);
    let spread = format!(" (quartiles {q1:.1}–{q3:.1} µs)");
    eprintln!(
        "elspeth run, {calls} rows: CPU traced {t:.3} s (runs {traced:.3?}), untraced {u:.3} s (runs {untraced:.3?}): {ours_us:.1} µs of tracing CPU per call{spread}"
    );
    if !bench {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let py = match python {
        Ok(py) => py,
        Err(why) => return skip(&dir, &spread, &why),
    };
    let (s, p) = (median(py.sdk.clone()), median(py.plain.clone()));
    let per_call_py = per_call_us(&py.sdk, &py.plain, calls);
    let py_us = median(per_call_py.clone());
    let (pq1, pq3) = quartiles(per_call_py);
    let ratio = py_us / ours_us;
    let version = &py.version;
    eprintln!(
        "Langfuse Python SDK {version}, {calls} calls: CPU with the SDK {s:.3} s (runs {:.3?}), without {p:.3} s (runs {:.3?}): {py_us:.1} µs per call (quartiles {pq1:.1}–{pq3:.1} µs)",
        py.sdk, py.plain
    );
    eprintln!("ratio: {ratio:.1}× less tracing CPU per call (target ≥ 50×)");
    figure::Figure::new(FIGURE_ID, &what(&spread), format!("{ours_us:.1}"), "µs")
        .anchor(
            &format!(
                "Langfuse Python SDK {version}, process CPU with minus without the SDK, median of {PY_REPS} pairs (quartiles {pq1:.1}–{pq3:.1} µs)"
            ),
            format!("{py_us:.1} µs"),
        )
        .ratio(format!("{ratio:.1}×"))
        .target(FIGURE_TARGET, ratio >= 50.0)
        .print();
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(target_os = "linux")]
fn skip(dir: &Path, spread: &str, why: &str) {
    println!("tracing_cpu: the Python side is skipped: {why}");
    let first_line = why.lines().find(|l| !l.trim().is_empty()).unwrap_or(why);
    figure::Figure::skipped(FIGURE_ID, &what(spread), FIGURE_TARGET, first_line).print();
    let _ = std::fs::remove_dir_all(dir);
}
