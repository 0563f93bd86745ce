//! The resolved plan of a run: the config read once, every `${VAR}`
//! resolved, every template compiled, every problem found at once.
//!
//! [`Plan::resolve`] turns a [`PipelineConfig`] into one [`TransformSpec`]
//! per configured transform (label, mode, resolved target, compiled prompt,
//! queries, call options, fingerprint, tracing config), or a [`PlanError`]
//! listing every problem. The runner builds its transforms from the specs;
//! `--dry-run` prints the plan's own description ([`Plan::describe`]).
//!
//! Each plugin's part lives in its own file under `transforms/`, as an
//! impl of [`BuildTransform`] for its options type; [`plugin_of`] is the one
//! `match` over [`TransformConfig`] in the runtime.
//!
//! ```
//! use elspeth_runtime::plan::{Mode, Plan};
//! use elspeth_schema::config::PipelineConfig;
//! let config: PipelineConfig = serde_json::from_value(serde_json::json!({
//!     "name": "demo",
//!     "source": {"plugin": "jsonl", "path": "in.jsonl"},
//!     "transforms": [{"plugin": "openrouter_llm", "options": {
//!         "model": "openai/gpt-4o-mini", "api_key": "${KEY}",
//!         "prompt_template": "Classify: {{ text }}"}}],
//!     "sink": {"plugin": "jsonl", "path": "out.jsonl"}
//! })).unwrap();
//! let env: std::collections::HashMap<String, String> = [("KEY".into(), "k".into())].into();
//! let plan = Plan::resolve(&config, "pipelines".as_ref(), &env).unwrap();
//! assert_eq!(plan.transforms[0].mode, Mode::PerCall);
//! assert_eq!(plan.transforms[0].target.url(), "https://openrouter.ai/api/v1");
//!
//! let missing: std::collections::HashMap<String, String> = Default::default();
//! let e = Plan::resolve(&config, "pipelines".as_ref(), &missing).unwrap_err();
//! assert!(e.to_string().starts_with(
//!     "transforms[0] (openrouter_llm): api_key: environment variable `KEY` is not set"));
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use elspeth_schema::config::{
    AzureConnection, CallOptions, Connection, Env, EnvString, OpenRouterConnection, PipelineConfig,
    PromptOptions, QueryMatrix, SecretRef, TracingConfig, TransformConfig, TransformOptions,
};
use elspeth_schema::interpolate::EnvError;
use elspeth_schema::paths::resolve_against;
use elspeth_telemetry::{ExporterSettings, TransformLabel};
use secrecy::SecretString;
use serde_json::Value;

use crate::clients::{AzureTarget, OpenRouterTarget};
use crate::engine::HasTracing;
use crate::row::Row;
use crate::store::Fingerprint;
use crate::transform::DynTransform;
use crate::transforms::matrix::{MatrixProblem, Query, expand};
use crate::transforms::prompt::{Prompt, PromptError};

/// How the runner hands a transform its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One row at a time, up to the transform's concurrency in flight.
    PerCall,
    /// Batch jobs of `batch_size` rows (`azure_batch_llm`).
    Job {
        /// Rows per job.
        batch_size: usize,
    },
    /// Chunks of `rows` rows, each row its own call (`openrouter_batch_llm`).
    Chunked {
        /// Rows per chunk.
        rows: usize,
    },
}

/// The LLM service a transform calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Azure OpenAI chat completions.
    AzureOpenAi,
    /// The Azure OpenAI Batch API.
    AzureOpenAiBatch,
    /// OpenRouter (or any OpenAI-compatible chat API).
    OpenRouter,
}

impl Service {
    /// The name shown by `--dry-run`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AzureOpenAi => "Azure OpenAI",
            Self::AzureOpenAiBatch => "Azure OpenAI Batch API",
            Self::OpenRouter => "OpenRouter",
        }
    }
}

/// Where a transform's calls go, every reference resolved.
#[derive(Debug)]
pub enum Target {
    /// An Azure OpenAI resource and deployment.
    Azure(AzureTarget),
    /// An OpenRouter-style API and model.
    OpenRouter(OpenRouterTarget),
}

impl Clone for Target {
    fn clone(&self) -> Self {
        match self {
            Self::Azure(t) => Self::Azure(AzureTarget {
                endpoint: t.endpoint.clone(),
                deployment: t.deployment.clone(),
                api_version: t.api_version.clone(),
                api_key: t.api_key.clone(),
            }),
            Self::OpenRouter(t) => Self::OpenRouter(OpenRouterTarget {
                base_url: t.base_url.clone(),
                model: t.model.clone(),
                api_key: t.api_key.clone(),
                http_referer: t.http_referer.clone(),
                app_title: t.app_title.clone(),
            }),
        }
    }
}

impl Target {
    /// The endpoint or base URL.
    pub fn url(&self) -> &str {
        match self {
            Self::Azure(t) => &t.endpoint,
            Self::OpenRouter(t) => &t.base_url,
        }
    }

    /// The deployment or model.
    pub fn model(&self) -> &str {
        match self {
            Self::Azure(t) => &t.deployment,
            Self::OpenRouter(t) => &t.model,
        }
    }
}

/// One configured transform, resolved: what it calls, how, and with which
/// prompt. Building it ([`TransformSpec::build`]) does no I/O.
#[derive(Debug)]
pub struct TransformSpec {
    /// `transforms[i] (plugin)`.
    pub label: TransformLabel,
    /// How its rows are handed over.
    pub mode: Mode,
    /// The service called.
    pub service: Service,
    /// Endpoint or base URL, deployment or model, API version, key.
    pub target: Target,
    /// The compiled prompt and reply mapping.
    pub prompt: Prompt,
    /// The expanded query matrix (empty: one call per row).
    pub queries: Vec<Query>,
    /// Sampling, limits, retries and concurrency.
    pub call: CallOptions,
    /// What it calls, for the run store (never covers a secret).
    pub fingerprint: Fingerprint,
    /// How its calls are priced.
    pub price: crate::cost::TransformPrice,
    /// The options it was resolved from (its tracing block among them:
    /// [`TransformSpec::tracing`]).
    pub config: TransformConfig,
    /// The URL as shown by `--dry-run`: `None` when it did not resolve.
    shown_target: Option<String>,
    /// What `--dry-run` says of its tracing (`off`, `langfuse (host)`, ...).
    tracing_summary: String,
    /// Tracing problems that would turn its tracing off.
    tracing_warnings: Vec<String>,
}

impl TransformSpec {
    /// Resolves transform number `index` alone (as [`Plan::resolve`] does
    /// for each one).
    pub fn resolve(
        config: &TransformConfig,
        index: usize,
        env: &dyn Env,
    ) -> Result<TransformSpec, PlanError> {
        let mut problems = Vec::new();
        let spec = resolve_one(config, index, env, &mut problems);
        match (spec, problems.is_empty()) {
            (Some(spec), true) => Ok(spec),
            (spec, _) => Err(PlanError::new(problems, spec.map(|s| vec![s]))),
        }
    }

    /// Its tracing block, which the tracer set-up at start resolves (as
    /// the plan's description did) through
    /// [`crate::tracing_settings::transform_tracing`].
    pub fn tracing(&self) -> Option<&TracingConfig> {
        self.config.tracing()
    }

    /// LLM calls per row.
    pub fn calls_per_row(&self) -> usize {
        self.queries.len().max(1)
    }

    /// Calls in flight at most (`pool_size`, at least 1).
    pub fn concurrency(&self) -> usize {
        self.call.pool_size.max(1) as usize
    }

    /// The transform, ready for `on_start`.
    pub fn build(self) -> Box<dyn DynTransform> {
        let config = self.config.clone();
        plugin_of(&config).build(self)
    }

    /// `sample_row` as the next transform sees it: with a placeholder for
    /// each field this one adds, or `None` once they cannot be known (a
    /// JSON reply without `output_fields`).
    fn add_placeholders(&self, sample_row: &mut Option<Row>) {
        let Some(row) = sample_row else { return };
        let label = &self.label;
        let prefixes: Vec<Option<&str>> = if self.queries.is_empty() {
            vec![None]
        } else {
            self.queries.iter().map(|q| Some(q.name.as_str())).collect()
        };
        match self.config.prompt().reply_fields() {
            Some(fields) => {
                for prefix in &prefixes {
                    for f in &fields {
                        let key = match prefix {
                            Some(p) => format!("{p}_{f}"),
                            None => f.clone(),
                        };
                        row.insert(key, Value::String(format!("<{f} from {label}>")));
                    }
                }
            }
            None => *sample_row = None,
        }
    }

    /// The prompt tokens of every call this transform would make for
    /// `row`, counted like [`crate::cost::estimate`]; `None` when a
    /// template fails on it.
    fn prompt_tokens(&self, row: &Row) -> Option<(Vec<u64>, crate::cost::TokenCount)> {
        let encoding = self.price.encoding;
        let extras: Vec<Option<&serde_json::Map<String, Value>>> = if self.queries.is_empty() {
            vec![None]
        } else {
            self.queries.iter().map(|q| Some(&q.values)).collect()
        };
        let mut how = crate::cost::TokenCount::CharsOver4;
        let mut tokens = Vec::with_capacity(extras.len());
        for extra in extras {
            let request = self.prompt.request(row, extra).ok()?;
            let (n, counted) = crate::cost::estimate(&request, encoding);
            how = counted;
            tokens.push(n);
        }
        Some((tokens, how))
    }

    /// What `--dry-run` shows of this transform; `sample_row` is the first
    /// row as this transform would see it, updated with placeholders for
    /// the fields it adds (`None` once they cannot be known).
    fn describe(&self, sample_row: &mut Option<Row>, warnings: &mut Vec<String>) -> TransformPlan {
        let label = &self.label;
        let sample_prompt = sample_row.as_ref().and_then(|row| {
            let extra = self.queries.first().map(|q| &q.values);
            match self.prompt.request(row, extra) {
                Ok(request) => request.prompt().map(str::to_string),
                Err(e) => {
                    warnings.push(format!("{label}: the first row would fail: {e}"));
                    None
                }
            }
        });
        self.add_placeholders(sample_row);
        warnings.extend(self.tracing_warnings.iter().cloned());
        TransformPlan {
            label: label.to_string(),
            backend: self.service.name().into(),
            model: self.target.model().to_string(),
            target: self.shown_target.clone(),
            calls_per_row: self.calls_per_row(),
            concurrency: self.concurrency(),
            grouping: match self.mode {
                Mode::PerCall => None,
                Mode::Job { batch_size } => Some(format!("batch jobs of {batch_size} rows")),
                Mode::Chunked { rows } => Some(format!("chunks of {rows} rows")),
            },
            tracing: self.tracing_summary.clone(),
            sample_prompt,
        }
    }
}

/// One transform as `--dry-run` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformPlan {
    /// `transforms[i] (plugin)`.
    pub label: String,
    /// The service called, e.g. `Azure OpenAI`.
    pub backend: String,
    /// Deployment or model.
    pub model: String,
    /// Resolved endpoint or base URL (never a key), when it resolves.
    pub target: Option<String>,
    /// LLM calls per row (queries of a multi-query matrix).
    pub calls_per_row: usize,
    /// Calls in flight at most.
    pub concurrency: usize,
    /// How rows are grouped, e.g. `jobs of 100 rows`.
    pub grouping: Option<String>,
    /// Tracing provider, or `off`.
    pub tracing: String,
    /// The first row's (first) prompt, rendered.
    pub sample_prompt: Option<String>,
}

impl fmt::Display for TransformPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "  {}: {}", self.label, self.backend)?;
        if !self.model.is_empty() {
            write!(f, " `{}`", self.model)?;
        }
        if let Some(target) = &self.target {
            write!(f, " at {target}")?;
        }
        writeln!(f)?;
        write!(
            f,
            "      {} call(s) per row, up to {} in flight",
            self.calls_per_row, self.concurrency
        )?;
        if let Some(g) = &self.grouping {
            write!(f, ", {g}")?;
        }
        writeln!(f, "; tracing: {}", self.tracing)?;
        if let Some(p) = &self.sample_prompt {
            let shown: String = p.chars().take(200).collect();
            let more = if p.chars().count() > 200 { "…" } else { "" };
            writeln!(f, "      first prompt: {shown:?}{more}")?;
        }
        Ok(())
    }
}

/// What the plan says it would do: its transforms, and what would degrade.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanDescription {
    /// The transforms, in order.
    pub transforms: Vec<TransformPlan>,
    /// What would degrade (a first row that would fail, tracing that would
    /// be turned off).
    pub warnings: Vec<String>,
}

/// The run, resolved: source, sink and one spec per configured transform.
#[derive(Debug)]
pub struct Plan {
    /// The pipeline's name.
    pub name: String,
    /// The source file.
    pub source: PathBuf,
    /// The sink file.
    pub sink: PathBuf,
    /// The failed-rows file, when configured.
    pub errors: Option<PathBuf>,
    /// The configured transforms, in order.
    pub transforms: Vec<TransformSpec>,
}

impl Plan {
    /// Resolves `config` (relative paths against `base_dir`, `${VAR}`s
    /// against `env`): the plan, or every problem at once.
    pub fn resolve(
        config: &PipelineConfig,
        base_dir: &Path,
        env: &dyn Env,
    ) -> Result<Plan, PlanError> {
        let mut problems = Vec::new();
        let mut transforms = Vec::with_capacity(config.transforms.len());
        let mut complete = true;
        for (index, t) in config.transforms.iter().enumerate() {
            match resolve_one(t, index, env, &mut problems) {
                Some(spec) => transforms.push(spec),
                None => complete = false,
            }
        }
        let resolve = |p: &str| resolve_against(base_dir, p);
        let plan = Plan {
            name: config.name.clone(),
            source: resolve(config.source.path()),
            sink: resolve(config.sink.path()),
            errors: config.sink.error_path().map(resolve),
            transforms,
        };
        if problems.is_empty() {
            return Ok(plan);
        }
        Err(PlanError {
            problems,
            draft: complete.then(|| Box::new(plan)),
        })
    }

    /// What each transform's calls would use and cost, estimated on
    /// `sample` (the first rows of the source): prompt tokens per call
    /// averaged over the rows each template renders, the output ceiling
    /// from `max_tokens`, the price.
    pub fn estimate(&self, sample: &[Row]) -> Vec<crate::cost::CallEstimate> {
        let mut rows: Vec<Option<Row>> = sample.iter().cloned().map(Some).collect();
        self.transforms
            .iter()
            .map(|t| {
                let (mut total, mut calls, mut counted) = (0u64, 0u64, None);
                for row in rows.iter_mut() {
                    if let Some((tokens, how)) = row.as_ref().and_then(|r| t.prompt_tokens(r)) {
                        total += tokens.iter().sum::<u64>();
                        calls += tokens.len() as u64;
                        counted = Some(how);
                    }
                    t.add_placeholders(row);
                }
                crate::cost::CallEstimate {
                    label: t.label.to_string(),
                    calls_per_row: t.calls_per_row() as u64,
                    tokens_per_call: (calls > 0).then(|| total as f64 / calls as f64),
                    counted: counted.unwrap_or(match t.price.encoding {
                        Some(e) => crate::cost::TokenCount::Tokenizer(e),
                        None => crate::cost::TokenCount::CharsOver4,
                    }),
                    max_tokens: t.call.max_tokens,
                    price: t.price.clone(),
                }
            })
            .collect()
    }

    /// What each transform would do with `first_row` (its first prompt,
    /// rendered), and what would degrade.
    pub fn describe(&self, first_row: Option<&Row>) -> PlanDescription {
        let mut warnings = Vec::new();
        let mut sample_row = first_row.cloned();
        let transforms = self
            .transforms
            .iter()
            .map(|t| t.describe(&mut sample_row, &mut warnings))
            .collect();
        PlanDescription {
            transforms,
            warnings,
        }
    }
}

/// The plan's own description, without a sample row.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pipeline `{}`", self.name)?;
        writeln!(f, "  source: {}", self.source.display())?;
        let described = self.describe(None);
        for t in &described.transforms {
            write!(f, "{t}")?;
        }
        write!(f, "  sink: {}", self.sink.display())?;
        if let Some(e) = &self.errors {
            write!(f, " (failed rows: {})", e.display())?;
        }
        writeln!(f)?;
        for w in &described.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        Ok(())
    }
}

/// One problem found while resolving a transform.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanProblem {
    /// A `${VAR}` reference does not resolve.
    #[error("{transform}: {field}: {source}")]
    Env {
        /// The transform.
        transform: TransformLabel,
        /// The option, e.g. `api_key`.
        field: &'static str,
        /// Every problem of the reference, each with its fix.
        #[source]
        source: EnvError,
    },
    /// The prompt options are wrong (the template does not compile, ...).
    #[error("{transform}: {source}")]
    Prompt {
        /// The transform.
        transform: TransformLabel,
        /// What is wrong.
        #[source]
        source: PromptError,
    },
    /// The query matrix cannot be expanded.
    #[error("{transform}: {source}")]
    Queries {
        /// The transform.
        transform: TransformLabel,
        /// What is wrong and how to fix it.
        #[source]
        source: MatrixProblem,
    },
}

impl PlanProblem {
    /// Whether this is an unresolved reference (the rest of the transform
    /// could still be described).
    pub fn is_env(&self) -> bool {
        matches!(self, Self::Env { .. })
    }
}

/// Every problem of a config, at once. Displayed one per line.
#[derive(Debug, thiserror::Error)]
pub struct PlanError {
    /// The problems, in config order.
    pub problems: Vec<PlanProblem>,
    /// The plan as far as it resolved, when only references failed (for
    /// `--dry-run`, which reports them instead of stopping).
    draft: Option<Box<Plan>>,
}

impl PlanError {
    fn new(problems: Vec<PlanProblem>, transforms: Option<Vec<TransformSpec>>) -> Self {
        let draft = transforms.map(|transforms| {
            Box::new(Plan {
                name: String::new(),
                source: PathBuf::new(),
                sink: PathBuf::new(),
                errors: None,
                transforms,
            })
        });
        Self { problems, draft }
    }

    /// The plan as far as it resolved: `Some` when every problem is an
    /// unresolved reference (the specs then hold empty values for them).
    pub fn draft(&self) -> Option<&Plan> {
        self.draft.as_deref()
    }

    /// [`draft`](Self::draft), by value.
    pub fn into_draft(self) -> Option<Plan> {
        self.draft.map(|d| *d)
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// What a plugin resolves from its options (the rest of a
/// [`TransformSpec`] is common to all plugins).
#[derive(Debug)]
pub struct SpecParts {
    /// How its rows are handed over.
    pub mode: Mode,
    /// The service called.
    pub service: Service,
    /// Where its calls go.
    pub target: Target,
    /// The compiled prompt.
    pub prompt: Prompt,
    /// The expanded query matrix (empty: one call per row).
    pub queries: Vec<Query>,
    /// Its call options.
    pub call: CallOptions,
}

/// A plugin's part of the runtime, implemented by its options type in the
/// plugin's own file (`transforms/<plugin>.rs`): resolving the options into
/// a spec, and building the transform from it.
pub trait BuildTransform: HasTracing + Send + Sync {
    /// Resolves the options through `r`, which collects every problem;
    /// `None` when no spec can be made (the prompt does not compile).
    fn resolve(&self, r: &mut Resolver<'_>) -> Option<SpecParts>;

    /// The transform of `spec` (no I/O: clients are built at start).
    fn build(&self, spec: TransformSpec) -> Box<dyn DynTransform>;
}

/// Generates [`plugin_of`] (and each plugin's [`HasTracing`], from its
/// option groups) from the schema's one list of plugins, so a new plugin
/// needs no line here: only its `BuildTransform` impl, which the compiler
/// asks for.
macro_rules! plugin_dispatch {
    ($( $(#[$meta:meta])* $variant:ident($options:ty) = $name:literal, )*) => {
        $(
            impl HasTracing for $options {
                fn tracing_config(&self) -> Option<&TracingConfig> {
                    TransformOptions::tracing(self)
                }
            }
        )*

        /// The one dispatch over [`TransformConfig`]: the plugin's options,
        /// as the trait every plugin implements.
        pub fn plugin_of(config: &TransformConfig) -> &dyn BuildTransform {
            match config {
                $( TransformConfig::$variant(o) => o, )*
            }
        }
    };
}
elspeth_schema::transform_plugins!(plugin_dispatch);

impl HasTracing for TransformConfig {
    fn tracing_config(&self) -> Option<&TracingConfig> {
        plugin_of(self).tracing_config()
    }
}

/// Resolves one transform's options, collecting every problem. Handed to
/// [`BuildTransform::resolve`]; every `${VAR}` of a transform is resolved
/// here.
pub struct Resolver<'a> {
    label: &'a TransformLabel,
    env: &'a dyn Env,
    problems: &'a mut Vec<PlanProblem>,
    url_resolved: bool,
}

impl Resolver<'_> {
    /// The transform being resolved.
    pub fn label(&self) -> &TransformLabel {
        self.label
    }

    /// `value` resolved, or `None` with the problem recorded.
    pub fn env(&mut self, field: &'static str, value: &EnvString) -> Option<String> {
        value
            .resolve(self.env)
            .map_err(|e| self.env_problem(field, e))
            .ok()
    }

    /// `value` resolved, or `None` with the problem recorded.
    pub fn secret(&mut self, field: &'static str, value: &SecretRef) -> Option<SecretString> {
        value
            .resolve(self.env)
            .map_err(|e| self.env_problem(field, e))
            .ok()
    }

    fn env_problem(&mut self, field: &'static str, source: EnvError) {
        self.problems.push(PlanProblem::Env {
            transform: self.label.clone(),
            field,
            source,
        });
    }

    fn url(&mut self, field: &'static str, value: &EnvString) -> String {
        let url = self.env(field, value);
        self.url_resolved = url.is_some();
        url.unwrap_or_default()
    }

    fn key(&mut self, value: &SecretRef) -> SecretString {
        self.secret("api_key", value)
            .unwrap_or_else(|| SecretString::from(String::new()))
    }

    /// The Azure target of `conn` (an unresolved value is left empty, its
    /// problem recorded).
    pub fn azure(&mut self, conn: &AzureConnection) -> Target {
        Target::Azure(AzureTarget {
            endpoint: self.url("endpoint", &conn.endpoint),
            deployment: conn.deployment_name.clone(),
            api_version: conn.api_version.clone(),
            api_key: self.key(&conn.api_key),
        })
    }

    /// The OpenRouter target of `conn` (as [`azure`](Self::azure)).
    pub fn openrouter(&mut self, conn: &OpenRouterConnection) -> Target {
        Target::OpenRouter(OpenRouterTarget {
            base_url: self.url("base_url", &conn.base_url),
            model: conn.model.clone(),
            api_key: self.key(&conn.api_key),
            http_referer: conn.http_referer.clone(),
            app_title: conn.app_title.clone(),
        })
    }

    /// The compiled prompt, or `None` with the problem recorded.
    pub fn prompt(
        &mut self,
        prompt: &PromptOptions,
        call: &CallOptions,
        model: &str,
    ) -> Option<Prompt> {
        Prompt::new(prompt, call, model)
            .map_err(|source| {
                self.problems.push(PlanProblem::Prompt {
                    transform: self.label.clone(),
                    source,
                })
            })
            .ok()
    }

    /// The expanded matrix (empty, with the problem recorded, when it
    /// cannot be expanded).
    pub fn queries(&mut self, matrix: &QueryMatrix) -> Vec<Query> {
        expand(matrix).unwrap_or_else(|source| {
            self.problems.push(PlanProblem::Queries {
                transform: self.label.clone(),
                source,
            });
            Vec::new()
        })
    }

    /// The parts every plugin has, from its option groups: the target of
    /// its connection, its queries (when it has a matrix) and its compiled
    /// prompt; `None` when the prompt does not compile (every problem is
    /// recorded either way).
    pub fn parts(
        &mut self,
        options: &dyn TransformOptions,
        mode: Mode,
        service: Service,
    ) -> Option<SpecParts> {
        let connection = options.connection();
        let target = match connection {
            Connection::Azure(c) => self.azure(c),
            Connection::OpenRouter(c) => self.openrouter(c),
        };
        let queries = options
            .queries()
            .map(|m| self.queries(m))
            .unwrap_or_default();
        let prompt = self.prompt(options.prompt(), options.call(), connection.model())?;
        Some(SpecParts {
            mode,
            service,
            target,
            prompt,
            queries,
            call: options.call().clone(),
        })
    }
}

fn resolve_one(
    config: &TransformConfig,
    index: usize,
    env: &dyn Env,
    problems: &mut Vec<PlanProblem>,
) -> Option<TransformSpec> {
    let label = TransformLabel {
        index,
        plugin: config.plugin().to_string(),
    };
    let before = problems.len();
    let mut r = Resolver {
        label: &label,
        env,
        problems,
        url_resolved: false,
    };
    let parts = plugin_of(config).resolve(&mut r);
    let url_resolved = r.url_resolved;
    let parts = parts?;
    // A matrix that cannot be expanded leaves nothing to describe.
    if problems[before..].iter().any(|p| !p.is_env()) {
        return None;
    }
    let (tracing_summary, tracing_warnings) = tracing_of(env, &label, config.tracing());
    Some(TransformSpec {
        shown_target: url_resolved
            .then(|| elspeth_core::redact::url(parts.target.url()).into_owned()),
        mode: parts.mode,
        service: parts.service,
        target: parts.target,
        prompt: parts.prompt,
        queries: parts.queries,
        call: parts.call,
        fingerprint: fingerprint(config, env),
        price: crate::cost::TransformPrice::of(config, matches!(parts.mode, Mode::Job { .. })),
        config: config.clone(),
        tracing_summary,
        tracing_warnings,
        label,
    })
}

/// What `--dry-run` says of a tracing block, and the problems that would
/// turn it off. The block is resolved by the same function the tracer
/// set-up uses at start ([`crate::tracing_settings::transform_tracing`]),
/// so the two cannot disagree.
fn tracing_of(
    env: &dyn Env,
    label: &TransformLabel,
    config: Option<&TracingConfig>,
) -> (String, Vec<String>) {
    let Some(config) = config else {
        return ("off".into(), Vec::new());
    };
    let mut warnings: Vec<String> = config
        .completeness_errors()
        .iter()
        .map(|e| format!("{label}: {e} (the transform would run untraced)"))
        .collect();
    let Some(resolved) = crate::tracing_settings::transform_tracing(config, env) else {
        return ("none".into(), warnings);
    };
    let summary = match resolved.exporter {
        Ok(ExporterSettings::Langfuse(l)) => {
            format!("langfuse ({})", elspeth_core::redact::url(&l.settings.host))
        }
        Ok(ExporterSettings::AzureAi(_)) => config.provider().to_string(),
        Err(e) => {
            // A missing key is already among the completeness errors.
            if warnings.is_empty() {
                warnings.push(format!("{label}: {e}; the transform would run untraced"));
            }
            config.provider().to_string()
        }
    };
    (summary, warnings)
}

/// Option keys that change how a transform runs or merges, never what it
/// asks: left out of its [`fingerprint`], so that tuning them keeps the
/// stored results. Keys are left out because a fingerprint never covers a
/// secret.
const NOT_FINGERPRINTED: [&str; 9] = [
    "tracing",
    "api_key",
    "pool_size",
    "timeout_s",
    "max_retries",
    "poll_interval_s",
    "batch_size",
    "output_field",
    "output_fields",
];

/// The fingerprint of what transform `config` calls: its plugin and options
/// (templates, system prompt, model or deployment, API version, sampling,
/// response format, queries), with `endpoint` / `base_url` resolved through
/// `env`. Everything in [`NOT_FINGERPRINTED`] is left out. On a loopback
/// host the port is left out too: local stand-ins such as `--with-mocks`
/// start on a new port each time, and their results should still be reused.
pub fn fingerprint(config: &TransformConfig, env: &dyn Env) -> Fingerprint {
    let mut value = serde_json::to_value(config).unwrap_or_default();
    strip(&mut value, env);
    Fingerprint::of_parts(&[("transform", &value.to_string())])
}

fn strip(value: &mut Value, env: &dyn Env) {
    match value {
        Value::Object(map) => {
            for key in NOT_FINGERPRINTED {
                map.remove(key);
            }
            for (key, v) in map.iter_mut() {
                if let ("endpoint" | "base_url", Value::String(raw)) = (key.as_str(), &*v) {
                    let resolved = EnvString::new(raw.clone())
                        .resolve(env)
                        .unwrap_or_else(|_| raw.clone());
                    *v = Value::String(without_loopback_port(&resolved));
                } else {
                    strip(v, env);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip(v, env)),
        _ => {}
    }
}

/// `http://127.0.0.1:41234/x` → `http://127.0.0.1/x`; other URLs unchanged.
fn without_loopback_port(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => return url.to_string(),
    };
    if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        format!("{scheme}://{host}{path}")
    } else {
        url.to_string()
    }
}

#[cfg(test)]
mod tests;
