//! `elspeth run PIPELINE.yaml`: validate, then run the pipeline with a
//! progress display and a final summary.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use elspeth_mock::all::{MockStack, StackOptions};
use elspeth_runtime::Shard;
use elspeth_runtime::env::OverlayEnv;
use elspeth_runtime::pipeline::{
    CancelToken, Pipeline, Progress, RunError, RunObserver, RunOptions, RunStart, RunSummary,
    StopReason, StopSignal, StoreOptions, thousands,
};
use elspeth_schema::config::{Env, ProcessEnv, StoreConfig};
use elspeth_schema::{ValidateOptions, validate_file};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{EXIT_BUDGET, EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// Exit code: the run was interrupted by Ctrl-C (SIGINT), or cancelled.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// The exit code of a run stopped by `signal`: the shell convention,
/// 128 + the signal number (130 SIGINT, 143 SIGTERM, 129 SIGHUP), so a
/// supervisor sees the same code as if the signal had killed the process,
/// but only after the output was written and the summary printed.
pub(crate) fn exit_code_of_signal(signal: StopSignal) -> u8 {
    128 + signal.number()
}

const AFTER_HELP: &str = "\
Examples:
  elspeth run pipelines/triage.yaml
  elspeth run pipelines/triage.yaml --limit 10 --dry-run
  elspeth run examples/quickstart/ticket-triage.yaml --with-mocks

The file is validated first (same diagnostics as `elspeth validate`,
`${VAR}` references resolved). Relative paths in it are resolved against
its folder.

Signals: Ctrl-C (SIGINT), SIGTERM (docker stop, Kubernetes, systemd) and
SIGHUP all stop the run the same way: no new row is taken, calls in flight
get up to 30 s to finish, then everything read is written (unfinished rows
with an `error` of kind `cancelled`), traces are flushed (up to 10 s) and
the summary is printed. A second signal cancels the calls in flight at once
and goes straight to writing, flushing and the summary; a third exits
immediately.

Fail fast: a transform's first authentication error (HTTP 401 / 403), or
25 rows in a row failing in one transform (after their retries), stops the
run the same way; the summary names the transform and its last error.
`fail_fast:` in the pipeline changes this.

Resume: every paid reply is kept in the run store (`NAME.elspeth.db`
beside the pipeline, or `--store PATH`), so rerunning the same command
after any stop or crash pays only for the calls that had not finished;
`--no-cache` pays for every call again.

Outputs are written atomically: rows go to a hidden temporary file next to
each output (`.NAME.elspeth-tmp-PID`), renamed over it when the run ends
(also after Ctrl-C). Until then, and whenever the run fails or is killed,
the output keeps its previous content; `--limit 0` writes nothing. An output
that is the same file as the source or the pipeline file (through `..`, a
symlink or a hard link) is refused before anything is written.

Exit codes: 0 every row succeeded; 1 the config is invalid, a transform
could not start, rows failed (they are in the output with an `error`
field), or fail fast stopped the run; 2 usage or I/O error (unreadable
pipeline, source or sink, an output that would overwrite an input, a write
failure such as a full disk: the summary of what was done and paid is
printed first); 3 the budget (`budget.max_cost_usd` / `--max-cost-usd`)
stopped the run: the rows taken were finished and written, rerun with a
larger budget to go on; 130 interrupted by Ctrl-C (SIGINT); 143 stopped by
SIGTERM; 129 stopped by SIGHUP.

Budget: the budget bounds what the rows cost, replies the run store serves
counted at what they cost when paid; the run stops taking rows when what it
spent plus what the rows in flight may cost would pass it.";

/// Run a pipeline: rows from its source, through its LLM transforms, into
/// its sink.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct RunArgs {
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
    /// The run store (default: `<pipeline stem>.elspeth.db` beside the
    /// pipeline file). Every finished call's reply is kept there, so a rerun
    /// pays only for the calls that had not finished.
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Pay for every call again instead of using the replies in the store
    /// (the new replies are still stored).
    #[arg(long)]
    no_cache: bool,
    /// Run only shard INDEX of COUNT (0-based, e.g. `--shard
    /// $JOB_COMPLETION_INDEX/4`): the rows whose hash (of the source's
    /// `key` field, else of the row) falls in it. The shard writes
    /// `<stem>.shard-<i>-of-<n><ext>` beside the sink (and error file) and
    /// keeps its own run store; `elspeth merge` joins the shards.
    #[arg(long, value_name = "INDEX/COUNT", value_parser = clap::value_parser!(Shard))]
    shard: Option<Shard>,
    /// Also write the run's summary as JSON to PATH (replaced atomically):
    /// rows, calls, tokens, cost and every tracing exporter's span counts.
    #[arg(long, value_name = "PATH")]
    summary_json: Option<PathBuf>,
    /// Also write a run report to PATH: one self-contained HTML file
    /// (totals, per transform calls, failures, retries, latency, tokens and
    /// cost; the failed and slowest rows; tracing delivery).
    #[arg(long, value_name = "PATH.html")]
    report: Option<PathBuf>,
    /// Stop taking rows before the run's cost would pass USD (overrides
    /// the pipeline's `budget.max_cost_usd`); exit code 3 when it does.
    #[arg(long, value_name = "USD", value_parser = super::non_negative)]
    max_cost_usd: Option<f64>,
}

/// Runs `elspeth run`.
pub(crate) fn run(args: RunArgs) -> ExitCode {
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
    let store = store_options(&args, config.store.as_ref());
    let store_path = store.path.clone();
    let mut config = config;
    if let Some(max) = args.max_cost_usd {
        config.budget = Some(elspeth_schema::config::BudgetConfig { max_cost_usd: max });
    }
    let pipeline = Pipeline::new(config, base_dir)
        .with_file(&args.pipeline)
        .with_shard(args.shard);

    let cancel = CancelToken::new();
    let mut options = RunOptions::default()
        .with_env(env)
        .with_limit(args.limit)
        .with_cancel(cancel.clone())
        .with_store(store);

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

    let mut outputs = vec![("run store", store_path.as_path())];
    if let Some(path) = &args.summary_json {
        outputs.push(("--summary-json", path.as_path()));
    }
    if let Some(path) = &args.report {
        outputs.push(("--report", path.as_path()));
    }
    if outputs.len() > 1
        && let Err(e) = pipeline.check_outputs(&outputs)
    {
        eprintln!("error: {e}; nothing was run");
        return ExitCode::from(EXIT_USAGE);
    }
    let observer = Arc::new(Display::new(bar.clone()));
    options = options.with_observer(observer.clone());
    // Registered before the run starts: a signal sent as soon as the run
    // is visible (its first progress line) must not kill the process.
    let signals = match StopSignals::register() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("error: could not watch for signals: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let watcher = tokio::spawn(watch_signals(signals, cancel));
    let result = pipeline.run(options).await;
    watcher.abort();
    observer.finish();

    match result {
        Ok(summary) => {
            print_summary(&summary, mocks.as_ref(), false);
            let code = exit_code_of_summary(&summary);
            write_reports(&args, &summary, code);
            if let Some(stack) = mocks {
                stack.stop().await;
            }
            ExitCode::from(code)
        }
        Err(e) => {
            // A run that started and then failed (a full disk) still says
            // what was done and paid for.
            if let Some(summary) = e.summary() {
                print_summary(summary, mocks.as_ref(), true);
                write_reports(&args, summary, exit_code_of(&e));
            }
            if let Some(stack) = mocks {
                stack.stop().await;
            }
            note(&format!("error: {e}"));
            ExitCode::from(exit_code_of(&e))
        }
    }
}

/// Writes `--summary-json` and `--report`; a failure is reported, the
/// run's outcome (and exit code) stands.
fn write_reports(args: &RunArgs, summary: &RunSummary, exit_code: u8) {
    if let Some(path) = &args.summary_json {
        let mut json = serde_json::to_vec_pretty(&summary.to_json(exit_code)).unwrap_or_default();
        json.push(b'\n');
        if let Err(e) = elspeth_runtime::pipeline::write_atomic(path, &json) {
            note(&format!("error: could not write --summary-json: {e}"));
        }
    }
    if let Some(path) = &args.report {
        let html = elspeth_runtime::pipeline::html_report::render(summary, exit_code);
        match elspeth_runtime::pipeline::write_atomic(path, html.as_bytes()) {
            Ok(()) => note(&format!("report: {}", path.display())),
            Err(e) => note(&format!("error: could not write --report: {e}")),
        }
    }
}

/// The run store: `--store PATH`, else the pipeline's `store.path` (relative
/// to its folder), else `<stem>.elspeth.db` beside it; served unless
/// `--no-cache` or `store: {cache: false}`.
fn store_options(args: &RunArgs, config: Option<&StoreConfig>) -> StoreOptions {
    let configured = config.cloned().unwrap_or_default();
    let path = store_path(&args.pipeline, args.store.as_deref(), config);
    StoreOptions {
        // Each shard keeps its own store: shards run at once, on other
        // machines too.
        path: match args.shard {
            Some(shard) => shard.path_of(&path),
            None => path,
        },
        serve: configured.cache && !args.no_cache,
    }
}

/// Where the run store of `pipeline` is: `flag` (`--store PATH`), else the
/// pipeline's `store.path` (relative to its folder), else
/// `<stem>.elspeth.db` beside it.
pub(crate) fn store_path(
    pipeline: &Path,
    flag: Option<&Path>,
    config: Option<&StoreConfig>,
) -> PathBuf {
    match (flag, config.and_then(|c| c.path.as_ref())) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(path)) => base_dir(pipeline).join(path),
        (None, None) => StoreOptions::beside(pipeline).path,
    }
}

/// The folder relative paths are resolved against: the YAML file's folder.
pub(crate) fn base_dir(pipeline: &Path) -> PathBuf {
    match pipeline.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn exit_code_of(e: &RunError) -> u8 {
    match e.cause() {
        RunError::Build(_) | RunError::Start(_) | RunError::Budget { .. } => EXIT_INVALID,
        _ => EXIT_USAGE,
    }
}

/// The exit code of a finished (or stopped) run.
fn exit_code_of_summary(summary: &RunSummary) -> u8 {
    match &summary.stop_reason {
        Some(StopReason::Signal(signal)) => exit_code_of_signal(*signal),
        Some(reason) if reason.is_breaker() => EXIT_INVALID,
        Some(StopReason::Budget { .. }) => EXIT_BUDGET,
        Some(_) => EXIT_INTERRUPTED,
        None if summary.interrupted => EXIT_INTERRUPTED,
        None if summary.rows_failed > 0 => EXIT_INVALID,
        None => EXIT_OK,
    }
}

/// Writes a line to stderr, ignoring failures: after a SIGHUP the terminal
/// may be gone, and `eprintln!` would panic instead of letting the run
/// write its output.
fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The signals that stop a run: SIGINT, SIGTERM and SIGHUP on Unix,
/// Ctrl-C elsewhere.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers (from now on these signals no longer kill the
    /// process).
    #[cfg(unix)]
    fn register() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    #[cfg(not(unix))]
    fn register() -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// The next signal (`None`: no more can arrive).
    #[cfg(unix)]
    async fn next(&mut self) -> Option<StopSignal> {
        tokio::select! {
            s = self.interrupt.recv() => s.map(|()| StopSignal::Interrupt),
            s = self.terminate.recv() => s.map(|()| StopSignal::Terminate),
            s = self.hangup.recv() => s.map(|()| StopSignal::Hangup),
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> Option<StopSignal> {
        tokio::signal::ctrl_c()
            .await
            .ok()
            .map(|()| StopSignal::Interrupt)
    }
}

/// First signal (SIGINT, SIGTERM or SIGHUP): stop taking rows and let the
/// calls in flight finish. Second: cancel the calls in flight, then write,
/// flush and summarise as usual. Third: quit now, with the first signal's
/// exit code. When a fail-fast breaker already stopped the run, the first
/// signal counts as the second (the user wants it faster).
async fn watch_signals(mut signals: StopSignals, cancel: CancelToken) {
    let mut first: Option<StopSignal> = None;
    let mut count = 0;
    while let Some(signal) = signals.next().await {
        count += 1;
        if count == 1 && !cancel.cancel_with(StopReason::Signal(signal)) {
            count = 2;
        }
        let first = *first.get_or_insert(signal);
        match count {
            1 => note(&format!(
                "\nstopping ({signal}): no new rows are taken; calls in flight finish \
                 (send it again to cancel them)"
            )),
            2 => {
                note(&format!(
                    "\ncancelling the calls in flight ({signal}); writing the rows read and \
                     flushing traces (send it again to quit now)"
                ));
                cancel.abort();
            }
            _ => std::process::exit(i32::from(exit_code_of_signal(first))),
        }
    }
}

/// Logs go to stderr, above the progress bar when there is one.
pub(crate) fn init_logging(bar: Option<ProgressBar>) {
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
    ) + &if p.cached_calls > 0 {
        format!(" · {} calls from the store", thousands(p.cached_calls))
    } else {
        String::new()
    } + &match (p.cost_usd, p.estimated_total_usd()) {
        (Some(cost), Some(total)) => format!(" · ${cost:.4} so far, ~${total:.4} in all"),
        (Some(cost), None) => format!(" · ${cost:.4} so far"),
        (None, _) => " · cost unknown".to_string(),
    }
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
                bar.set_prefix(match start.shard {
                    Some(shard) => format!("{} (shard {shard})", start.pipeline),
                    None => start.pipeline.clone(),
                });
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            None => {
                let mut s = self.plain.lock().unwrap_or_else(|e| e.into_inner());
                s.total = start.total_rows;
                let total = start
                    .total_rows
                    .map(|t| format!("{t} rows"))
                    .unwrap_or_else(|| "rows".into());
                let shard = start
                    .shard
                    .map(|s| format!(" (shard {s})"))
                    .unwrap_or_default();
                note(&format!(
                    "running `{}`{shard}: {total} through {} → {}",
                    start.pipeline,
                    start.transforms.join(", "),
                    start.output.display()
                ));
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
                    note(&format!(
                        "progress: {}{of} rows · {}",
                        p.rows_done,
                        progress_message(p)
                    ));
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
    let how = match &s.stop_reason {
        _ if stopped => format!("stopped `{}`", s.pipeline),
        Some(StopReason::Signal(signal)) => format!("interrupted `{}` ({signal})", s.pipeline),
        Some(StopReason::Budget { .. }) => format!("stopped `{}` at its budget", s.pipeline),
        Some(reason) if reason.is_breaker() => format!("stopped `{}`", s.pipeline),
        _ if s.interrupted => format!("interrupted `{}`", s.pipeline),
        _ => format!("finished `{}`", s.pipeline),
    };
    let _ = writeln!(
        out,
        "{how}: {} rows in {secs:.1} s ({rate:.1} rows/s){flush}",
        s.rows_read
    );
    if let Some(reason @ StopReason::Budget { .. }) = &s.stop_reason {
        let _ = writeln!(out, "  stopped: {reason}");
        let _ = writeln!(
            out,
            "           rerun with a larger `--max-cost-usd`: the run resumes, paid replies come from the store"
        );
    }
    if let Some(reason) = s.stop_reason.as_ref().filter(|r| r.is_breaker()) {
        let _ = writeln!(out, "  stopped: {reason}");
        let _ = writeln!(
            out,
            "           fix the cause and rerun the same command: the run resumes"
        );
    }
    let mut rows = format!("  rows:    {} ok, {} failed", s.rows_ok, s.rows_failed);
    if s.rows_cancelled > 0 {
        rows.push_str(&format!(
            " ({} not processed: the run stopped early)",
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
    match s.cost_usd {
        Some(cost) => llm.push_str(&format!(", cost ${cost:.6}")),
        None => llm.push_str(&format!(
            ", cost unknown ({} calls have no price)",
            thousands(s.unpriced_calls)
        )),
    }
    if let Some(limit) = s.budget_usd {
        llm.push_str(&format!(" (budget ${limit:.2})"));
    }
    let _ = writeln!(out, "{llm}");
    for t in s
        .transforms
        .iter()
        .filter(|t| t.usage.calls + t.usage.failed_calls > 0)
    {
        let u = &t.usage;
        let mut line = format!("    {}: {} calls", t.label, thousands(u.calls));
        if u.failed_calls > 0 {
            let kinds: Vec<String> = u.failures.iter().map(|(k, n)| format!("{n} {k}")).collect();
            line.push_str(&format!(
                ", {} failed ({})",
                u.failed_calls,
                kinds.join(", ")
            ));
        }
        if u.retries > 0 {
            line.push_str(&format!(", {} retries", u.retries));
        }
        if let (Some(p50), Some(p95)) = (u.latency.quantile_ms(0.5), u.latency.quantile_ms(0.95)) {
            line.push_str(&format!(", p50 {p50:.0} ms / p95 {p95:.0} ms"));
        }
        match u.known_cost() {
            Some(c) => line.push_str(&format!(", ${c:.6} ({})", t.price)),
            None => line.push_str(&format!(", cost {}", t.price)),
        }
        let _ = writeln!(out, "{line}");
    }
    if let Some(store) = &s.store {
        let mut line = format!(
            "  store:   {} calls from {}",
            thousands(s.llm_calls_cached),
            store.display()
        );
        if s.llm_calls_cached > 0 {
            line.push_str(&format!(
                " (not paid again: saved {} tokens",
                thousands(s.saved_tokens)
            ));
            if s.saved_cost_usd > 0.0 {
                line.push_str(&format!(", ${:.6}", s.saved_cost_usd));
            }
            line.push(')');
        }
        let _ = writeln!(out, "{line}");
    }
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
            if e.kept > 0 {
                line.push_str(&format!(", {} kept for replay", e.kept));
            }
            line.push_str(&format!(" ({} recorded)", e.recorded));
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
