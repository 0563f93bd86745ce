//! `elspeth run PIPELINE.yaml`: validate, then run the pipeline with a
//! progress display and a final summary.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use elspeth_mock::all::{MockStack, StackOptions};
use elspeth_runtime::env::OverlayEnv;
use elspeth_runtime::pipeline::{
    CancelToken, Pipeline, Progress, RunError, RunObserver, RunOptions, RunStart, RunSummary,
};
use elspeth_schema::config::{Env, ProcessEnv};
use elspeth_schema::{ValidateOptions, validate_file};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// Exit code: the run was interrupted (Ctrl-C).
pub const EXIT_INTERRUPTED: u8 = 130;

const AFTER_HELP: &str = "\
Examples:
  elspeth run pipelines/triage.yaml
  elspeth run pipelines/triage.yaml --limit 10 --dry-run
  elspeth run examples/quickstart/ticket-triage.yaml --with-mocks

The file is validated first (same diagnostics as `elspeth validate`,
`${VAR}` references resolved). Relative paths in it are resolved against
its folder. Ctrl-C stops taking rows and lets calls in flight finish (up to
30 s); a second Ctrl-C cancels them. Everything read is written, traces are
flushed.

Outputs are written atomically: rows go to a hidden temporary file next to
each output (`.NAME.elspeth-tmp-PID`), renamed over it when the run ends
(also after Ctrl-C). Until then, and whenever the run fails or is killed,
the output keeps its previous content; `--limit 0` writes nothing. An output
that is the same file as the source or the pipeline file (through `..`, a
symlink or a hard link) is refused before anything is written.

Exit codes: 0 every row succeeded; 1 the config is invalid, a transform
could not start, or rows failed (they are in the output with an `error`
field); 2 usage or I/O error (unreadable pipeline, source or sink, an
output that would overwrite an input, a write failure such as a full disk:
the summary of what was done and paid is printed first); 130 interrupted.";

/// Run a pipeline: rows from its source, through its LLM transforms, into
/// its sink.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct RunArgs {
    /// The pipeline YAML file.
    #[arg(value_name = "PIPELINE")]
    pipeline: PathBuf,
    /// Process at most N rows.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Validate, build the transforms and describe what would run; make no
    /// LLM call and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Start the bundled mock backends (Azure OpenAI, OpenRouter, Langfuse,
    /// Application Insights, OTLP) on 127.0.0.1 and point the pipeline's
    /// `${VAR}` references at them: no cloud account needed.
    #[arg(long)]
    with_mocks: bool,
    /// With --with-mocks: latency of every mock LLM answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0, requires = "with_mocks")]
    mock_latency_ms: u64,
    /// With --with-mocks: fraction (0..=1) of mock LLM calls answered with HTTP 500.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, requires = "with_mocks", value_parser = super::fraction)]
    mock_failure_rate: f64,
}

/// Runs `elspeth run`.
pub fn run(args: RunArgs) -> ExitCode {
    let runtime = match super::async_runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> ExitCode {
    let interactive = std::io::stderr().is_terminal();
    let bar =
        interactive.then(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()));
    init_logging(bar.clone());

    let mocks = if args.with_mocks {
        let options = StackOptions {
            port: 0,
            latency: Duration::from_millis(args.mock_latency_ms),
            failure_rate: args.mock_failure_rate,
        };
        match MockStack::start(options).await {
            Ok(stack) => Some(stack),
            Err(e) => {
                eprintln!("error: could not start the mock backends: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    } else {
        None
    };
    let env: Arc<dyn Env + Send + Sync> = match &mocks {
        Some(stack) => {
            eprintln!("mock backends on 127.0.0.1 (no cloud account used):");
            for b in stack.backends() {
                eprintln!("  {:<21} {}", b.name, b.url);
            }
            Arc::new(OverlayEnv::over_process(stack.env()))
        }
        None => Arc::new(ProcessEnv),
    };

    // Validate first, with the same diagnostics as `elspeth validate`.
    let validated = validate_file(
        &args.pipeline,
        &ValidateOptions {
            resolve_env: true,
            env: env.clone(),
            ..ValidateOptions::default()
        },
    );
    let color = interactive && std::env::var_os("NO_COLOR").is_none();
    if !validated.diagnostics.is_empty() {
        eprint!("{}", validated.render_with(color));
        eprintln!();
    }
    if validated.is_io_error() {
        return ExitCode::from(EXIT_USAGE);
    }
    let Some(config) = validated.config else {
        if validated.has_path_clash() {
            // Running would overwrite an input: refused like an I/O error.
            eprintln!(
                "error: an output of {} would overwrite an input; nothing was run",
                args.pipeline.display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
        let n = validated.errors().count();
        eprintln!(
            "error: {} is invalid ({n} error{}); nothing was run",
            args.pipeline.display(),
            if n == 1 { "" } else { "s" }
        );
        return ExitCode::from(EXIT_INVALID);
    };
    let base_dir = base_dir(&args.pipeline);
    let pipeline = Pipeline::new(config, base_dir).with_file(&args.pipeline);

    let cancel = CancelToken::new();
    let mut options = RunOptions::default()
        .with_env(env)
        .with_limit(args.limit)
        .with_cancel(cancel.clone());

    if args.dry_run {
        return match pipeline.dry_run(&options) {
            Ok(report) => {
                print!("{report}");
                if report.is_ready() {
                    ExitCode::from(EXIT_OK)
                } else {
                    ExitCode::from(EXIT_INVALID)
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(exit_code_of(&e))
            }
        };
    }

    let observer = Arc::new(Display::new(bar.clone()));
    options = options.with_observer(observer.clone());
    let ctrl_c = tokio::spawn(watch_ctrl_c(cancel));
    let result = pipeline.run(options).await;
    ctrl_c.abort();
    observer.finish();

    match result {
        Ok(summary) => {
            print_summary(&summary, mocks.as_ref(), false);
            if let Some(stack) = mocks {
                stack.stop().await;
            }
            if summary.interrupted {
                ExitCode::from(EXIT_INTERRUPTED)
            } else if summary.rows_failed > 0 {
                ExitCode::from(EXIT_INVALID)
            } else {
                ExitCode::from(EXIT_OK)
            }
        }
        Err(e) => {
            // A run that started and then failed (a full disk) still says
            // what was done and paid for.
            if let Some(summary) = e.summary() {
                print_summary(summary, mocks.as_ref(), true);
            }
            if let Some(stack) = mocks {
                stack.stop().await;
            }
            eprintln!("error: {e}");
            ExitCode::from(exit_code_of(&e))
        }
    }
}

/// The folder relative paths are resolved against: the YAML file's folder.
fn base_dir(pipeline: &Path) -> PathBuf {
    match pipeline.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn exit_code_of(e: &RunError) -> u8 {
    match e.cause() {
        RunError::Build(_) | RunError::Start(_) => EXIT_INVALID,
        _ => EXIT_USAGE,
    }
}

/// First Ctrl-C: stop taking rows. Second: cancel calls in flight. Third: quit.
async fn watch_ctrl_c(cancel: CancelToken) {
    let mut presses = 0;
    while tokio::signal::ctrl_c().await.is_ok() {
        presses += 1;
        match presses {
            1 => {
                eprintln!(
                    "\nstopping: no new rows are taken; calls in flight finish (Ctrl-C again to cancel them)"
                );
                cancel.cancel();
            }
            2 => {
                eprintln!(
                    "\ncancelling the calls in flight; writing what is done and flushing traces (Ctrl-C again to quit now)"
                );
                cancel.abort();
            }
            _ => std::process::exit(i32::from(EXIT_INTERRUPTED)),
        }
    }
}

/// Logs go to stderr, above the progress bar when there is one.
fn init_logging(bar: Option<ProgressBar>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ELSPETH_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let writer = BarWriter { bar };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

/// A `MakeWriter` that prints above the progress bar.
#[derive(Clone)]
struct BarWriter {
    bar: Option<ProgressBar>,
}

struct BarLine {
    bar: Option<ProgressBar>,
    buf: Vec<u8>,
}

impl std::io::Write for BarLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for BarLine {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let emit = || {
            let _ = std::io::stderr().write_all(&buf);
        };
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.suspend(emit),
            _ => emit(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BarWriter {
    type Writer = BarLine;
    fn make_writer(&'a self) -> Self::Writer {
        BarLine {
            bar: self.bar.clone(),
            buf: Vec::new(),
        }
    }
}

/// Progress: an indicatif bar on a terminal, plain lines otherwise.
struct Display {
    bar: Option<ProgressBar>,
    plain: Mutex<PlainState>,
}

struct PlainState {
    last: Instant,
    total: Option<u64>,
}

impl Display {
    fn new(bar: Option<ProgressBar>) -> Self {
        Self {
            bar,
            plain: Mutex::new(PlainState {
                last: Instant::now(),
                total: None,
            }),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn progress_message(p: &Progress) -> String {
    format!(
        "{:.1} rows/s · {} failed · tokens {} in / {} out",
        p.rows_per_second(),
        p.rows_failed,
        thousands(p.tokens_in),
        thousands(p.tokens_out)
    )
}

impl RunObserver for Display {
    fn started(&self, start: &RunStart) {
        match &self.bar {
            Some(bar) => {
                let style = match start.total_rows {
                    Some(total) => {
                        bar.set_length(total);
                        "{spinner:.green} {prefix} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} rows · {msg}"
                    }
                    None => "{spinner:.green} {prefix} [{elapsed_precise}] {pos} rows · {msg}",
                };
                if let Ok(style) = ProgressStyle::with_template(style) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_prefix(start.pipeline.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            None => {
                let mut s = self.plain.lock().unwrap_or_else(|e| e.into_inner());
                s.total = start.total_rows;
                let total = start
                    .total_rows
                    .map(|t| format!("{t} rows"))
                    .unwrap_or_else(|| "rows".into());
                eprintln!(
                    "running `{}`: {total} through {} → {}",
                    start.pipeline,
                    start.transforms.join(", "),
                    start.output.display()
                );
            }
        }
    }

    fn row_written(&self, p: &Progress) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(p.rows_done);
                bar.set_message(progress_message(p));
            }
            None => {
                let mut s = self.plain.lock().unwrap_or_else(|e| e.into_inner());
                let done = s.total.is_some_and(|t| p.rows_done >= t);
                if s.last.elapsed() >= Duration::from_secs(5) || done {
                    s.last = Instant::now();
                    let of = s.total.map(|t| format!("/{t}")).unwrap_or_default();
                    eprintln!(
                        "progress: {}{of} rows · {}",
                        p.rows_done,
                        progress_message(p)
                    );
                }
            }
        }
    }

    fn stopping(&self) {
        if let Some(bar) = &self.bar {
            bar.set_prefix("stopping");
        }
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `stopped`: the run stopped on an error (the summary says what was paid).
fn print_summary(s: &RunSummary, mocks: Option<&MockStack>, stopped: bool) {
    let mut out = std::io::stdout().lock();
    // The rate is the rows' own: the final trace flush is shown apart.
    let secs = s.rows_elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        (s.rows_ok + s.rows_failed) as f64 / secs
    } else {
        0.0
    };
    let flush = s.elapsed.saturating_sub(s.rows_elapsed).as_secs_f64();
    let flush = if flush >= 0.5 {
        format!(", then {flush:.1} s closing and flushing traces")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{} `{}`: {} rows in {secs:.1} s ({rate:.1} rows/s){flush}",
        if stopped {
            "stopped"
        } else if s.interrupted {
            "interrupted"
        } else {
            "finished"
        },
        s.pipeline,
        s.rows_read
    );
    let mut rows = format!("  rows:    {} ok, {} failed", s.rows_ok, s.rows_failed);
    if s.rows_cancelled > 0 {
        rows.push_str(&format!(
            " ({} cancelled by the interruption)",
            s.rows_cancelled
        ));
    }
    let _ = writeln!(out, "{rows}");
    let _ = writeln!(out, "  output:  {}", s.output.display());
    if let Some(e) = &s.error_output {
        let _ = writeln!(out, "  failed:  {}", e.display());
    } else if s.rows_failed > 0 {
        let _ = writeln!(out, "           (failed rows carry an `error` field)");
    }
    let mut llm = format!(
        "  llm:     {} calls, tokens {} in / {} out",
        thousands(s.llm_calls),
        thousands(s.tokens_in),
        thousands(s.tokens_out)
    );
    if s.llm_calls_failed > 0 {
        llm.push_str(&format!(", {} calls failed", s.llm_calls_failed));
    }
    if let Some(cost) = s.cost_usd {
        llm.push_str(&format!(", cost ${cost:.6}"));
    }
    let _ = writeln!(out, "{llm}");
    if s.exporters.is_empty() {
        let _ = writeln!(out, "  tracing: off");
    } else {
        let _ = writeln!(out, "  tracing:");
        for e in &s.exporters {
            let mut line = format!(
                "    {}: {} spans sent, {} dropped",
                e.exporter, e.sent, e.dropped
            );
            if e.failed > 0 {
                line.push_str(&format!(", {} failed", e.failed));
            }
            if e.pending > 0 {
                line.push_str(&format!(", {} not sent", e.pending));
            }
            let _ = writeln!(out, "{line}");
        }
    }
    if let Some(stack) = mocks {
        let received: Vec<String> = stack
            .received()
            .into_iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "  mocks received: {} (spans / envelopes)",
            received.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_paths() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(base_dir(Path::new("p.yaml")), PathBuf::from("."));
        assert_eq!(base_dir(Path::new("a/b/p.yaml")), PathBuf::from("a/b"));
    }
}
