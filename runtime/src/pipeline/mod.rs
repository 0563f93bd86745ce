//! The pipeline runner: source → transforms → sink, streamed.
//!
//! - Rows are read one at a time on a blocking thread and pass through
//!   bounded channels, so memory does not grow with the number of rows.
//! - Each transform runs its rows with bounded concurrency (`pool_size`),
//!   or in chunks (`openrouter_batch_llm`) or batch jobs (`azure_batch_llm`).
//! - Rows leave **in input order**.
//! - A failed row keeps flowing (it skips the remaining transforms) and is
//!   written with an `error` field, or to `error_path`.
//! - [`CancelToken::cancel`] (Ctrl-C) stops taking rows and lets calls in
//!   flight finish; [`CancelToken::abort`] (a second Ctrl-C, or the grace
//!   period running out) cancels them. Everything read is written (stopped
//!   rows as failed with kind `cancelled`) and traces are flushed.
//! - Fail fast (`fail_fast:` in the config): a transform's first 401 / 403,
//!   or its last N rows all failing, cancels the run with a [`StopReason`]
//!   that the [`RunSummary`] carries.
//!
//! ```no_run
//! # async fn demo(config: elspeth_schema::config::PipelineConfig) -> Result<(), elspeth_runtime::pipeline::RunError> {
//! use elspeth_runtime::pipeline::{Pipeline, RunOptions};
//! let summary = Pipeline::new(config, "pipelines/").run(RunOptions::default()).await?;
//! println!("{} rows ok, {} failed", summary.rows_ok, summary.rows_failed);
//! # Ok(()) }
//! ```

mod cancel;
mod dry_run;
pub mod html_report;
mod item;
mod merge;
mod remote;
mod report;
mod sink;
mod source;
mod stage;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use elspeth_schema::config::{Env, PipelineConfig, ProcessEnv};
use elspeth_schema::paths::{PathClash, check_outputs, resolve_against};
use elspeth_telemetry::{ExportSummary, TracingRegistry, TransformLabel};
use tokio::sync::mpsc;

pub use crate::plan::TransformPlan;
pub use cancel::{CancelToken, StopReason, StopSignal};
pub use dry_run::DryRun;
pub use merge::{MergeError, MergeSummary};
pub use report::{
    HISTOGRAM_BARS, Progress, ROWS_NOTED, RowNote, RunObserver, RunStart, RunSummary,
    TransformSummary, thousands,
};
pub use sink::{ERROR_FIELD, write_atomic};

use crate::cost::{Budget, BudgetedTransform};
use crate::plan::{self as plan_, Plan, PlanError};
use crate::row::Shard;
use crate::store::{
    CallCache, Fingerprint, RunCounts, RunStatus, RunStore, StoreError, StoreSpool,
};
use crate::tier1::Tier1;
use crate::transform::{DynTransform, StartContext, StartError};
use crate::usage::{UsageMeter, UsageSnapshot, UsageTotals};
use item::{Item, RowTracing};
use serde_json::Value;
use sink::Sink;
use source::Source;
use stage::{Breaker, Mode, Stage};

/// Why a run could not start or had to stop. Row failures are not errors:
/// they are counted in the [`RunSummary`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config does not resolve: every problem (unset variables, a
    /// template that does not compile, ...), at once.
    #[error(transparent)]
    Build(#[from] PlanError),
    /// A transform could not start (unresolvable `${VAR}`, bad endpoint, ...).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The source could not be read.
    #[error("source {}: {message}", path.display())]
    Source {
        /// The source file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The run store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sink could not be written.
    #[error("sink {}: {message}", path.display())]
    Sink {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An object on object storage could not be read or written.
    #[error("{url}: {message}")]
    Remote {
        /// The object's URL, credentials masked.
        url: String,
        /// What went wrong, and how to fix it.
        message: String,
    },
    /// The run's budget cannot be kept (a transform without a price).
    #[error("budget: {message}; nothing was run")]
    Budget {
        /// What is missing, and how to fix it.
        message: String,
    },
    /// An output is the same file as an input (or as another output):
    /// refused before anything is opened for writing.
    #[error("{0}; nothing was run")]
    PathClash(#[from] PathClash),
    /// The run started, then stopped on `error` (a write failure such as a
    /// full disk, an unreadable source): `summary` says what was done and
    /// paid for. The outputs keep their previous content.
    #[error("{error}")]
    Stopped {
        /// What stopped the run (a [`RunError::Sink`] or [`RunError::Source`]).
        error: Box<RunError>,
        /// The rows done and the calls paid before it stopped.
        summary: Box<RunSummary>,
    },
}

impl RunError {
    /// The summary of a run that started and then failed, when there is one.
    pub fn summary(&self) -> Option<&RunSummary> {
        match self {
            Self::Stopped { summary, .. } => Some(summary),
            _ => None,
        }
    }

    /// The error itself, under any [`RunError::Stopped`] wrapper.
    pub fn cause(&self) -> &RunError {
        match self {
            Self::Stopped { error, .. } => error.cause(),
            other => other,
        }
    }
}

/// How to run a pipeline.
#[derive(Clone)]
pub struct RunOptions {
    /// Where `${VAR}` references are resolved (default: the process environment).
    pub env: Arc<dyn Env + Send + Sync>,
    /// Process at most this many rows.
    pub limit: Option<u64>,
    /// Stops the run (Ctrl-C).
    pub cancel: CancelToken,
    /// After a cancel, how long calls in flight may take before they are aborted.
    pub cancel_grace: Duration,
    /// How long the final flush of the traces may take.
    pub flush_deadline: Duration,
    /// Watches progress.
    pub observer: Option<Arc<dyn RunObserver>>,
    /// The tracing registry (default: real exporters over `env`).
    pub tracing: Option<Arc<TracingRegistry>>,
    /// Backoff before the first retry and the longest one (default 0.5 s / 30 s).
    pub backoff: Option<(Duration, Duration)>,
    /// Rows buffered between two stages.
    pub channel_capacity: usize,
    /// The run store (`None`: no store, every call is paid). `elspeth run`
    /// always has one; a library caller opts in with [`with_store`](Self::with_store).
    pub store: Option<StoreOptions>,
}

/// Where the run store lives and whether it serves stored replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The SQLite file (created with its folder when missing).
    pub path: PathBuf,
    /// Serve stored replies (`false` with `--no-cache`: every call is paid
    /// again, and its reply still stored).
    pub serve: bool,
}

impl StoreOptions {
    /// The default store of the pipeline file `pipeline`: `<stem>.elspeth.db`
    /// in the same folder.
    pub fn beside(pipeline: &Path) -> Self {
        let stem = pipeline
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".into());
        Self {
            path: pipeline.with_file_name(format!("{stem}.elspeth.db")),
            serve: true,
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            env: Arc::new(ProcessEnv),
            limit: None,
            cancel: CancelToken::new(),
            cancel_grace: Duration::from_secs(30),
            flush_deadline: Duration::from_secs(10),
            observer: None,
            tracing: None,
            backoff: None,
            channel_capacity: 256,
            store: None,
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("limit", &self.limit)
            .field("cancel_grace", &self.cancel_grace)
            .field("flush_deadline", &self.flush_deadline)
            .field("channel_capacity", &self.channel_capacity)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// Resolves `${VAR}` against `env`.
    pub fn with_env(mut self, env: Arc<dyn Env + Send + Sync>) -> Self {
        self.env = env;
        self
    }
    /// At most `limit` rows.
    pub fn with_limit(mut self, limit: Option<u64>) -> Self {
        self.limit = limit;
        self
    }
    /// Stopped by `cancel`.
    pub fn with_cancel(mut self, cancel: CancelToken) -> Self {
        self.cancel = cancel;
        self
    }
    /// Watched by `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn RunObserver>) -> Self {
        self.observer = Some(observer);
        self
    }
    /// Traces through `registry`.
    pub fn with_tracing(mut self, registry: Arc<TracingRegistry>) -> Self {
        self.tracing = Some(registry);
        self
    }
    /// Retries back off from `base` up to `max`.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = Some((base, max));
        self
    }
    /// Keeps finished calls in the run store `store` and serves them again.
    pub fn with_store(mut self, store: StoreOptions) -> Self {
        self.store = Some(store);
        self
    }
    /// Calls in flight get `grace` to finish after a cancel.
    pub fn with_cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// The start context of transform `label` in a run with these options.
    fn start_context(&self, label: TransformLabel, registry: Arc<TracingRegistry>) -> StartContext {
        let mut ctx = StartContext::new(label, registry);
        ctx.env = self.env.clone();
        if let Some((base, max)) = self.backoff {
            ctx.backoff_base = base;
            ctx.backoff_max = max;
        }
        ctx
    }
}

/// A pipeline ready to run: its config, the folder relative paths are
/// resolved against, and any custom transforms.
pub struct Pipeline {
    config: PipelineConfig,
    base_dir: PathBuf,
    /// The pipeline file, when the config comes from one: no output may
    /// overwrite it.
    file: Option<PathBuf>,
    custom: Vec<Box<dyn DynTransform>>,
    /// Only the rows of this shard (`--shard i/n`).
    shard: Option<Shard>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.config.name)
            .field("base_dir", &self.base_dir)
            .field("file", &self.file)
            .field(
                "custom",
                &self
                    .custom
                    .iter()
                    .map(|t| t.plugin().to_string())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Paths of a run, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPaths {
    /// The source file.
    pub source: PathBuf,
    /// The sink file.
    pub sink: PathBuf,
    /// The failed-rows file, when configured.
    pub errors: Option<PathBuf>,
}

impl Pipeline {
    /// A pipeline from a config; relative paths resolve against `base_dir`
    /// (the folder of the YAML file).
    pub fn new(config: PipelineConfig, base_dir: impl Into<PathBuf>) -> Self {
        Self {
            config,
            base_dir: base_dir.into(),
            file: None,
            custom: Vec::new(),
            shard: None,
        }
    }

    /// Names the pipeline file the config was read from, so that
    /// [`run`](Self::run) refuses an output that would overwrite it (the
    /// base folder is not changed).
    pub fn with_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Runs only the rows of `shard` (`--shard i/n`): the rows whose
    /// [`RowIdentity`](crate::RowIdentity) falls in it. Its sink, error
    /// file and checkpoints are the shard's own
    /// ([`Shard::path_of`]); `None`: every row.
    pub fn with_shard(mut self, shard: Option<Shard>) -> Self {
        self.shard = shard;
        self
    }

    /// The shard this pipeline runs, if any.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// Which source rows a run takes, and how each is identified.
    fn row_selection(&self) -> source::RowSelection {
        source::RowSelection {
            shard: self.shard,
            key: self.config.source.key().map(str::to_string),
        }
    }

    /// The pipeline file, when set with [`with_file`](Self::with_file).
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Appends a custom transform after the configured ones (it runs on
    /// every row that the configured ones did not fail).
    pub fn with_transform(mut self, transform: Box<dyn DynTransform>) -> Self {
        self.custom.push(transform);
        self
    }

    /// The config.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The folder relative paths resolve against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// Source, sink and error paths, resolved against the base folder.
    pub fn paths(&self) -> ResolvedPaths {
        let resolve = |p: &str| resolve_against(&self.base_dir, p);
        let output = |p: &str| match self.shard {
            Some(shard) => shard.path_of(&resolve(p)),
            None => resolve(p),
        };
        ResolvedPaths {
            source: resolve(self.config.source.path()),
            sink: output(self.config.sink.path()),
            errors: self.config.sink.error_path().map(output),
        }
    }

    /// Checks, by file identity ([`elspeth_schema::paths`]), that no output
    /// is the same file as an input (the source, the pipeline file) or as
    /// another output. The outputs are the sink, its `error_path` and
    /// `extra_outputs` (e.g. `("run store", path)`): [`run`](Self::run)
    /// calls this before it opens anything for writing.
    pub fn check_outputs(&self, extra_outputs: &[(&str, &Path)]) -> Result<(), PathClash> {
        let paths = self.paths();
        let mut inputs: Vec<(&str, &Path)> = vec![("source", paths.source.as_path())];
        if let Some(file) = &self.file {
            inputs.push(("pipeline file", file.as_path()));
        }
        let mut outputs: Vec<(&str, &Path)> = vec![("sink", paths.sink.as_path())];
        if let Some(errors) = &paths.errors {
            outputs.push(("error_path", errors.as_path()));
        }
        outputs.extend_from_slice(extra_outputs);
        check_outputs(&inputs, &outputs)
    }

    /// Says when earlier runs left spans waiting in `store` for their
    /// tracing backends.
    fn say_kept_spans(&self, store: &RunStore) {
        let waiting: u64 = match store.kept_span_counts() {
            Ok(kept) => kept.iter().map(|k| k.count).sum(),
            Err(e) => {
                tracing::debug!(error = %e, "could not count the kept spans");
                0
            }
        };
        if waiting > 0 {
            let file = self
                .file
                .as_deref()
                .map_or_else(|| "PIPELINE.yaml".into(), |f| f.display().to_string());
            tracing::warn!(
                spans = waiting,
                "{waiting} tracing spans from earlier runs are waiting in the run store for their backends; send them with `elspeth traces replay {file}`"
            );
        }
    }

    /// The plan of this pipeline: its config resolved against `env`.
    pub fn plan(&self, env: &dyn Env) -> Result<Plan, PlanError> {
        Plan::resolve(&self.config, &self.base_dir, env)
    }

    /// The transforms of `plan`, then the custom ones, ready to start.
    fn build(&mut self, plan: Plan) -> Vec<Unstarted> {
        let mut out = Vec::with_capacity(plan.transforms.len() + self.custom.len());
        for spec in plan.transforms {
            let mode = match spec.mode {
                plan_::Mode::PerCall => Mode::PerRow,
                plan_::Mode::Job { batch_size } => Mode::Batch(batch_size.max(1)),
                plan_::Mode::Chunked { rows } => Mode::Chunked(rows.max(1)),
            };
            let (label, fingerprint) = (spec.label.clone(), spec.fingerprint);
            out.push((label, spec.build(), mode, Some(fingerprint)));
        }
        for (k, transform) in std::mem::take(&mut self.custom).into_iter().enumerate() {
            let label = TransformLabel {
                index: self.config.transforms.len() + k,
                plugin: transform.plugin().to_string(),
            };
            let mode = mode_of(transform.as_ref());
            // A custom transform is not fingerprinted: its calls are not cached.
            out.push((label, transform, mode, None));
        }
        out
    }

    /// What the summary says of each transform before its calls: label,
    /// plugin, model and price (configured ones from the plan, custom ones
    /// as they name themselves).
    fn transform_infos(&self, plan: &Plan) -> Vec<TransformSummary> {
        let configured = plan.transforms.iter().map(|t| TransformSummary {
            label: t.label.to_string(),
            plugin: t.label.plugin.clone(),
            model: t.target.model().to_string(),
            price: t.price.describe(),
            usage: UsageSnapshot::default(),
        });
        let custom = self.custom.iter().enumerate().map(|(k, t)| {
            let label = TransformLabel {
                index: self.config.transforms.len() + k,
                plugin: t.plugin().to_string(),
            };
            TransformSummary {
                label: label.to_string(),
                plugin: label.plugin,
                model: String::new(),
                price: "set by the transform".into(),
                usage: UsageSnapshot::default(),
            }
        });
        configured.chain(custom).collect()
    }

    /// A budget needs a price for every transform: one whose cost would be
    /// unknown, or a custom transform, is refused (before anything is
    /// opened).
    fn check_budget(&self, plan: &Plan) -> Result<(), RunError> {
        let unpriced = |t: &&plan_::TransformSpec| t.price.price.is_none() && !t.price.reported;
        if let Some(t) = plan.transforms.iter().find(unpriced) {
            return Err(RunError::Budget {
                message: format!(
                    "{}: {}; a budget needs a price for every transform",
                    t.label,
                    t.price.describe()
                ),
            });
        }
        if !self.custom.is_empty() {
            return Err(RunError::Budget {
                message: "a budget cannot bound custom transforms (their cost is their own)".into(),
            });
        }
        Ok(())
    }

    /// The run's budget of `limit_usd`: each configured transform's first
    /// call estimated on the first rows of `source` (read here: a few rows,
    /// before the run takes any).
    fn budget(
        &self,
        limit_usd: f64,
        plan: &Plan,
        meters: &[Arc<UsageMeter>],
        source: &Path,
    ) -> Budget {
        let sample = source::first_rows(&self.config.source, source, BUDGET_SAMPLE_ROWS);
        let transforms = plan
            .estimate(&sample)
            .into_iter()
            .zip(meters)
            .map(|(e, meter)| BudgetedTransform {
                meter: meter.clone(),
                calls_per_row: e.calls_per_row,
                first_call_usd: e.call_ceiling_usd(),
            })
            .collect();
        Budget::new(limit_usd, transforms)
    }

    /// Describes what [`run`](Self::run) would do, without any LLM call:
    /// the plan's description (every `${VAR}` checked), the row count and
    /// the first row's prompts.
    pub fn dry_run(&self, options: &RunOptions) -> Result<DryRun, RunError> {
        dry_run::describe(self, options)
    }

    /// Runs the pipeline to the end (or until cancelled).
    pub async fn run(mut self, options: RunOptions) -> Result<RunSummary, RunError> {
        let started = Instant::now();
        let plan = self.plan(options.env.as_ref())?;
        // What the summary says of each transform, taken before the plan
        // is consumed by the build.
        let infos = self.transform_infos(&plan);
        for t in plan.transforms.iter().filter(|t| t.price.price.is_none()) {
            // Said once, at the start: the summary then shows "unknown".
            if t.price.reported {
                tracing::info!("{}: cost {}", t.label, t.price.describe());
            } else {
                tracing::warn!("{}: cost {}", t.label, t.price.describe());
            }
        }
        let meters: Vec<Arc<UsageMeter>> = infos.iter().map(|_| Arc::default()).collect();
        if self.config.budget.is_some() {
            self.check_budget(&plan)?;
        }

        let paths = self.paths();
        // Before anything is opened for writing, the run store included.
        match &options.store {
            Some(store) => self.check_outputs(&[("run store", &store.path)])?,
            None => self.check_outputs(&[])?,
        }
        let store = match &options.store {
            // `--limit 0` writes nothing at all, not even a store.
            Some(o) if options.limit != Some(0) => {
                let store = Arc::new(RunStore::open(&o.path)?);
                let config = serde_json::to_string(&self.config).unwrap_or_default();
                let run = store.begin_run(
                    &self.config.name,
                    &Fingerprint::of_parts(&[("config", &config)]),
                )?;
                self.say_kept_spans(&store);
                Some((store, run, o.serve))
            }
            _ => None,
        };
        // Objects on object storage: the source streamed to a local file,
        // the outputs written locally and uploaded once committed.
        let staged = remote::Staged::prepare(&paths).await?;
        let local = &staged.local;
        let source = Source::open(&self.config.source, &local.source)?;
        let sink = Sink::create(&self.config.sink, &local.sink, local.errors.as_deref())?;
        let total = {
            let (cfg, path, limit, selection) = (
                self.config.source.clone(),
                local.source.clone(),
                options.limit,
                self.row_selection(),
            );
            tokio::task::spawn_blocking(move || source::count_rows(&cfg, &path, limit, &selection))
                .await
                .ok()
                .flatten()
        };
        let budget = self
            .config
            .budget
            .map(|b| Arc::new(self.budget(b.max_cost_usd, &plan, &meters, &local.source)));
        let built = self.build(plan);

        let tier1 = match &self.config.telemetry {
            Some(t) => crate::tracing_settings::tier1(t, options.env.as_ref()),
            None => Tier1::disabled(),
        };
        let registry = options.tracing.clone().unwrap_or_else(|| {
            let registry = TracingRegistry::new().with_tier1(&tier1);
            Arc::new(match &store {
                // What the backends do not take in time waits in the store.
                Some((store, run, _)) => registry.with_spool(Arc::new(StoreSpool::new(
                    store.clone(),
                    Some(*run),
                    self.config.store.clone().unwrap_or_default().max_kept_spans,
                ))),
                None => registry,
            })
        });
        let run_id = elspeth_telemetry::record::TraceId::random().to_hex();
        let shard_text = self.shard.map(|s| s.to_string());
        let run_span = tier1.start_run(&self.config.name, &run_id, shard_text.as_deref());
        let row_tracing = RowTracing {
            tier1: tier1.clone(),
            run: run_span.link(),
            pipeline: self.config.name.clone(),
            run_id,
            shard: self.shard,
            shard_text,
        };
        let checkpoint_dir = local.sink.parent().map(Path::to_path_buf);
        let fail_fast = self.config.fail_fast.clone().unwrap_or_default();
        let mut stages: Vec<Stage> = Vec::with_capacity(built.len());
        for (label, mut transform, mode, fingerprint) in built {
            let mut start = options.start_context(label.clone(), registry.clone());
            start.checkpoint_dir = checkpoint_dir.clone();
            start.store = store.as_ref().map(|(s, _, _)| s.clone());
            start.tier1 = tier1.clone();
            start.usage = meters[label.index].clone();
            match transform.on_start(&start).await {
                Ok(tracer) => stages.push(Stage {
                    // Configured transforms are fingerprinted by the plan;
                    // a custom one is not cached.
                    cache: match (&store, fingerprint) {
                        (Some((store, run, serve)), Some(fingerprint)) => Some(Arc::new(
                            CallCache::new(
                                store.clone(),
                                fingerprint,
                                Some(*run),
                                *serve,
                                meters[label.index].clone(),
                            )
                            .with_tier1(tier1.clone(), label.to_string()),
                        )),
                        _ => None,
                    },
                    breaker: Arc::new(Breaker::new(
                        label.clone(),
                        fail_fast.consecutive_failures,
                        fail_fast.on_auth_error,
                    )),
                    label_text: Arc::from(label.to_string()),
                    label,
                    concurrency: transform.concurrency().max(1),
                    transform: Arc::from(transform),
                    tracer,
                    mode,
                }),
                Err(e) => {
                    run_span.fail("start_error");
                    close_all(stages, &registry, &tier1, options.flush_deadline).await;
                    return Err(RunError::Start(e));
                }
            }
        }

        let observer = options.observer.clone();
        if let Some(o) = &observer {
            o.started(&RunStart {
                pipeline: self.config.name.clone(),
                total_rows: total,
                transforms: stages.iter().map(|s| s.label.to_string()).collect(),
                output: paths.sink.clone(),
                shard: self.shard,
            });
        }

        let cancel = options.cancel.clone();
        let capacity = options.channel_capacity.max(1);
        let (source_tx, mut rx) = mpsc::channel::<Item>(capacity);
        let source_task = {
            let cancel = cancel.clone();
            let limit = options.limit;
            let selection = self.row_selection();
            let budget = budget.clone();
            tokio::task::spawn_blocking(move || {
                source.pump(
                    limit,
                    &selection,
                    // The budget is asked last: a row it lets through is
                    // counted as taken.
                    || {
                        cancel.is_cancelled()
                            || budget
                                .as_ref()
                                .is_some_and(|b| !b.take_row(&|| cancel.is_cancelled()))
                    },
                    |mut item| {
                        row_tracing.begin(&mut item);
                        source_tx.blocking_send(item).is_ok()
                    },
                )
            })
        };
        let stages: Vec<Arc<Stage>> = stages.into_iter().map(Arc::new).collect();
        let mut stage_tasks = Vec::with_capacity(stages.len());
        for stage in &stages {
            let (tx, next) = mpsc::channel::<Item>(capacity);
            stage_tasks.push(tokio::spawn(stage.clone().run(rx, tx, cancel.clone())));
            rx = next;
        }
        let watchdog = {
            let cancel = cancel.clone();
            let observer = observer.clone();
            let grace = options.cancel_grace;
            tokio::spawn(async move {
                cancel.cancelled().await;
                if let Some(o) = &observer {
                    o.stopping();
                }
                tracing::info!(
                    "stopping: no new rows are taken; calls in flight get {} s to finish",
                    grace.as_secs_f64()
                );
                tokio::time::sleep(grace).await;
                cancel.abort();
            })
        };
        let writer = {
            let log = RowLog {
                meters: meters.clone(),
                observer: observer.clone(),
                started,
                budget: budget.clone(),
                total_rows: total,
                key: self.config.source.key().map(str::to_string),
            };
            tokio::task::spawn_blocking(move || write_all(sink, rx, &log))
        };

        let (counts, written) = writer.await.unwrap_or_else(|e| {
            let error = RunError::Sink {
                path: paths.sink.clone(),
                message: format!("the writer thread failed: {e}"),
            };
            (Counts::default(), Err(error))
        });
        // Whether the run was interrupted (Ctrl-C), as opposed to stopped by
        // the write failure below.
        let interrupted_before = cancel.is_cancelled();
        if written.is_err() {
            // Nothing can be written any more: stop everything now.
            cancel.abort();
        }
        for task in stage_tasks {
            let _ = task.await;
        }
        let read = source_task.await.unwrap_or_else(|e| {
            Err(RunError::Source {
                path: paths.source.clone(),
                message: format!("the reader thread failed: {e}"),
            })
        });
        watchdog.abort();
        let interrupted = if written.is_err() {
            interrupted_before
        } else {
            cancel.is_cancelled()
        };
        let committed = match (written, &read) {
            (Err(e), _) => Err(e),
            // The source failed: the output would miss rows, so the previous
            // one stays.
            (Ok(sink), Err(_)) => {
                sink.discard();
                Ok(())
            }
            // `--limit 0`, or interrupted before any row was written: an
            // empty file must not replace a previous output.
            (Ok(sink), Ok(_))
                if counts.ok + counts.failed == 0 && (interrupted || options.limit == Some(0)) =>
            {
                sink.discard();
                Ok(())
            }
            (Ok(sink), Ok(_)) => match tokio::task::spawn_blocking(move || sink.commit())
                .await
                .unwrap_or_else(|e| {
                    Err(RunError::Sink {
                        path: paths.sink.clone(),
                        message: format!("the writer thread failed: {e}"),
                    })
                }) {
                Ok(()) => staged.upload().await,
                Err(e) => Err(e),
            },
        };
        let (rows_read, failure) = match (read, committed) {
            (_, Err(e)) | (Err(e), Ok(())) => (counts.ok + counts.failed, Some(e)),
            (Ok(n), Ok(())) => (n, None),
        };

        let rows_elapsed = started.elapsed();
        let stages: Vec<Stage> = stages.into_iter().filter_map(Arc::into_inner).collect();
        if failure.is_some() {
            run_span.fail("io_error");
        } else if interrupted {
            run_span.fail("interrupted");
        } else {
            run_span.end();
        }
        let exporters = close_all(stages, &registry, &tier1, options.flush_deadline).await;

        let transforms: Vec<TransformSummary> = infos
            .into_iter()
            .zip(&meters)
            .map(|(mut info, meter)| {
                info.usage = meter.snapshot();
                info
            })
            .collect();
        let mut usage = UsageSnapshot::default();
        for t in &transforms {
            usage.add(&t.usage);
        }
        let budget_stop = budget.as_ref().and_then(|b| {
            b.stopped_at().map(|spent_usd| StopReason::Budget {
                limit_usd: b.limit_usd(),
                spent_usd,
            })
        });
        // A budget stop is an interruption like a signal: the run store
        // marks the run stopped, and the rerun resumes it.
        let interrupted = interrupted || budget_stop.is_some();
        if let Some((store, run, _)) = &store {
            let status = if failure.is_some() {
                RunStatus::Failed
            } else if interrupted {
                RunStatus::Stopped
            } else {
                RunStatus::Finished
            };
            let counts = RunCounts {
                rows_read,
                rows_ok: counts.ok,
                rows_failed: counts.failed,
                calls: usage.calls,
                cached_calls: usage.cached_calls,
            };
            if let Err(e) = store.finish_run(*run, status, &counts) {
                tracing::warn!("{e}: the run's end is not recorded (its results are)");
            }
        }
        let summary = RunSummary {
            pipeline: self.config.name.clone(),
            rows_read,
            rows_ok: counts.ok,
            rows_failed: counts.failed,
            rows_cancelled: counts.cancelled,
            llm_calls: usage.calls,
            llm_calls_failed: usage.failed_calls,
            tokens_in: usage.tokens_in,
            tokens_out: usage.tokens_out,
            cost_usd: usage.known_cost(),
            unpriced_calls: usage.unpriced_calls,
            transforms,
            failed_rows: counts.failed_rows,
            slowest_rows: counts.slowest_rows.into_sorted(),
            budget_usd: budget.as_ref().map(|b| b.limit_usd()),
            exporters,
            elapsed: started.elapsed(),
            rows_elapsed,
            interrupted,
            stop_reason: cancel.stop_reason().or(budget_stop),
            output: paths.sink,
            error_output: paths.errors,
            llm_calls_cached: usage.cached_calls,
            saved_tokens: usage.saved_tokens,
            saved_cost_usd: usage.saved_cost_usd,
            store: store.as_ref().map(|(s, _, _)| s.path().to_path_buf()),
        };
        if let Some(o) = &observer {
            o.finished(&summary);
        }
        match failure {
            Some(error) => Err(RunError::Stopped {
                error: Box::new(error),
                summary: Box::new(summary),
            }),
            None => Ok(summary),
        }
    }
}

/// Rows read to estimate a budget's first calls.
const BUDGET_SAMPLE_ROWS: usize = 20;

/// A built transform before `on_start`.
/// A transform ready to start: its label, itself, how it gets its rows and
/// its fingerprint (`None` for a custom transform: not cached).
type Unstarted = (
    TransformLabel,
    Box<dyn DynTransform>,
    Mode,
    Option<Fingerprint>,
);

fn mode_of(transform: &dyn DynTransform) -> Mode {
    match transform.batch_size() {
        Some(n) => Mode::Batch(n.max(1)),
        None => Mode::PerRow,
    }
}

/// Closes every transform (concurrently), then flushes the Tier 2 and Tier 1
/// exporters (concurrently), all within one `budget`: however many
/// transforms and exporters there are, and however dead their backends,
/// the run ends at most `budget` after its last row.
async fn close_all(
    stages: Vec<Stage>,
    registry: &TracingRegistry,
    tier1: &Tier1,
    budget: Duration,
) -> Vec<ExportSummary> {
    let deadline = tokio::time::Instant::now() + budget;
    let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
    let closes = stages.into_iter().map(|stage| async move {
        let Stage {
            label,
            mut transform,
            tracer,
            ..
        } = stage;
        match Arc::get_mut(&mut transform) {
            Some(t) => {
                let _ = t.close(tracer).await;
            }
            None => tracing::warn!(
                transform = %label,
                "transform still in use at close; its traces are flushed with the registry"
            ),
        }
    });
    // A close still flushing at the deadline is abandoned: its exporter is
    // shut down (and its unsent spans counted) just below.
    let _ = tokio::time::timeout_at(deadline, futures_util::future::join_all(closes)).await;
    let (mut exporters, tier1_exporters) =
        tokio::join!(registry.shutdown(left()), tier1.shutdown(left()));
    exporters.extend(tier1_exporters);
    exporters
}

#[derive(Debug, Default)]
struct Counts {
    ok: u64,
    failed: u64,
    cancelled: u64,
    /// The first failed rows.
    failed_rows: Vec<RowNote>,
    /// The slowest rows.
    slowest_rows: Slowest,
}

/// The [`ROWS_NOTED`] slowest rows written so far.
#[derive(Debug, Default)]
struct Slowest(std::collections::BinaryHeap<std::cmp::Reverse<(Duration, u64, NoteBox)>>);

/// A [`RowNote`] in the heap (ordered by the elapsed time and index beside it).
#[derive(Debug)]
struct NoteBox(RowNote);

impl PartialEq for NoteBox {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for NoteBox {}
impl PartialOrd for NoteBox {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for NoteBox {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl Slowest {
    /// Keeps `note` when it is among the slowest.
    fn offer(&mut self, note: impl FnOnce() -> RowNote, elapsed: Duration, index: u64) {
        if self.0.len() >= ROWS_NOTED {
            match self.0.peek() {
                Some(std::cmp::Reverse((fastest, _, _))) if *fastest >= elapsed => return,
                _ => {
                    self.0.pop();
                }
            }
        }
        self.0
            .push(std::cmp::Reverse((elapsed, index, NoteBox(note()))));
    }

    /// Slowest first.
    fn into_sorted(self) -> Vec<RowNote> {
        // Ascending order of `Reverse` is descending elapsed time.
        self.0
            .into_sorted_vec()
            .into_iter()
            .map(|std::cmp::Reverse((_, _, n))| n.0)
            .collect()
    }
}

/// What the writer thread reports to as it writes.
struct RowLog {
    meters: Vec<Arc<UsageMeter>>,
    observer: Option<Arc<dyn RunObserver>>,
    started: Instant,
    budget: Option<Arc<Budget>>,
    total_rows: Option<u64>,
    /// The source's `key` field: a row's id in the summary.
    key: Option<String>,
}

impl RowLog {
    /// Counts `item`, notes it when it failed or was slow, tells the
    /// budget and the observer.
    fn written(&self, counts: &mut Counts, item: &Item) {
        if item.error.is_some() {
            counts.failed += 1;
            if item.is_cancelled() {
                counts.cancelled += 1;
            }
        } else {
            counts.ok += 1;
        }
        let elapsed = item.read_at.elapsed();
        let note = || RowNote {
            index: item.index,
            id: self.id_of(item),
            elapsed,
            error: item.error.as_ref().map(|f| {
                (
                    f.transform.clone(),
                    f.error.kind.to_string(),
                    f.error.message.clone(),
                )
            }),
        };
        if item.error.is_some() && counts.failed_rows.len() < ROWS_NOTED {
            counts.failed_rows.push(note());
        }
        counts.slowest_rows.offer(note, elapsed, item.index);
        if let Some(b) = &self.budget {
            b.row_written();
        }
        if let Some(o) = &self.observer {
            let usage = self.meters.iter().map(|m| m.totals()).fold(
                UsageTotals {
                    cost_usd: Some(0.0),
                    ..Default::default()
                },
                std::ops::Add::add,
            );
            o.row_written(&Progress {
                rows_done: counts.ok + counts.failed,
                rows_ok: counts.ok,
                rows_failed: counts.failed,
                tokens_in: usage.tokens_in,
                tokens_out: usage.tokens_out,
                cached_calls: usage.cached_calls,
                cost_usd: usage.cost_usd,
                total_rows: self.total_rows,
                elapsed: self.started.elapsed(),
            });
        }
    }

    /// The row's `key` value when the source has one, else `row-<index>`.
    fn id_of(&self, item: &Item) -> String {
        match self.key.as_deref().and_then(|k| item.row.get(k)) {
            Some(Value::String(s)) => s.clone(),
            Some(v) if !v.is_null() => v.to_string(),
            _ => item.token_id.clone(),
        }
    }
}

/// The writer thread: writes every row in arrival (= input) order, flushing
/// whenever it would otherwise wait. Returns the rows written so far with
/// the sink, or with the error that stopped it (the sink then dropped, so
/// its temporary files are gone and the destinations untouched).
fn write_all(
    mut sink: Sink,
    rx: mpsc::Receiver<Item>,
    log: &RowLog,
) -> (Counts, Result<Sink, RunError>) {
    let mut counts = Counts::default();
    let result = write_rows(&mut sink, rx, &mut counts, log);
    (counts, result.map(|()| sink))
}

fn write_rows(
    sink: &mut Sink,
    mut rx: mpsc::Receiver<Item>,
    counts: &mut Counts,
    log: &RowLog,
) -> Result<(), RunError> {
    loop {
        let mut item = match rx.try_recv() {
            Ok(item) => item,
            Err(mpsc::error::TryRecvError::Empty) => {
                sink.flush()?;
                match rx.blocking_recv() {
                    Some(item) => item,
                    None => break,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        log.written(counts, &item);
        item.end_span();
        sink.write(item)?;
    }
    sink.flush()
}
